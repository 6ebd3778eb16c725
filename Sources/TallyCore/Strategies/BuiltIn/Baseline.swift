import Foundation

// The built-in `baseline` kind: is an LLM needed at all? Classic classifiers trained on the
// training split in milliseconds, written against the public `StrategyKind` API only. They
// answer with a model of their own (`Strategy.trainAnswerer`), so they need no backend.

/// `baseline`: a majority-class or TF-IDF + logistic-regression classifier for labelled tasks.
///
/// ```yaml
/// - {name: tfidf, kind: baseline, method: tfidf-logreg, word_ngram_max: 2, char_ngram_max: 5}
/// - {name: majority, kind: baseline, method: majority}
/// ```
public struct BaselineKind: StrategyKind {
    public let name = "baseline"
    public let summary = "no LLM: majority class or TF-IDF (word + char n-grams) + logistic regression, trained on the training split"
    public var usesLanguageModel: Bool { false }
    public var keys: [StrategyKey] { BaselineSettings.keys }

    public init() {}

    public func check(_ spec: StrategySpec, context: StrategyCheckContext) -> [ConfigIssue] {
        var issues = BaselineSettings.issues(spec)
        if context.task.labels == nil {
            issues.insert(ConfigIssue(key: "method", "strategy '\(spec.name)' is a baseline classifier, which needs a closed label set, but the task has no labels.",
                                      fix: "add task.labels (e.g. [positive, negative]), or remove this strategy"), at: 0)
        }
        return issues
    }

    public func makeStrategy(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy {
        try BaselineStrategy(spec: spec, context: context)
    }
}

/// A `baseline` entry's settings, read from its recipe keys.
public struct BaselineSettings: Sendable, Hashable, Codable {
    public enum Method: String, Sendable, Hashable, Codable, CaseIterable {
        /// Always the most frequent training label.
        case majority
        /// TF-IDF features and L2-regularised logistic regression.
        case tfidfLogReg = "tfidf-logreg"
    }

    public static let defaultGrid: [Double] = [0.01, 0.1, 1, 10, 100]
    /// C when there is nothing to choose it on (fewer than two training rows).
    public static let fallbackC = 1.0

    public let method: Method
    /// The TF-IDF blocks: word n-grams, character n-grams within words, or both.
    public let blocks: [TFIDFOptions]
    /// A fixed C (no selection), or nil to choose from `grid`.
    public let fixedC: Double?
    /// Candidate values of C, increasing.
    public let grid: [Double]
    /// Folds for choosing C on the training split when there is no validation split.
    public let folds: Int
    public let maxIterations: Int
    public let tolerance: Double

    public static let keys: [StrategyKey] = [
        .choice("method", Method.allCases.map(\.rawValue), default: Method.tfidfLogReg.rawValue,
                help: "majority: always the most frequent training label; tfidf-logreg: TF-IDF features + logistic regression"),
        .int("word_ngram_min", default: 1, min: 1, help: "shortest word n-gram"),
        .int("word_ngram_max", default: 2, min: 0, help: "longest word n-gram (0: no word features)"),
        .int("char_ngram_min", default: 2, min: 1, help: "shortest character n-gram (within word boundaries)"),
        .int("char_ngram_max", default: 5, min: 0, help: "longest character n-gram (0: no character features)"),
        .bool("sublinear_tf", default: false, help: "term frequency 1 + ln(count) instead of the count"),
        .int("max_features", min: 1, help: "keep the most frequent n-grams of each kind (default: all)"),
        .number("c", min: .init(0, exclusive: true), help: "fixed inverse regularisation strength C (default: chosen from c_grid)"),
        .strings("c_grid", default: defaultGrid.map { SettingValue.number($0).description },
                 help: "list of numbers: candidate C values, chosen by accuracy on the validation split, else by k-fold cross-validation on train"),
        .int("cv_folds", default: 5, min: 2, help: "folds for choosing C when the recipe has no validation split"),
        .int("max_iterations", default: 1000, min: 1, help: "L-BFGS iteration cap"),
        .number("tolerance", default: 1e-6, min: .init(0, exclusive: true), help: "L-BFGS stops when every gradient component is below this"),
    ]

    /// Keys that only `tfidf-logreg` reads.
    static let classifierKeys = keys.map(\.name).filter { $0 != "method" }

