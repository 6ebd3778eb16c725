import Foundation
import TallyCore

/// Per-example results of a run as JSON Lines or CSV (`tally report RUN --examples FILE`):
/// one row per strategy and test example.
enum ExampleExport {
    enum Format {
        case jsonl, csv

        /// The format a file name asks for by its extension, or nil.
        init?(path: String) {
            switch URL(fileURLWithPath: path).pathExtension.lowercased() {
            case "jsonl", "ndjson": self = .jsonl
            case "csv": self = .csv
            default: return nil
            }
        }
    }

    /// The columns, in order (also the JSON keys).
    static let columns = [
        "strategy", "example_id", "input", "expected", "output", "answer", "score",
        "prompt_tokens", "completion_tokens", "latency_s", "cached",
    ]

    /// Writes every prediction of every strategy in `measurements`.
    /// - Throws: `TallyError` (`io`) when the file cannot be written.
    static func write(_ measurements: RunMeasurements, to url: URL) throws {
        let format = Format(path: url.path) ?? .jsonl
        var text = format == .csv ? columns.joined(separator: ",") + "\r\n" : ""
        for strategy in measurements.strategies {
            for p in strategy.predictions {
                let values: [Any] = [
                    strategy.runName, p.exampleID, p.input, p.expected, p.output, p.answer ?? NSNull(), p.score,
                    p.usage.promptTokens, p.usage.completionTokens, p.latencySeconds, p.cached,
                ]
                switch format {
                case .jsonl:
                    let object = Dictionary(uniqueKeysWithValues: zip(columns, values))
                    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                    text += String(decoding: data, as: UTF8.self) + "\n"
                case .csv:
                    text += values.map(csvField).joined(separator: ",") + "\r\n"
                }
            }
        }
        do {
            try Data(text.utf8).write(to: url, options: .atomic)
        } catch {
            throw TallyError(code: .io, message: "cannot write \(url.path): \(error.localizedDescription)", underlying: error)
        }
    }

    /// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break.
    static func csvField(_ value: Any) -> String {
        let text: String
        switch value {
        case is NSNull: text = ""
        case let flag as Bool: text = flag ? "true" : "false"
        default: text = "\(value)"
        }
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
