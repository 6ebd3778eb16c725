import Foundation

/// Formats a `Report` as text (terminal, Markdown, JSON, HTML, …).
///
/// ```swift
/// let text = try MarkdownRenderer().render(report)
/// try text.write(to: runDirectory.appending(path: MarkdownRenderer().fileName), atomically: true, encoding: .utf8)
/// ```
public protocol ReportRenderer: Sendable {
    /// The file this renderer's output is saved as in a run directory (`report.md`, …).
    var fileName: String { get }
    /// Renders the report.
    /// - Throws: when the report cannot be encoded.
    func render(_ report: Report) throws -> String
}

/// `report.json`: the report's JSON encoding (snake_case keys, ISO 8601 dates, sorted keys).
public struct JSONRenderer: ReportRenderer {
    public init() {}
    public var fileName: String { "report.json" }

    public func render(_ report: Report) throws -> String {
        let encoder = Self.encoder()
        let data = try encoder.encode(report)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// The encoder used for `report.json`.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    /// Reads a `report.json` back.
    /// - Throws: `DecodingError` when the file is not a report of this schema.
    public static func decode(_ data: Data) throws -> Report {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(Report.self, from: data)
    }
}

/// Shared cell formatting for the text renderers.
enum Cells {
    static func percent(_ value: Double) -> String { String(format: "%.1f%%", value * 100) }
    static func accuracy(_ a: AccuracyReport) -> String {
        String(format: "%.1f%% [%.1f, %.1f]", a.value * 100, a.ciLow * 100, a.ciHigh * 100)
    }
    /// The accuracy cell of a row; a strategy run once per seed adds its seed count and spread.
    static func accuracy(_ s: StrategyReport) -> String {
        accuracy(s.accuracy) + (s.seeds.map { " (\($0.shortDescription))" } ?? "")
    }
    static func usd(_ value: Double) -> String { DecisionMaker.usd(value) }
    /// The one-off cost, or "unknown" when the training cost is unknown.
    static func oneOff(_ cost: StrategyCost) -> String { cost.oneOffUnknown ? "unknown" : usd(cost.oneOffUSD) }
    /// The total, marked as a lower bound when it leaves out an unknown training cost.
    static func total(_ cost: StrategyCost) -> String { cost.oneOffUnknown ? "≥ " + usd(cost.totalUSD) : usd(cost.totalUSD) }
    /// One line per strategy run once per seed: mean, spread, range and each seed's accuracy.
    static func seedLines(_ report: Report) -> [String] {
        report.strategies.compactMap { s in
            guard let seeds = s.seeds else { return nil }
            var line = "\(s.name): mean \(percent(seeds.mean)) over \(seeds.runs.count) seed\(seeds.runs.count == 1 ? "" : "s")"
            if let sd = seeds.standardDeviation { line += String(format: ", sd %.1f points", sd * 100) }
            line += ", range \(percent(seeds.min))-\(percent(seeds.max)); \(seeds.perSeedDescription)"
            return line
        }
    }
    /// The retrieval cells of a `rag` row: retriever, k, mean context tokens, recall@k,
    /// embedding tokens (once, per question), corpus egress.
    static func retrieval(_ s: StrategyReport) -> [String]? {
        guard let r = s.retrieval else { return nil }
        return [
            s.name, "\(r.retriever), top \(r.k) of \(r.chunks)", String(format: "%.1f", r.meanContextTokens),
            r.recall.map { "\(percent($0)) (n = \(r.recallQuestions))" } ?? "-",
            r.embedder == nil ? "-" : "\(r.indexEmbeddingTokens) / " + String(format: "%.1f", r.queryEmbeddingTokensPerQuestion),
            yesNo(s.dataLeavesMachine),
        ]
    }
    static let retrievalHeader = ["strategy", "retriever", "mean context tokens", "recall@k", "embedding tokens (index / per question)", "corpus leaves machine"]

    static func ms(_ value: Double?) -> String {
        guard let value else { return "-" }
        return value >= 100 ? String(format: "%.0f", value) : String(format: "%.1f", value)
    }
    static func latency(_ l: LatencyReport) -> String { "\(ms(l.p50)) / \(ms(l.p95))" }
    static func forgetting(_ s: StrategyReport) -> String {
        if !s.usesLanguageModel { return notApplicable }
        if !s.adaptsWeights { return "0 (by construction)" }
        let drops = s.forgetting.compactMap(\.drop)
        guard let worst = drops.max() else { return s.forgetting.isEmpty ? "not probed" : "no base" }
        return String(format: "%.3f", worst)
    }
    /// The forgetting cell of a strategy without a language model.
    static let notApplicable = "n/a (no LLM)"
    /// The backend cell: its name, or "-" for a strategy without one.
    static func backend(_ s: StrategyReport) -> String { s.backend ?? "-" }
    static func decimal(_ value: Double?) -> String {
        guard let value else { return "-" }
        return String(format: "%.3f", value)
    }
    static func yesNo(_ value: Bool) -> String { value ? "yes" : "no" }
}

/// A plain-text table for the terminal, followed by the recommendation.
public struct TerminalRenderer: ReportRenderer {
    public init() {}
    public var fileName: String { "report.txt" }