    /// Problems with an entry's values that their declared types and ranges do not catch.
    public static func issues(_ spec: StrategySpec) -> [ConfigIssue] {
        let s = spec.settings
        let label = "strategy '\(spec.name)'"
        var issues: [ConfigIssue] = []
        if s.string("method") == Method.majority.rawValue {
            let ignored = classifierKeys.filter { s.wrote($0) }
            if !ignored.isEmpty {
                issues.append(ConfigIssue(.warning, key: ignored[0], "\(label) uses method majority, which ignores \(ignored.joined(separator: ", ")).", fix: "remove them, or use method: tfidf-logreg"))
            }
            return issues
        }
        for prefix in ["word", "char"] {
            let low = s.int("\(prefix)_ngram_min") ?? 1, high = s.int("\(prefix)_ngram_max") ?? 0
            if high != 0, high < low {
                issues.append(ConfigIssue(key: "\(prefix)_ngram_max", "\(label): \(prefix)_ngram_max (\(high)) is below \(prefix)_ngram_min (\(low)).", fix: "make \(prefix)_ngram_max at least \(low), or 0 to turn \(prefix) features off"))
            }
        }
        if s.int("word_ngram_max") == 0, s.int("char_ngram_max") == 0 {
            issues.append(ConfigIssue(key: "word_ngram_max", "\(label) turns off both word and character features, so there is nothing to classify on.", fix: "give word_ngram_max or char_ngram_max a value of at least 1"))
        }
        for item in s.strings("c_grid") ?? [] where parseC(item) == nil {
            issues.append(ConfigIssue(key: "c_grid", "\(label): c_grid value '\(item)' is not a positive number.", fix: "list positive numbers, e.g. [0.01, 0.1, 1, 10, 100]"))
        }
        if s.wrote("c"), s.wrote("c_grid") {
            issues.append(ConfigIssue(.warning, key: "c_grid", "\(label) sets both c and c_grid; the fixed c is used and c_grid is ignored.", fix: "remove one of them"))
        }
        return issues
    }

    static func parseC(_ text: String) -> Double? {
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite, value > 0 else { return nil }
        return value
    }

    /// Reads validated settings.
    /// - Throws: `TallyError(.invalidRecipe)` for values `issues(_:)` reports as errors.
    public init(_ spec: StrategySpec) throws {
        if let problem = Self.issues(spec).first(where: { $0.severity == .error }) {
            throw TallyError(code: .invalidRecipe, message: problem.message + (problem.fix.map { " Fix: \($0)." } ?? ""), location: spec.location)
        }
        let s = spec.settings
        method = s.string("method").flatMap(Method.init(rawValue:)) ?? .tfidfLogReg
        let sublinear = s.bool("sublinear_tf") ?? false
        let limit = s.int("max_features")
        var blocks: [TFIDFOptions] = []
        let wordMax = s.int("word_ngram_max") ?? 2
        if wordMax > 0 {
            blocks.append(TFIDFOptions(analyzer: .word, ngramMin: s.int("word_ngram_min") ?? 1, ngramMax: wordMax, sublinearTF: sublinear, maxFeatures: limit))
        }
        let charMax = s.int("char_ngram_max") ?? 5
        if charMax > 0 {
            blocks.append(TFIDFOptions(analyzer: .charWordBounded, ngramMin: s.int("char_ngram_min") ?? 2, ngramMax: charMax, sublinearTF: sublinear, maxFeatures: limit))
        }
        self.blocks = blocks
        fixedC = s.double("c")
        let grid = (s.strings("c_grid") ?? []).compactMap(Self.parseC)
        self.grid = grid.isEmpty ? Self.defaultGrid : Array(Set(grid)).sorted()
        folds = s.int("cv_folds") ?? 5
        maxIterations = s.int("max_iterations") ?? 1000
        tolerance = s.double("tolerance") ?? 1e-6
    }
}

/// A `baseline` strategy: classifies the rendered task input (the user message a zero-shot
/// prompt would send: context, then input) with a model trained on the training split.
public struct BaselineStrategy: Strategy {
    public let spec: StrategySpec
    public let task: TaskSpec
    public let settings: BaselineSettings
    let train: [Example]
    let validation: [Example]

    /// - Throws: `TallyError(.invalidRecipe)` for invalid settings or a task without labels.
    public init(spec: StrategySpec, context: StrategyContext) throws {
        guard context.task.labels?.isEmpty == false else {
            throw TallyError(code: .invalidRecipe, message: "strategy '\(spec.name)' is a baseline classifier, which needs task.labels", location: spec.location)
        }
        self.spec = spec
        self.task = context.task
        self.settings = try BaselineSettings(spec)
        self.train = context.train
        self.validation = context.validation
    }

    public var maxTokens: Int { spec.maxTokens ?? task.maxAnswerTokens }

    /// It trains on every training row.
    public var labelledExamples: Int { train.count }

    public func messages(for example: Example) -> [ChatMessage] {
        [.user(Self.text(task: task, example: example))]
    }

    /// The text a row is classified by: its rendered context and input.
    public static func text(task: TaskSpec, example: Example) -> String {
        PromptBuilder.userPrompt(task: task, example: example)
    }

