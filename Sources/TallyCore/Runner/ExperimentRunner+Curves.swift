import Foundation

// Learning curves (`curves:`): each size of each curve is one more measured run of its
// strategy, through the same cached, budgeted path as the strategy itself. A training-set
// size trains on the first n rows of `CurveSubsets.order` (nested, label-balanced); a shot
// count sets the strategy's `shots`. Seeds repeat each point as they repeat the strategy.

extension Execution {
    /// Measures every point of every curve of the recipe, after the strategies.
    /// - Parameter backends: the backends made for the strategies, by name.
    func measureCurves(inputs: Inputs, backends: [String: Backend]) async throws {
        for curve in recipe.curves {
            try Task.checkCancellation()
            guard let spec = recipe.strategies.first(where: { $0.name == curve.strategy }) else {
                throw TallyError(code: .invalidRecipe, message: "curve '\(curve.strategy)' names no strategy of the recipe", location: curve.location)
            }
            let kind = try runner.strategies.kind(named: spec.kind)
            var model: (backend: Backend, config: BackendConfig)?
            if kind.usesLanguageModel {
                guard let name = spec.backend, let backend = backends[name], let config = recipe.backend(named: name) else { continue }
                model = (backend, config)
            }
            let unit = curve.axis == .shots ? "demonstrations" : "training examples"
            progress(.note("learning curve of \(spec.name): \(curve.sizes.map(String.init).joined(separator: ", ")) \(unit)"))
            for size in curve.sizes {
                let pointSpec = curve.pointSpec(spec, size: size)
                let seeds = recipe.seeds(for: pointSpec, dependsOnSeed: kind.dependsOnSeed(pointSpec))
                let pointName = CurvePointMeasurement.pointName(spec.name, axis: curve.axis, size: size)
                for seed in seeds {
                    try Task.checkCancellation()
                    let repetition: UInt64? = seeds.count > 1 ? seed : nil
                    var pointInputs = inputs
                    if curve.axis == .trainExamples {
                        let order = CurveSubsets.order(of: inputs.train, task: recipe.task, seed: seed)
                        pointInputs = Inputs(scorer: inputs.scorer, train: CurveSubsets.subset(of: inputs.train, order: order, size: size), validation: inputs.validation, test: inputs.test, probeItems: inputs.probeItems)
                    }
                    do {
                        let measurement = if let model {
                            try await measure(pointSpec, kind: kind, seed: seed, repetition: repetition, backend: model.backend, config: model.config, inputs: pointInputs, pointName: pointName, probes: false)
                        } else {
                            try await measureTrainedAnswerer(pointSpec, kind: kind, seed: seed, repetition: repetition, inputs: pointInputs, pointName: pointName)
                        }
                        state.add(CurvePointMeasurement(strategy: spec.name, axis: curve.axis, size: size, measurement: measurement))
                    } catch {
                        throw failure(error, of: "learning-curve point '\(StrategyMeasurement.runName(pointName, seed: repetition))'", backend: model?.config, location: curve.location)
                    }
                }
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