    public func render(_ report: Report) throws -> String {
        var out = "Tally: \(report.recipe) (run \(report.runID))\n"
        out += "metric: \(report.metric); costs over \(CostModel.format(report.costs.horizonMonths)) months at \(CostModel.formatVolume(report.costs.requestsPerMonth)) requests/month\n\n"
        let header = ["strategy", "kind", "accuracy (95% CI)", "unparsed", "one-off", "per 1k req", "total", "p50/p95 ms", "forgetting", "data leaves"]
        var rows: [[String]] = []
        for s in report.strategies {
            let mark = s.name == report.decision.recommended ? "* " : "  "
            rows.append([
                mark + s.name, s.kind, Cells.accuracy(s), "\(s.accuracy.unparsed)/\(s.accuracy.n)",
                Cells.oneOff(s.cost), Cells.usd(s.cost.per1kRequestsUSD), Cells.total(s.cost),
                Cells.latency(s.latencyMs), Cells.forgetting(s), Cells.yesNo(s.dataLeavesMachine),
            ])
        }
        out += table(header: ["  " + header[0]] + header.dropFirst(), rows: rows)
        out += "\n"
        let seedLines = Cells.seedLines(report)
        if !seedLines.isEmpty {
            out += "Across seeds (intervals resample seeds and test examples):\n"
            for line in seedLines { out += wrap("- " + line, indent: "  ", hanging: "    ") + "\n" }
            out += "\n"
        }
        let retrievalRows = report.strategies.compactMap(Cells.retrieval)
        if !retrievalRows.isEmpty {
            out += "Retrieval (context tokens: letter/digit runs and punctuation marks):\n"
            out += table(header: ["  " + Cells.retrievalHeader[0]] + Cells.retrievalHeader.dropFirst(), rows: retrievalRows.map { ["  " + $0[0]] + $0.dropFirst() })
            out += "\n"
        }
        out += variantsSection(report)
        out += curvesSection(report)
        if let recommended = report.decision.recommended {
            out += "Recommended: \(recommended)\n"
        } else {
            out += "Recommended: none\n"
        }
        out += wrap(report.decision.reason, indent: "  ") + "\n"
        if !report.decision.wouldFlip.isEmpty {
            out += "What would change it:\n"
            for line in report.decision.wouldFlip { out += wrap("- " + line, indent: "  ", hanging: "    ") + "\n" }
        }
        if let data = report.data, !data.isEmpty {
            out += "Data:\n"
            for split in data { out += wrap("- " + split.line, indent: "  ", hanging: "    ") + "\n" }
        }
        if !report.notes.isEmpty {
            out += "Notes:\n"
            for line in report.notes { out += wrap("- " + line, indent: "  ", hanging: "    ") + "\n" }
        }
        return out
    }

    func table(header: [String], rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ") + "\n"
        }
        var out = line(header)
        out += line(widths.map { String(repeating: "-", count: $0) })
        for row in rows { out += line(row) }
        return out.split(separator: "\n", omittingEmptySubsequences: false).map { $0.replacing(/\s+$/, with: "") }.joined(separator: "\n")
    }

    func wrap(_ text: String, indent: String, hanging: String? = nil, width: Int = 96) -> String {
        var lines: [String] = []
        var current = indent
        let next = hanging ?? indent
        for word in text.split(separator: " ") {
            let prefix = lines.isEmpty ? indent : next
            if current.count + word.count + 1 > width && current != prefix {
                lines.append(current)
                current = next
            }
            current += (current == indent || current == next ? "" : " ") + word
        }
        if current != indent && current != next { lines.append(current) }
        return lines.joined(separator: "\n")
    }
}

/// `report.md`: the full report as GitHub-flavoured Markdown.
public struct MarkdownRenderer: ReportRenderer {
    /// When set, `report.md` gets a Charts section linking SVG files in this directory
    /// (relative to the run directory), which `artifacts(for:)` produces.
    public let chartsDirectory: String?
    /// The run's measurements, for the token-price axis of the sensitivity chart.
    public let measurements: RunMeasurements?