    public func trainAnswerer(progress: @escaping @Sendable (ProgressEvent) -> Void) async throws -> TrainedAnswerer? {
        let labels = task.labels ?? []
        let clock = ContinuousClock()
        let started = clock.now
        let rows = Self.labelled(train, task: task)
        guard !rows.isEmpty else {
            throw TallyError(code: .invalidData, message: "strategy '\(spec.name)': no training row has a target among task.labels (\(labels.joined(separator: ", "))), so there is nothing to train on", location: spec.location)
        }
        // Classes: the labels that occur in training, in task.labels order.
        let present = Set(rows.map(\.label))
        let classes = labels.indices.filter { present.contains($0) }
        let classIndex = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        let y = rows.compactMap { classIndex[$0.label] }
        let texts = rows.map(\.text)
        let classLabels = classes.map { labels[$0] }

        switch settings.method {
        case .majority:
            var counts = [Int](repeating: 0, count: classes.count)
            for label in y { counts[label] += 1 }
            let best = counts.indices.max { a, b in counts[a] != counts[b] ? counts[a] < counts[b] : a > b } ?? 0
            let answer = classLabels[best]
            let identity = "baseline/majority: \(answer)"
            let seconds = Self.seconds(clock.now - started)
            let outcome = FineTuneOutcome(
                artifact: identity, wallSeconds: seconds, trainedTokens: 0, steps: 0, trainLoss: [], validationLoss: [],
                notes: ["always answers '\(answer)', the most frequent label of the \(rows.count) training rows (\(counts[best]) of them)"])
            return TrainedAnswerer(generator: BaselineAnswerer(identity: identity) { _ in answer }, training: outcome)

        case .tfidfLogReg:
            let held = Self.labelled(validation, task: task).compactMap { row in classIndex[row.label].map { (text: row.text, label: $0) } }
            let selection = try selectC(texts: texts, labels: y, classCount: classes.count, validation: held)
            progress(.note("\(spec.name): \(selection.note)"))
            let featurizer = TextFeaturizer.fit(texts, blocks: settings.blocks)
            let x = texts.map(featurizer.transform)
            let model = classifier(c: selection.c).fit(x, labels: y, classCount: classes.count, featureCount: featurizer.featureCount)
            let seconds = Self.seconds(clock.now - started)
            let identity = "baseline/tfidf-logreg C=\(CostModel.format(selection.c)) sha256:" + String(Self.digest(featurizer: featurizer, model: model, classes: classLabels).prefix(32))

            var notes = [Self.describe(featurizer, rows: rows.count), selection.note]
            notes.append("L-BFGS: \(model.iterations) iteration\(model.iterations == 1 ? "" : "s"), \(model.stop.rawValue)" + (model.converged ? "" : "; raise max_iterations for a converged model"))
            if rows.count < train.count {
                notes.append("\(train.count - rows.count) training row(s) skipped: their target is not one of task.labels")
            }
            let trace = Self.thin(model.objectiveTrace, to: 200)
            let validationLoss = held.isEmpty ? [] : [LossPoint(step: model.iterations, loss: model.logLoss(held.map { featurizer.transform($0.text) }, labels: held.map(\.label)))]
            let outcome = FineTuneOutcome(
                artifact: identity, wallSeconds: seconds, trainedTokens: 0, steps: model.iterations,
                trainLoss: trace.map { LossPoint(step: $0.step, loss: $0.value) }, validationLoss: validationLoss, notes: notes)
            let answerer = BaselineAnswerer(identity: identity) { text in
                classLabels[min(model.predict(featurizer.transform(text)), classLabels.count - 1)]
            }
            return TrainedAnswerer(generator: answerer, training: outcome)
        }
    }

    func classifier(c: Double) -> LogisticRegression {
        LogisticRegression(c: c, maxIterations: settings.maxIterations, tolerance: settings.tolerance)
    }

