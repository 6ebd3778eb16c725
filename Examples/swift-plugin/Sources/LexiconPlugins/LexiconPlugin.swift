import Foundation
import TallyCore

/// `plugin: lexicon`: a word-list sentiment model, served on this machine. It sums the
/// ratings of the words in the last user message and answers `positive_label` when the sum is
/// above zero, else `negative_label`. A toy backend, honest about being one: it shows what a
/// backend plugin written outside Tally implements (settings, validation, identity, usage).
///
/// ```yaml
/// backends:
///   words: {plugin: lexicon, model: my-lexicon, lexicon: data/lexicon.tsv}
/// ```
public struct LexiconPlugin: BackendPlugin {
    public let name = "lexicon"
    public let summary = "word-list sentiment scorer (example plugin from Examples/swift-plugin)"
    public let settingKeys: Set<String> = ["lexicon", "positive_label", "negative_label"]
    /// Lexicon files larger than this are refused (they are input from a stranger).
    static let maxLexiconBytes = 8 << 20

    public init() {}

    public func validate(_ config: BackendConfig, environment: [String: String]) -> [ConfigIssue] {
        guard let path = config.settings["lexicon"] else {
            return [ConfigIssue(key: "lexicon", "no lexicon file is named.", fix: "add lexicon: <a file of `word<TAB>rating` lines>")]
        }
        let url = RecipeLoader.resolve(path: path, relativeTo: config.recipeDirectory)
        guard FileManager.default.isReadableFile(atPath: url.path) else {
            return [ConfigIssue(key: "lexicon", "cannot read the lexicon file \(url.path).", fix: "check the path; it is relative to the recipe's directory")]
        }
        var issues: [ConfigIssue] = []
        if config.settings["positive_label"] == nil || config.settings["negative_label"] == nil {
            issues.append(ConfigIssue(.warning, key: "positive_label", "labels default to 'positive' and 'negative'.", fix: "set positive_label and negative_label to the task's labels"))
        }
        return issues
    }

    public func makeBackend(_ config: BackendConfig, environment: [String: String]) async throws -> Backend {
        if let problem = validate(config, environment: environment).first(where: { $0.severity == .error }) {
            throw TallyError(code: .invalidRecipe, message: "backend '\(config.name)': \(problem)")
        }
        let url = RecipeLoader.resolve(path: config.settings["lexicon"] ?? "", relativeTo: config.recipeDirectory)
        let model = try LexiconModel.load(url, maxBytes: Self.maxLexiconBytes,
                                          positive: config.settings["positive_label"] ?? "positive",
                                          negative: config.settings["negative_label"] ?? "negative")
        return Backend(generator: model, fineTuner: nil, dataLeavesMachine: false, maxConcurrency: 4)
    }
}

/// The loaded word list, answering requests.
public struct LexiconModel: TextGenerator {
    let ratings: [String: Double]
    let positive: String
    let negative: String
    public let identity: String

    /// Reads `word<TAB>rating` lines; other lines are skipped.
    /// - Throws: `TallyError(.invalidModel)` when the file is too large or has no rating.
    public static func load(_ url: URL, maxBytes: Int, positive: String, negative: String) throws -> LexiconModel {
        let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? nil
        guard let size, size <= maxBytes else {
            throw TallyError(code: .invalidModel, message: "the lexicon \(url.path) is larger than \(maxBytes) bytes (or its size cannot be read)")
        }
        let data = try Data(contentsOf: url)
        var ratings: [String: Double] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: "\t")
            guard parts.count >= 2, let value = Double(parts[1].trimmingCharacters(in: .whitespaces)), value.isFinite else { continue }
            ratings[parts[0].lowercased()] = value
        }
        guard !ratings.isEmpty else {
            throw TallyError(code: .invalidModel, message: "the lexicon \(url.path) has no `word<TAB>rating` line")
        }
        // The identity names the content, so another lexicon never reuses these answers.
        let identity = "lexicon/" + SHA256.hexDigest(of: Array(data)).prefix(16) + "/\(positive)/\(negative)"
        return LexiconModel(ratings: ratings, positive: positive, negative: negative, identity: identity)
    }

    public func generate(_ request: GenerationRequest) async throws -> GenerationResult {
        try Task.checkCancellation()
        let clock = ContinuousClock()
        let start = clock.now
        let text = request.messages.last { $0.role == .user }?.content ?? ""
        let words = text.lowercased().split { !$0.isLetter && $0 != "'" }
        let score = words.reduce(0.0) { $0 + (ratings[String($1)] ?? 0) }
        let prompt = request.messages.reduce(0) { $0 + $1.content.split(separator: " ").count }
        let seconds = (clock.now - start) / .seconds(1)
        return GenerationResult(text: score > 0 ? positive : negative, usage: TokenUsage(promptTokens: prompt, completionTokens: 1), latencySeconds: seconds, computeSeconds: seconds)
    }
}