    /// - Parameters:
    ///   - chartsDirectory: where chart SVGs go (e.g. `charts`); nil for no charts.
    ///   - measurements: the run's measurements, when at hand.
    public init(chartsDirectory: String? = nil, measurements: RunMeasurements? = nil) {
        self.chartsDirectory = chartsDirectory
        self.measurements = measurements
    }
    public var fileName: String { "report.md" }

    public func render(_ report: Report) throws -> String {
        var out = "# Tally report: \(report.recipe)\n\n"
        out += "Run `\(report.runID)` of `\(report.recipePath)`; metric **\(report.metric)**; "
        out += "costs over \(CostModel.format(report.costs.horizonMonths)) months at \(CostModel.formatVolume(report.costs.requestsPerMonth)) requests/month; "
        out += "compute at \(Cells.usd(report.costs.computeUSDPerHour))/h.\n"
        if !report.complete { out += "\n> **Incomplete run:** the numbers cover the work that was done.\n" }

        out += "\n## Recommendation\n\n"
        out += "**\(report.decision.recommended ?? "None")**. \(escape(report.decision.reason))\n"
        if !report.decision.wouldFlip.isEmpty {
            out += "\nWhat would change the choice:\n\n"
            for line in report.decision.wouldFlip { out += "- \(escape(line))\n" }
        }

        out += "\n## Tally\n\n"
        out += "| strategy | kind | backend | accuracy [95% CI] | unparsed | one-off | per 1k requests | total | latency p50 / p95 (ms) | max forgetting | data leaves machine |\n"
        out += "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n"
        for s in report.strategies {
            let name = s.name == report.decision.recommended ? "**\(escape(s.name))**" : escape(s.name)
            out += "| \(name) | \(s.kind) | \(escape(Cells.backend(s))) | \(Cells.accuracy(s)) | \(s.accuracy.unparsed) / \(s.accuracy.n) | \(Cells.oneOff(s.cost)) | \(Cells.usd(s.cost.per1kRequestsUSD)) | \(Cells.total(s.cost)) | \(Cells.latency(s.latencyMs)) | \(Cells.forgetting(s)) | \(Cells.yesNo(s.dataLeavesMachine)) |\n"
        }
        out += "\nPareto front (accuracy vs total cost): \(report.decision.pareto.joined(separator: ", ")).\n"
        if !report.decision.infeasible.isEmpty {
            out += "\nRuled out by the constraints:\n\n"
            for entry in report.decision.infeasible { out += "- \(escape(entry.name)): \(escape(entry.reasons.joined(separator: "; ")))\n" }
        }

        out += seedsSection(report)
        out += retrievalSection(report)
        out += variantsSection(report)
        out += curvesSection(report)

        if let test = report.pairedTest {
            out += "\n## Paired test\n\n"
            out += "\(escape(test.first)) vs \(escape(test.second)) on \(test.n) shared examples: difference \(String(format: "%+.1f", test.difference.value * 100)) points "
            out += "[\(String(format: "%+.1f", test.difference.low * 100)), \(String(format: "%+.1f", test.difference.high * 100))], "
            out += "\(DecisionMaker.describe(test)): "
            out += test.significant ? "significant at the 5% level.\n" : "**not** significantly different.\n"
        }

        out += "\n## Cost\n\n"
        out += "| strategy | one-off basis | mean prompt tokens | mean completion tokens | mean compute s | evaluation cost | GPU estimate (one H100) |\n"
        out += "| --- | --- | ---: | ---: | ---: | ---: | --- |\n"
        for s in report.strategies {
            let gpu = s.cost.gpuEstimate.map { "\(Cells.usd($0.usd)) (\(String(format: "%.1f", $0.seconds)) s; estimate)" } ?? "-"
            out += "| \(escape(s.name)) | \(escape(s.cost.oneOffBasis)) | \(String(format: "%.1f", s.cost.meanPromptTokens)) | \(String(format: "%.1f", s.cost.meanCompletionTokens)) | \(String(format: "%.3f", s.cost.meanComputeSeconds)) | \(Cells.usd(s.cost.evaluationUSD)) | \(gpu) |\n"
        }
        if !report.decision.breakEven.isEmpty {
            out += "\nBreak-even volumes (total cost over the horizon):\n\n"
            out += "| pair | requests/month | cheaper below | cheaper above |\n| --- | ---: | --- | --- |\n"
            for pair in report.decision.breakEven {
                let volume = pair.requestsPerMonth.map(CostModel.formatVolume) ?? "never"
                out += "| \(escape(pair.first)) vs \(escape(pair.second)) | \(volume) | \(escape(pair.cheaperBelow ?? "-")) | \(escape(pair.cheaperAbove ?? "-")) |\n"
            }
        }

        let probed = report.strategies.filter { !$0.forgetting.isEmpty }
        if !probed.isEmpty {
            out += "\n## Forgetting\n\n"
            out += "Drop = base score minus adapted score (for drift probes: increase in nats per token); positive means the adapted model got worse.\n\n"
            out += "| strategy | probe | kind | base | adapted | drop [95% CI] |\n| --- | --- | --- | ---: | ---: | --- |\n"
            for s in probed {
                for f in s.forgetting {
                    let drop = f.byConstruction ? "0 (by construction)" : f.drop.map { d in "\(String(format: "%.3f", d)) [\(Cells.decimal(f.ciLow)), \(Cells.decimal(f.ciHigh))]" } ?? "-"
                    out += "| \(escape(s.name)) | \(escape(f.probe)) | \(f.kind.rawValue) | \(Cells.decimal(f.base)) | \(Cells.decimal(f.adapted)) | \(drop) |\n"
                }
            }
        }

        let trained = report.strategies.filter { $0.training != nil }
        if !trained.isEmpty {
            out += "\n## Training\n\n"
            out += "| strategy | wall s | trained tokens | steps | first train loss | last train loss | best validation loss |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
            for s in trained {
                // A strategy run once per seed gets one row per seed's job.
                var jobs: [(label: String, outcome: FineTuneOutcome)] = []
                if let seeds = s.seeds {
                    for run in seeds.runs { if let t = run.training { jobs.append(("\(s.name) (seed \(run.seed))", t)) } }
                } else if let t = s.training {
                    jobs.append((s.name, t))
                }
                for (label, t) in jobs {
                    let best = t.validationLoss.map(\.loss).min()
                    out += "| \(escape(label)) | \(String(format: "%.1f", t.wallSeconds)) | \(t.trainedTokens) | \(t.steps) | \(Cells.decimal(t.trainLoss.first?.loss)) | \(Cells.decimal(t.trainLoss.last?.loss)) | \(Cells.decimal(best)) |\n"
                }
            }
            let trainingNotes = trained.flatMap { s in (s.training?.notes ?? []).map { "\(s.name): \($0)" } }
            if !trainingNotes.isEmpty {
                out += "\n"
                for note in trainingNotes { out += "- \(escape(note))\n" }
            }
        }

        out += chartsSection(report)
        if let data = report.data, !data.isEmpty {
            out += "\n## Data\n\n"
            for split in data { out += "- \(escape(split.line))\n" }
        }
        if !report.notes.isEmpty {
            out += "\n## Notes\n\n"
            for note in report.notes { out += "- \(escape(note))\n" }
        }
        return out
    }

