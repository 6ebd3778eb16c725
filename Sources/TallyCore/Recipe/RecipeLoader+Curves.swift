import Foundation
import Yams

// The `curves:` section: learning curves of some strategies, keyed by strategy name.
//
//     curves:
//       lora: {train_sizes: [16, 32, 64, 128]}
//       few-shot: {shots: [0, 1, 2, 4, 8]}

extension RecipeLoader {
    /// Keys of one curve: exactly one of them.
    public static let curveKeys = ["train_sizes", "shots"]
    /// Most sizes one curve may list (each is a run).
    public static let maxCurveSizes = 32
    /// Fewest distinct sizes the inverse power law (three parameters) is fitted to.
    public static let minFittedCurveSizes = 4
}

extension RecipeParser {
    /// The curves, in recipe order; empty without the section; nil (reported) when one is
    /// wrong. Checked against the parsed strategies (when they parsed) and the number of
    /// usable training rows (when the training file loaded).
    func parseCurves(_ top: YAMLReader.Mapping, strategies: [ParsedStrategy]?, trainCount: Int?) -> [CurveSpec]? {
        guard let node = top["curves"] else { return [] }
        let example = "{lora: {train_sizes: [16, 32, 64, 128]}, few-shot: {shots: [0, 1, 2, 4, 8]}}"
        guard let map = reader.mapping(node, "curves", allowed: nil, example: example) else { return nil }
        if map.entries.isEmpty {
            reader.error(node, "'curves' is empty.", fix: "name a strategy and its sizes, e.g. curves: \(example), or remove the section")
            return nil
        }
        var curves: [CurveSpec] = []
        var ok = true
        for entry in map.entries {
            let path = "curves.\(entry.key)"
            var strategy: ParsedStrategy?
            if let strategies {
                strategy = strategies.first { $0.spec.name == entry.key }
                if strategy == nil {
                    let names = strategies.map(\.spec.name)
                    let near = nearestName(to: entry.key, among: names)
                    reader.error(entry.keyNode, "'\(path)' names strategy '\(entry.key)', which 'strategies' does not define.", fix: (near.map { "did you mean '\($0)'? " } ?? "") + "Strategies: \(names.joined(separator: ", ")).")
                    ok = false
                    continue
                }
            }
            guard let curveMap = reader.mapping(entry.value, path, allowed: RecipeLoader.curveKeys, example: "{train_sizes: [16, 32, 64, 128]} or {shots: [0, 1, 2, 4, 8]}") else { ok = false; continue }
            let written = RecipeLoader.curveKeys.filter { curveMap.has($0) }
            guard written.count == 1, let key = written.first, let listNode = curveMap[key] else {
                reader.error(curveMap.node, "'\(path)' needs exactly one of train_sizes (training examples, for fine-tuning) and shots (demonstrations, for few-shot and chain-of-thought)\(written.isEmpty ? "" : "; it has both").", fix: "write \(path): {train_sizes: [16, 32, 64, 128]} or {shots: [0, 1, 2, 4, 8]}")
                ok = false
                continue
            }
            let axis: CurveSpec.Axis = key == "shots" ? .shots : .trainExamples
            if let strategy {
                let kind = strategy.kind
                let trains = kind.adaptsWeights || !kind.usesLanguageModel
                let showsShots = kind.keys.contains { $0.name == "shots" }
                if axis == .trainExamples, !trains {
                    reader.error(curveMap.keyNode(key), "'\(path).train_sizes' needs a strategy that trains on the training split; '\(entry.key)' is a \(kind.name) strategy\(showsShots ? ", whose size is its number of demonstrations" : "").", fix: showsShots ? "write shots: [0, 1, 2, 4, 8] instead" : "name a fine-tuning strategy (lora, full-finetune, prompt-tuning) or a baseline")
                    ok = false
                    continue
                }
                if axis == .shots, !showsShots {
                    reader.error(curveMap.keyNode(key), "'\(path).shots' needs a strategy that shows demonstrations (few-shot, chain-of-thought); '\(entry.key)' is a \(kind.name) strategy.", fix: trains ? "write train_sizes: [16, 32, 64, 128] instead" : "name a few-shot or chain-of-thought strategy")
                    ok = false
                    continue
                }
            }
            guard let sizes = curveSizes(listNode, path: "\(path).\(key)", minimum: axis == .shots ? 0 : 1) else { ok = false; continue }
            if let trainCount, let largest = sizes.last, largest > trainCount {
                if axis == .trainExamples {
                    reader.error(listNode, "'\(path).train_sizes' asks for \(largest) training examples, but the training split has \(trainCount) usable row(s)\(top["run"] == nil ? "" : " (after run.max_train_examples)").", fix: "list sizes of at most \(trainCount), or add training rows")
                    ok = false
                    continue
                }
                reader.warning(listNode, "'\(path).shots' asks for \(largest) demonstrations, but the training split has \(trainCount) usable row(s); larger counts show at most that many.", fix: "list counts of at most \(trainCount)")
            }
            if Set(sizes.filter { axis == .trainExamples || $0 > 0 }).count < RecipeLoader.minFittedCurveSizes {
                reader.warning(listNode, "'\(path)' lists fewer than \(RecipeLoader.minFittedCurveSizes) sizes\(axis == .shots ? " above 0" : ""): its points are measured and shown, but no curve is fitted to them (the fit has three parameters).", fix: "list at least \(RecipeLoader.minFittedCurveSizes) sizes to get a fitted curve and an estimate of the examples needed")
            }
            curves.append(CurveSpec(strategy: entry.key, axis: axis, sizes: sizes, location: reader.location(entry.keyNode)))
        }
        return ok ? curves : nil
    }

    /// A list of sizes: whole numbers of at least `minimum`, strictly increasing, at most
    /// `RecipeLoader.maxCurveSizes` of them. Every problem is reported at its item.
    func curveSizes(_ node: Node, path: String, minimum: Int) -> [Int]? {
        guard case .sequence(let sequence) = node else {
            reader.error(node, "'\(path)' must be a list of sizes such as [16, 32, 64, 128], not \(reader.describe(node)).", fix: "write \(path.split(separator: ".").last ?? "train_sizes"): [16, 32, 64, 128]")
            return nil
        }
        if sequence.count == 0 {
            reader.error(node, "'\(path)' is empty.", fix: "list at least one size, e.g. [16, 32, 64, 128]")
            return nil
        }
        if sequence.count > RecipeLoader.maxCurveSizes {
            reader.error(node, "'\(path)' lists \(sequence.count) sizes; at most \(RecipeLoader.maxCurveSizes) are measured (each one is a run).", fix: "keep a few sizes spread on a log scale, e.g. doubling")
            return nil
        }
        var sizes: [Int] = []
        var ok = true
        for (index, item) in sequence.enumerated() {
            guard let value = reader.int(item, "\(path)[\(index)]", min: minimum) else { ok = false; continue }
            if let last = sizes.last, value <= last {
                reader.error(item, "'\(path)[\(index)]' is \(value), but sizes must increase (the previous one is \(last)).", fix: "list each size once, smallest first")
                ok = false
                continue
            }
            sizes.append(value)
        }
        return ok ? sizes : nil
    }
}
