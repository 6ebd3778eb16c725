import Foundation

/// `report.html`: one self-contained page (no network, no external assets) with a summary
/// card, the tally table, inline SVG charts that need no JavaScript, the sensitivity map,
/// and a per-example drill-down. A few lines of optional script only add a search box.
///
/// ```swift
/// let html = try HTMLRenderer(measurements: measurements).render(Report.build(from: measurements))
/// ```
public struct HTMLRenderer: ReportRenderer {
    /// The run's raw measurements, used to vary token prices in the sensitivity map; without
    /// them only traffic varies.
    public let measurements: RunMeasurements?
    /// At most this many examples are listed in the drill-down (the rest are counted).
    public let maxExamples: Int

    /// - Parameters:
    ///   - measurements: the run's measurements (from the runner or the ledger), if at hand.
    ///   - maxExamples: cap on drill-down entries, to keep the page light.
    public init(measurements: RunMeasurements? = nil, maxExamples: Int = 1000) {
        self.measurements = measurements
        self.maxExamples = maxExamples
    }

    public var fileName: String { "report.html" }

    /// Renders the page.
    /// - Throws: never in practice; declared by `ReportRenderer`.
    public func render(_ report: Report) throws -> String {
        let sensitivity = Sensitivity.map(report: report, measurements: measurements)
        let tornado = Sensitivity.tornado(report: report, measurements: measurements)
        let charts = ReportCharts.all(for: report, sensitivity: sensitivity, tornado: tornado)
        var page = HTMLPage()
        page.open(title: "Tally report: \(report.recipe)")
        header(&page, report)
        navigation(&page, charts: charts, report: report)
        page.raw("<main>\n")
        summary(&page, report, sensitivity: sensitivity, tornado: charts.contains { $0.id == "tornado" } ? tornado : nil)
        tally(&page, report)
        variantsSection(&page, report)
        chartSections(&page, report, charts: charts)
        examples(&page, report)
        dataSection(&page, report)
        notes(&page, report)
        page.raw("</main>\n")
        page.raw("<footer><p>Written by Tally from run <code>\(esc(report.runID))</code>. Every number is measured; GPU figures, where shown, are labelled estimates.</p></footer>\n")
        page.close()
        return page.text
    }

    func esc(_ text: String) -> String { Markup.escape(text) }

    // MARK: Header and navigation

    func header(_ page: inout HTMLPage, _ report: Report) {
        page.raw("<header>\n<h1>Tally report: \(esc(report.recipe))</h1>\n<p class=\"meta\">")
        page.raw("Run <code>\(esc(report.runID))</code> of <code>\(esc(report.recipePath))</code> &middot; metric <strong>\(esc(report.metric))</strong> &middot; ")
        page.raw("costs over \(esc(CostModel.format(report.costs.horizonMonths))) months at \(esc(CostModel.formatVolume(report.costs.requestsPerMonth))) requests/month &middot; ")
        page.raw("compute \(esc(Cells.usd(report.costs.computeUSDPerHour)))/h &middot; started \(esc(Self.date(report.startedAt)))")
        if let finished = report.finishedAt { page.raw(", finished \(esc(Self.date(finished)))") }
        page.raw("</p>\n")
        if !report.complete {
            page.raw("<p class=\"warning\" role=\"alert\"><strong>Incomplete run:</strong> it was interrupted or stopped by the budget; the numbers cover the work that was done.</p>\n")
        }
        page.raw("</header>\n")
    }

    func navigation(_ page: inout HTMLPage, charts: [Chart], report: Report) {
        var links = [("summary", "Recommendation"), ("tally", "Tally table")]
        if !(report.variantGroups ?? []).isEmpty { links.append(("variants", "Prompt variants")) }
        links += charts.map { ($0.id, $0.title) }
        if !report.examples.isEmpty { links.append(("examples", "Examples")) }
        if !(report.data ?? []).isEmpty { links.append(("data", "Data")) }
        if !report.notes.isEmpty { links.append(("notes", "Notes")) }
        page.raw("<nav aria-label=\"Sections\"><ul>")
        for (id, title) in links { page.raw("<li><a href=\"#\(id)\">\(esc(title))</a></li>") }
        page.raw("</ul></nav>\n")
    }