    /// C and how it was chosen: fixed; the best validation accuracy; the best mean accuracy
    /// over stratified folds of the training rows; or the fallback. Ties go to the smaller C.
    func selectC(texts: [String], labels y: [Int], classCount: Int, validation held: [(text: String, label: Int)]) throws -> (c: Double, note: String) {
        if let c = settings.fixedC { return (c, "C = \(CostModel.format(c)) (fixed)") }
        func describe(_ scores: [Double]) -> String {
            zip(settings.grid, scores).map { "\(CostModel.format($0)): \(String(format: "%.1f%%", $1 * 100))" }.joined(separator: ", ")
        }
        func best(_ scores: [Double]) -> Int {
            var index = 0
            for i in scores.indices where scores[i] > scores[index] { index = i }
            return index
        }
        if !held.isEmpty {
            let featurizer = TextFeaturizer.fit(texts, blocks: settings.blocks)
            let x = texts.map(featurizer.transform)
            let xv = held.map { featurizer.transform($0.text) }
            var scores: [Double] = []
            for c in settings.grid {
                try Task.checkCancellation()
                let model = classifier(c: c).fit(x, labels: y, classCount: classCount, featureCount: featurizer.featureCount)
                scores.append(Self.accuracy(model, xv, held.map(\.label)))
            }
            let chosen = settings.grid[best(scores)]
            return (chosen, "C = \(CostModel.format(chosen)) chosen by accuracy on the \(held.count) validation rows (\(describe(scores)))")
        }
        let folds = StratifiedFolds.split(labels: y, folds: settings.folds)
        guard folds.count >= 2 else {
            return (BaselineSettings.fallbackC, "C = \(CostModel.format(BaselineSettings.fallbackC)): too few training rows to choose C by cross-validation")
        }
        var scores: [Double] = []
        for c in settings.grid {
            var total = 0.0
            for fold in folds {
                try Task.checkCancellation()
                let trainTexts = fold.train.map { texts[$0] }
                let featurizer = TextFeaturizer.fit(trainTexts, blocks: settings.blocks)
                let model = classifier(c: c).fit(trainTexts.map(featurizer.transform), labels: fold.train.map { y[$0] }, classCount: classCount, featureCount: featurizer.featureCount)
                total += Self.accuracy(model, fold.test.map { featurizer.transform(texts[$0]) }, fold.test.map { y[$0] })
            }
            scores.append(total / Double(folds.count))
        }
        let chosen = settings.grid[best(scores)]
        return (chosen, "C = \(CostModel.format(chosen)) chosen by mean accuracy over \(folds.count)-fold stratified cross-validation on the \(y.count) training rows (\(describe(scores)))")
    }

    /// Rows whose target is one of the task's labels (compared after normalisation): their
    /// text and label index.
    static func labelled(_ examples: [Example], task: TaskSpec) -> [(text: String, label: Int)] {
        let labels = (task.labels ?? []).map(TextNormalizer.normalize)
        return examples.compactMap { example in
            guard let target = example[task.target], let index = labels.firstIndex(of: TextNormalizer.normalize(target)) else { return nil }
            return (text(task: task, example: example), index)
        }
    }

    static func accuracy(_ model: LogisticModel, _ x: [SparseVector], _ y: [Int]) -> Double {
        guard !x.isEmpty else { return 0 }
        return Double(zip(x, y).filter { model.predict($0) == $1 }.count) / Double(x.count)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// At most `limit` points of a curve, evenly spaced, the last one kept.
    static func thin(_ values: [Double], to limit: Int) -> [(step: Int, value: Double)] {
        guard values.count > limit, limit > 1 else { return values.enumerated().map { ($0, $1) } }
        let stride = Double(values.count - 1) / Double(limit - 1)
        return (0..<limit).map { i in
            let step = Int((Double(i) * stride).rounded())
            return (step, values[step])
        }
    }

    static func describe(_ featurizer: TextFeaturizer, rows: Int) -> String {
        let parts = featurizer.blocks.map { block in
            let kind = block.options.analyzer == .word ? "word" : "character"
            return "\(block.featureCount) \(kind) \(block.options.ngramMin)-\(block.options.ngramMax)-grams"
        }
        return "TF-IDF features: \(parts.joined(separator: " + ")) from \(rows) training rows"
    }

    /// SHA-256 (hex) over everything the trained classifier's answers depend on.
    static func digest(featurizer: TextFeaturizer, model: LogisticModel, classes: [String]) -> String {
        var bytes: [UInt8] = Array("tally baseline tfidf-logreg 1\n".utf8)
        func addText(_ text: String) { bytes += Array(text.utf8); bytes.append(0) }
        func addNumber(_ value: Double) { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
        for label in classes { addText(label) }
        for block in featurizer.blocks {
            addText("\(block.options.analyzer.rawValue) \(block.options.ngramMin) \(block.options.ngramMax) \(block.options.sublinearTF)")
            for term in block.terms { addText(term) }
            for value in block.idf { addNumber(value) }
        }
        for value in model.weights { addNumber(value) }
        for value in model.intercepts { addNumber(value) }
        return SHA256.hexDigest(of: bytes)
    }
}

/// Answers with a trained classifier: the label for the request's last user message, with
/// the time it took as compute (no tokens).
struct BaselineAnswerer: TextGenerator {
    let identity: String
    let answer: @Sendable (String) -> String

    init(identity: String, answer: @escaping @Sendable (String) -> String) {
        self.identity = identity
        self.answer = answer
    }

    func generate(_ request: GenerationRequest) async throws -> GenerationResult {
        let text = request.messages.last { $0.role == .user }?.content ?? ""
        let clock = ContinuousClock()
        let started = clock.now
        let label = answer(text)
        let seconds = max(BaselineStrategy.seconds(clock.now - started), 1e-9)
        return GenerationResult(text: label, usage: TokenUsage(), latencySeconds: seconds, computeSeconds: seconds)
    }
}