    /// Strategies run once per seed: each seed's accuracy, the mean, spread and range.
    /// One row per strategy that retrieves context (`rag`).
    func retrievalSection(_ report: Report) -> String {
        let rows = report.strategies.compactMap(Cells.retrieval)
        guard !rows.isEmpty else { return "" }
        var out = "\n## Retrieval\n\n"
        out += "Context tokens count runs of letters and digits and single punctuation marks; recall@k is the share of questions whose answer document was retrieved.\n\n"
        out += "| " + Cells.retrievalHeader.joined(separator: " | ") + " |\n| --- | --- | ---: | ---: | ---: | --- |\n"
        for row in rows { out += "| " + ([escape(row[0])] + row.dropFirst()).joined(separator: " | ") + " |\n" }
        return out
    }

    func seedsSection(_ report: Report) -> String {
        let seeded = report.strategies.filter { $0.seeds != nil }
        guard !seeded.isEmpty else { return "" }
        var out = "\n## Seeds\n\n"
        out += "Strategies run once per seed. Accuracy in the Tally table is the mean over seeds; its 95% interval is a \(SeedSummary.intervalMethod). sd: sample standard deviation across seeds.\n\n"
        out += "| strategy | seeds | mean | sd (points) | min - max | per seed [95% CI over examples] |\n| --- | ---: | ---: | ---: | --- | --- |\n"
        for s in seeded {
            guard let seeds = s.seeds else { continue }
            let sd = seeds.standardDeviation.map { String(format: "%.1f", $0 * 100) } ?? "-"
            let each = seeds.runs.map { "\($0.seed): \(String(format: "%.1f%% [%.1f, %.1f]", $0.accuracy * 100, $0.ciLow * 100, $0.ciHigh * 100))" }.joined(separator: "; ")
            out += "| \(escape(s.name)) | \(seeds.runs.count) | \(Cells.percent(seeds.mean)) | \(sd) | \(Cells.percent(seeds.min)) - \(Cells.percent(seeds.max)) | \(each) |\n"
        }
        return out
    }

    /// Escapes characters that would break a table cell.
    func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}