    static func date(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    // MARK: Summary card

    func summary(_ page: inout HTMLPage, _ report: Report, sensitivity: SensitivityMap, tornado: Tornado?) {
        let decision = report.decision
        page.raw("<section id=\"summary\" class=\"card\" aria-labelledby=\"summary-h\">\n<h2 id=\"summary-h\">Recommendation</h2>\n")
        if let name = decision.recommended, let s = report.strategy(named: name) {
            page.raw("<p class=\"pick\"><span class=\"pick-name\">\(esc(name))</span> <span class=\"pick-kind\">\(esc(s.kind))\(s.backend.map { " on " + esc($0) } ?? " (no LLM)")</span></p>\n")
            page.raw("<dl class=\"facts\">")
            page.raw("<div><dt>Accuracy</dt><dd>\(esc(Cells.accuracy(s)))</dd></div>")
            page.raw("<div><dt>Total over \(esc(CostModel.format(report.costs.horizonMonths))) months</dt><dd>\(esc(Cells.total(s.cost)))</dd></div>")
            page.raw("<div><dt>One-off</dt><dd>\(esc(Cells.oneOff(s.cost)))</dd></div>")
            page.raw("<div><dt>Per 1k requests</dt><dd>\(esc(Cells.usd(s.cost.per1kRequestsUSD)))</dd></div>")
            page.raw("<div><dt>Data leaves machine</dt><dd>\(esc(Cells.yesNo(s.dataLeavesMachine)))</dd></div>")
            page.raw("</dl>\n")
        } else {
            page.raw("<p class=\"pick none\"><span class=\"pick-name\">No strategy qualifies</span></p>\n")
        }
        page.raw("<h3>Why</h3>\n<p>\(esc(decision.reason))</p>\n")
        if !decision.wouldFlip.isEmpty {
            page.raw("<h3>What would change the choice</h3>\n<ul>")
            for line in decision.wouldFlip { page.raw("<li>\(esc(line))</li>") }
            page.raw("</ul>\n")
        }
        let others = sensitivity.shares.filter { $0.name != (decision.recommended ?? "none") && $0.share > 0 }
        if sensitivity.pricesVaried || !others.isEmpty {
            var text = "Across traffic from \(TickFormat.volume(sensitivity.volumes.first ?? 0)) to \(TickFormat.volume(sensitivity.volumes.last ?? 0)) requests/month"
            if sensitivity.pricesVaried {
                text += " and \(sensitivity.axis == .computePrice ? "compute price" : "token prices") from \(TickFormat.multiplier(sensitivity.axisRange.lowerBound)) to \(TickFormat.multiplier(sensitivity.axisRange.upperBound))"
            }
            text += ", "
            text += sensitivity.shares.map { "\($0.name == "none" ? "no strategy qualifies" : $0.name) wins \(Int(($0.share * 100).rounded()))%" }.joined(separator: ", ")
            text += " of the map."
            page.raw("<p class=\"sensitivity-note\">\(esc(text)) <a href=\"#sensitivity\">See the map.</a></p>\n")
        }
        if let tornado {
            page.raw("<p class=\"sensitivity-note\">One input at a time, against \(esc(tornado.rival)): \(esc(ReportCharts.tornadoFlipSentence(tornado))) <a href=\"#tornado\">See the tornado chart.</a></p>\n")
        }
        if let test = report.pairedTest {
            let verdict = test.significant ? "a significant difference" : "<strong>not</strong> a significant difference"
            page.raw("<p class=\"paired\">Paired test of the two most accurate, \(esc(test.first)) vs \(esc(test.second)): ")
            page.raw("\(esc(String(format: "%+.1f", test.difference.value * 100))) points [\(esc(String(format: "%+.1f", test.difference.low * 100))), \(esc(String(format: "%+.1f", test.difference.high * 100)))], ")
            page.raw("\(esc(DecisionMaker.describe(test))): \(verdict).</p>\n")
        }
        if let size = report.testSetSize {
            page.raw("<p class=\"test-set-size\"><strong>Test-set size:</strong> \(esc(size.summary))</p>\n")
        }
        page.raw("</section>\n")
    }

    // MARK: Tally table

    func tally(_ page: inout HTMLPage, _ report: Report) {
        var probes: [String] = []
        for s in report.strategies { for f in s.forgetting where !probes.contains(f.probe) { probes.append(f.probe) } }
        page.raw("<section id=\"tally\" aria-labelledby=\"tally-h\">\n<h2 id=\"tally-h\">Tally</h2>\n")
        page.raw("<div class=\"scroll\"><table class=\"tally\">\n<caption>Every strategy on \(esc(report.metric)); costs over \(esc(CostModel.format(report.costs.horizonMonths))) months at \(esc(CostModel.formatVolume(report.costs.requestsPerMonth))) requests/month. Brackets: 95% bootstrap interval.</caption>\n")
        page.raw("<thead><tr><th scope=\"col\">Strategy</th><th scope=\"col\">Kind</th><th scope=\"col\">Backend</th><th scope=\"col\">Accuracy [95% CI]</th><th scope=\"col\">Unparsed</th>")
        page.raw("<th scope=\"col\">One-off</th><th scope=\"col\">Per 1k requests</th><th scope=\"col\">Total</th><th scope=\"col\">Latency ms<br>p50 / p95</th>")
        for probe in probes { page.raw("<th scope=\"col\">Forgetting<br>\(esc(probe))</th>") }
        page.raw("<th scope=\"col\">Data leaves<br>machine</th></tr></thead>\n<tbody>\n")
        let pareto = Set(report.decision.pareto)
        for s in report.strategies {
            let recommended = s.name == report.decision.recommended
            let ruledOut = report.decision.infeasible.first { $0.name == s.name }
            var classes: [String] = []
            if recommended { classes.append("recommended") }
            if ruledOut != nil { classes.append("ruled-out") }
            page.raw("<tr\(classes.isEmpty ? "" : " class=\"\(classes.joined(separator: " "))\"")>")
            let style = ReportCharts.style(report, s.name)
            var nameCell = "<span class=\"swatch\" style=\"background:\(style.color)\" aria-hidden=\"true\"></span>\(esc(s.name))"
            var badges = ""
            if recommended { badges += "<span class=\"badge\">recommended</span>" }
            if pareto.contains(s.name) { badges += "<span class=\"tag\" title=\"On the Pareto front of accuracy against total cost\">Pareto front</span>" }
            if !badges.isEmpty { nameCell += "<div class=\"badges\">\(badges)</div>" }
            if let ruledOut { nameCell += "<div class=\"why\">ruled out: \(esc(ruledOut.reasons.joined(separator: "; ")))</div>" }
            page.raw("<th scope=\"row\">\(nameCell)</th>")
            page.raw("<td>\(esc(s.kind))</td><td>\(esc(Cells.backend(s)))</td>")
            page.raw("<td class=\"num\">\(accuracyCell(s.accuracy))\(seedsCell(s.seeds))\(selfConsistencyCell(s.selfConsistency))\(retrievalCell(s.retrieval))</td>")
            page.raw("<td class=\"num\">\(s.accuracy.unparsed) / \(s.accuracy.n)</td>")
            page.raw("<td class=\"num\" title=\"\(esc(s.cost.oneOffBasis))\">\(esc(Cells.oneOff(s.cost)))</td>")
            page.raw("<td class=\"num\">\(esc(Cells.usd(s.cost.per1kRequestsUSD)))</td>")
            page.raw("<td class=\"num\">\(esc(Cells.total(s.cost)))</td>")
            page.raw("<td class=\"num\">\(esc(Cells.latency(s.latencyMs)))</td>")
            for probe in probes {
                if !s.usesLanguageModel {
                    page.raw("<td class=\"num muted\" title=\"No language model: nothing to forget\">n/a<br><span class=\"ci\">no LLM</span></td>")
                    continue
                }
                guard let f = s.forgetting.first(where: { $0.probe == probe }) else {
                    page.raw("<td class=\"num muted\">not probed</td>")
                    continue
                }
                if f.byConstruction {
                    page.raw("<td class=\"num muted\" title=\"Prompting does not change the weights\">0<br><span class=\"ci\">by construction</span></td>")
                } else if let drop = f.drop {
                    page.raw("<td class=\"num\">\(esc(String(format: "%.3f", drop)))<br><span class=\"ci\">[\(esc(Cells.decimal(f.ciLow))), \(esc(Cells.decimal(f.ciHigh)))]</span></td>")
                } else {
                    page.raw("<td class=\"num muted\">no base</td>")
                }
            }
            page.raw("<td>\(s.dataLeavesMachine ? "<strong>yes</strong>" : "no")</td></tr>\n")
        }
        page.raw("</tbody></table></div>\n")
        page.raw("<p class=\"legend-note\">Forgetting is the drop from the base model (positive = worse). One-off cost basis: hover a cell, or see the notes. Strategies marked <em>ruled out</em> break a constraint.</p>\n")
        page.raw("</section>\n")
    }

    /// Accuracy with its interval and a small bar drawn in CSS (no colour needed to read it).
    func accuracyCell(_ a: AccuracyReport) -> String {
        let pct = { (v: Double) in String(format: "%.1f", min(100, max(0, v * 100))) }
        return "<span class=\"acc\">\(esc(Cells.accuracy(a)))</span>"
            + "<span class=\"bar\" aria-hidden=\"true\"><span class=\"ci-band\" style=\"left:\(pct(a.ciLow))%;width:\(String(format: "%.1f", max(0, (min(1, a.ciHigh) - max(0, a.ciLow)) * 100)))%\"></span><span class=\"point\" style=\"left:\(pct(a.value))%\"></span></span>"
    }

    /// For a strategy run once per seed: the spread and each seed's accuracy, under its
    /// accuracy (whose interval then covers seeds and test examples).
    /// For a strategy that keeps the majority of several samples: how many, and how often
    /// they agreed.
    func selfConsistencyCell(_ report: SelfConsistencyReport?) -> String {
        guard let report else { return "" }
        return "<br><span class=\"ci\" title=\"Self-consistency: majority of \(report.samples) sampled answers per question\">\(report.samples) samples; agreement \(esc(Cells.percent(report.agreement)))</span>"
    }

    /// For a strategy that retrieves context: mean context length and recall@k.
    func retrievalCell(_ r: RetrievalMeasurement?) -> String {
        guard let r else { return "" }
        let recall = r.recall.map { "; recall@\(r.k) \(Cells.percent($0))" } ?? ""
        let embedding = r.embedder.map { "; embeds on \($0): \(r.indexEmbeddingTokens) tokens once, \(String(format: "%.1f", r.queryEmbeddingTokensPerQuestion)) per question" } ?? ""
        return "<br><span class=\"ci\" title=\"Retrieval: top \(r.k) of \(r.chunks) chunks by \(esc(r.retriever))\">context \(esc(String(format: "%.1f", r.meanContextTokens))) tokens\(esc(recall))\(esc(embedding))</span>"
    }

    func seedsCell(_ seeds: SeedSummary?) -> String {
        guard let seeds else { return "" }
        let range = "\(Cells.percent(seeds.min))-\(Cells.percent(seeds.max))"
        return "<br><span class=\"ci\" title=\"\(esc("Mean over seeds; interval: " + SeedSummary.intervalMethod))\">\(esc(seeds.shortDescription)); range \(esc(range))<br>\(esc(seeds.perSeedDescription))</span>"
    }

    // MARK: Charts

    func chartSections(_ page: inout HTMLPage, _ report: Report, charts: [Chart]) {
        for chart in charts {
            page.raw("<section id=\"\(chart.id)\" class=\"chart-section\" aria-labelledby=\"\(chart.id)-h\">\n<h2 id=\"\(chart.id)-h\">\(esc(chart.title))</h2>\n")
            page.raw("<figure>\n\(chart.svg())\n<figcaption>\(esc(chart.description))</figcaption>\n</figure>\n")
            page.raw(dataTable(chart.table, open: false))
            if let note = chart.note { page.raw("<p class=\"legend-note\">\(esc(note))</p>\n") }
            page.raw("</section>\n")
        }
    }

    func dataTable(_ table: DataTable, open: Bool) -> String {
        var out = "<details class=\"data\"\(open ? " open" : "")><summary>Data table (text alternative)</summary>\n<div class=\"scroll\"><table>\n<caption>\(esc(table.caption))</caption>\n<thead><tr>"
        for cell in table.header { out += "<th scope=\"col\">\(esc(cell))</th>" }
        out += "</tr></thead>\n<tbody>\n"
        for row in table.rows {
            out += "<tr>"
            for (i, cell) in row.enumerated() { out += i == 0 ? "<th scope=\"row\">\(esc(cell))</th>" : "<td>\(esc(cell))</td>" }
            out += "</tr>\n"
        }
        out += "</tbody></table></div>\n</details>\n"
        return out
    }

    // MARK: Examples

    func examples(_ page: inout HTMLPage, _ report: Report) {
        guard !report.examples.isEmpty else { return }
        let shown = report.examples.prefix(maxExamples)
        let flags = shown.map { example -> (disagree: Bool, error: Bool, unparsed: Bool) in
            let answers = Set(example.answers.map { $0.answer.map(Normalizer.key) ?? "\u{0}unparsed" })
            return (answers.count > 1, example.answers.contains { $0.score < 1 }, example.answers.contains { $0.answer == nil })
        }
        let disagreements = flags.filter(\.disagree).count
        let errors = flags.filter(\.error).count
        let unparsed = flags.filter(\.unparsed).count
        page.raw("<section id=\"examples\" aria-labelledby=\"examples-h\">\n<h2 id=\"examples-h\">Examples</h2>\n")
        page.raw("<p>Every test example with the expected answer and each strategy's answer. ")
        page.raw("<em>Disagreement</em>: the strategies' extracted answers differ; <em>error</em>: at least one strategy scored below 1; <em>unparsed</em>: at least one answer named no valid label.")
        if report.examples.count > shown.count { page.raw(" The first \(shown.count) of \(report.examples.count) are listed.") }
        page.raw("</p>\n<div class=\"drill\">\n")
        let filters = [("all", "All", shown.count), ("disagree", "Disagreements", disagreements), ("error", "Errors", errors), ("unparsed", "Unparsed", unparsed)]
        for (i, filter) in filters.enumerated() {
            page.raw("<input type=\"radio\" name=\"example-filter\" id=\"filter-\(filter.0)\" value=\"\(filter.0)\"\(i == 0 ? " checked" : "")>")
            page.raw("<label for=\"filter-\(filter.0)\">\(filter.1) (\(filter.2))</label>\n")
        }
        page.raw("<p class=\"search\" hidden><label>Search inputs and answers <input type=\"search\" id=\"example-search\" autocomplete=\"off\"></label> <span id=\"example-count\" aria-live=\"polite\"></span></p>\n")
        page.raw("<ol class=\"examples\">\n")
        for (example, flag) in zip(shown, flags) {
            var classes = ["example"]
            if flag.disagree { classes.append("disagree") }
            if flag.error { classes.append("error") }
            if flag.unparsed { classes.append("unparsed") }
            let correct = example.answers.filter { $0.score >= 1 }.count
            page.raw("<li class=\"\(classes.joined(separator: " "))\"><details><summary>")
            page.raw("<span class=\"ex-id\">\(esc(example.id))</span> <span class=\"ex-input\">\(esc(Self.truncate(example.input, 160)))</span> ")
            page.raw("<span class=\"ex-score\">\(correct)/\(example.answers.count) correct</span>")
            if flag.disagree { page.raw(" <span class=\"tag\">disagreement</span>") }
            page.raw("</summary>\n<div class=\"ex-body\"><p><strong>Input</strong></p><pre>\(esc(Self.truncate(example.input, 4000)))</pre>")
            page.raw("<p><strong>Expected:</strong> <code>\(esc(example.expected))</code></p>\n<table class=\"answers\"><thead><tr><th scope=\"col\">Strategy</th><th scope=\"col\">Answer</th><th scope=\"col\">Score</th><th scope=\"col\">Raw output</th></tr></thead><tbody>")
            for answer in example.answers {
                let mark = answer.score >= 1 ? "<span class=\"ok\">&#10003; correct</span>" : (answer.answer == nil ? "<span class=\"bad\">&#10007; unparsed</span>" : "<span class=\"bad\">&#10007; wrong</span>")
                page.raw("<tr><th scope=\"row\">\(esc(answer.strategy))</th><td>\(answer.answer.map { "<code>\(esc($0))</code>" } ?? "<em>none</em>")</td>")
                page.raw("<td>\(esc(String(format: "%.2f", answer.score))) \(mark)</td><td><pre>\(esc(Self.truncate(answer.output, 2000)))</pre></td></tr>")
            }
            page.raw("</tbody></table></div></details></li>\n")
        }
        page.raw("</ol>\n</div>\n</section>\n")
    }

    static func truncate(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit)) + "…"
    }

    // MARK: Data

    /// Rows read, skipped and used per data file; a warning when rows were skipped.
    func dataSection(_ page: inout HTMLPage, _ report: Report) {
        guard let data = report.data, !data.isEmpty else { return }
        page.raw("<section id=\"data\" aria-labelledby=\"data-h\">\n<h2 id=\"data-h\">Data</h2>\n")
        let skipped = data.reduce(0) { $0 + $1.skipped }
        if skipped > 0 {
            page.raw("<p class=\"warning\" role=\"alert\"><strong>\(skipped) row(s) skipped</strong> as malformed or incomplete; the numbers cover the rows that were used.</p>\n")
        }
        page.raw("<ul>")
        for split in data { page.raw("<li>\(esc(split.line))</li>") }
        page.raw("</ul>\n</section>\n")
    }

    // MARK: Notes

    func notes(_ page: inout HTMLPage, _ report: Report) {
        var lines = report.notes
        for s in report.strategies {
            lines.append("\(s.name): one-off cost basis: \(s.cost.oneOffBasis).")
            if let gpu = s.cost.gpuEstimate { lines.append("\(s.name): GPU \(gpu.basis) = \(Cells.usd(gpu.usd)).") }
            if let note = s.forgettingNote, s.adaptsWeights { lines.append("\(s.name): forgetting: \(note)") }
            for note in s.training?.notes ?? [] { lines.append("\(s.name): \(note)") }
        }
        guard !lines.isEmpty else { return }
        page.raw("<section id=\"notes\" aria-labelledby=\"notes-h\">\n<h2 id=\"notes-h\">Notes</h2>\n<ul>")
        for line in lines { page.raw("<li>\(esc(line))</li>") }
        page.raw("</ul>\n</section>\n")
    }
}

/// Accumulates the page's text with its fixed head (styles) and tail (script).
struct HTMLPage {
    private(set) var text = ""

    mutating func raw(_ fragment: String) { text += fragment }

    mutating func open(title: String) {
        text += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        text += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        text += "<meta name=\"color-scheme\" content=\"light\">\n"
        text += "<title>\(Markup.escape(title))</title>\n<style>\n\(HTMLAssets.stylesheet)</style>\n</head>\n<body>\n"
    }

    mutating func close() {
        text += "<script>\n\(HTMLAssets.script)</script>\n</body>\n</html>\n"
    }
}

/// Answer normalisation for "do these strategies agree?" (case and surrounding space).
enum Normalizer {
    static func key(_ answer: String) -> String {
        answer.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }
}
