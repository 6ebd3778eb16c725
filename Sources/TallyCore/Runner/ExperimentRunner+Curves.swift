import Foundation

// Learning curves (`curves:`): each size of each curve is one more measured run of its
// strategy, through the same cached, budgeted path as the strategy itself. A training-set
// size trains on the first n rows of `CurveSubsets.order` (nested, label-balanced); a shot
// count sets the strategy's `shots`. Seeds repeat each point as they repeat the strategy.

extension Execution {
    /// Measures every learning-curve point of the plan (`RunPlan.curveRuns`), after the
    /// strategies, through the same cached, budgeted path, without probes.
    /// - Parameter backends: the backends made for the strategies, by name.
    func measureCurves(inputs: Inputs, backends: [String: Backend]) async throws {
        var announced = Set<String>()
        for run in inputs.plan.curveRuns {
            try Task.checkCancellation()
            guard let point = run.point else { continue }
            let spec = run.spec
            if announced.insert(spec.name).inserted, let curve = recipe.curves.first(where: { $0.strategy == spec.name }) {
                progress(.note("learning curve of \(spec.name): \(curve.sizes.map(String.init).joined(separator: ", ")) \(curve.axis == .shots ? "demonstrations" : "training examples")"))
            }
            var model: (backend: Backend, config: BackendConfig)?
            if run.kind.usesLanguageModel {
                guard let name = spec.backend, let backend = backends[name], let config = recipe.backend(named: name) else { continue }
                model = (backend, config)
            }
            do {
                let measurement = if let model {
                    try await measure(run, backend: model.backend, config: model.config, inputs: inputs)
                } else {
                    try await measureTrainedAnswerer(run, inputs: inputs)
                }
                state.add(CurvePointMeasurement(strategy: spec.name, axis: point.axis, size: point.size, measurement: measurement))
            } catch {
                throw failure(error, of: "learning-curve point '\(run.runName)'", backend: model?.config, location: recipe.curves.first { $0.strategy == spec.name }?.location)
            }
        }
    }
}

extension CurveSpec {
    /// The strategy entry as measured at one point: for a shot count, with `shots` set to
    /// it (the demonstration order is the entry's, so fewer shots show a prefix of more).
    public func pointSpec(_ spec: StrategySpec, size: Int) -> StrategySpec {
        guard axis == .shots else { return spec }
        return StrategySpec(
            name: spec.name, kind: spec.kind, backend: spec.backend, maxTokens: spec.maxTokens,
            settings: spec.settings.setting("shots", to: .int(size)), seeds: spec.seeds, location: spec.location,
            group: spec.group, variant: spec.variant)
    }
}
