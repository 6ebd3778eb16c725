import Foundation

/// Two runs side by side: per strategy, what changed and by how much, with a paired test on
/// the examples both runs scored; plus changes to the recommendation and the settings.
///
/// ```swift
/// let comparison = RunComparison(before: try load("run-a"), after: try load("run-b"))
/// print(comparison.text())
/// ```
public struct RunComparison: Sendable {
    /// One strategy in either run.
    public struct Row: Sendable {
        public let name: String
        public let before: StrategyReport?
        public let after: StrategyReport?
        /// Same strategy, before vs after, on the example ids both runs scored (nil when
        /// the strategy is missing from a run or no example is shared).
        public let paired: PairedComparison?

        /// Accuracy change in percentage points (after minus before).
        public var accuracyDelta: Double? {
            guard let before, let after else { return nil }
            return (after.accuracy.value - before.accuracy.value) * 100
        }
    }

    public let before: Report
    public let after: Report
    public let rows: [Row]
    /// Settings that differ between the runs, in words (`metric: accuracy -> f1`).
    public let settingChanges: [String]

    /// - Parameters:
    ///   - before: the earlier (or reference) run's report.
    ///   - after: the later run's report.
    public init(before: Report, after: Report) {
        self.before = before
        self.after = after
        var names = before.strategies.map(\.name)
        for s in after.strategies where !names.contains(s.name) { names.append(s.name) }
        let samples = max(200, min(before.bootstrapSamples, after.bootstrapSamples))
        rows = names.map { name in
            let a = before.strategy(named: name), b = after.strategy(named: name)
            var paired: PairedComparison?
            if a != nil, b != nil {
                let first = Self.scores(of: name, in: after), second = Self.scores(of: name, in: before)
                let shared = Set(first.map(\.id)).intersection(second.map(\.id))
                if !shared.isEmpty {
                    paired = PairedComparison.compare(
                        first: ("\(name) (after)", first), second: ("\(name) (before)", second),
                        samples: samples, seed: Report.derivedSeed(after.seed, "compare", name))
                }
            }
            return Row(name: name, before: a, after: b, paired: paired)
        }
        var changes: [String] = []
        func note(_ label: String, _ x: String, _ y: String) { if x != y { changes.append("\(label): \(x) -> \(y)") } }
        note("recipe", before.recipe, after.recipe)
        note("metric", before.metric, after.metric)
        note("requests/month", CostModel.formatVolume(before.costs.requestsPerMonth), CostModel.formatVolume(after.costs.requestsPerMonth))
        note("horizon (months)", CostModel.format(before.costs.horizonMonths), CostModel.format(after.costs.horizonMonths))
        note("compute USD/h", CostModel.format(before.costs.computeUSDPerHour), CostModel.format(after.costs.computeUSDPerHour))
        note("min_accuracy", before.constraints.minAccuracy.map(Cells.percent) ?? "-", after.constraints.minAccuracy.map(Cells.percent) ?? "-")
        note("max_forgetting", before.constraints.maxForgetting.map(CostModel.format) ?? "-", after.constraints.maxForgetting.map(CostModel.format) ?? "-")
        note("budget_usd", before.constraints.budgetUSD.map(CostModel.format) ?? "-", after.constraints.budgetUSD.map(CostModel.format) ?? "-")
        note("test examples", "\(before.examples.count)", "\(after.examples.count)")
        note("seed", "\(before.seed)", "\(after.seed)")
        note("complete", Cells.yesNo(before.complete), Cells.yesNo(after.complete))
        settingChanges = changes
    }

    static func scores(of strategy: String, in report: Report) -> [(id: String, score: Double)] {
        report.examples.compactMap { example in
            example.answers.first { $0.strategy == strategy }.map { (example.id, $0.score) }
        }
    }

    /// The recommendation before and after, in one sentence.
    public var decisionSummary: String {
        let a = before.decision.recommended ?? "none", b = after.decision.recommended ?? "none"
        return a == b ? "Recommendation unchanged: \(a)." : "Recommendation changed: \(a) -> \(b)."
    }

    // MARK: Text

    /// A plain-text rendering for the terminal.
    public func text() -> String {
        var out = "Comparing run \(before.runID) (before) with \(after.runID) (after)\n"
        out += decisionSummary + "\n"
        if !settingChanges.isEmpty { out += "Changed settings: " + settingChanges.joined(separator: "; ") + "\n" }
        out += "\n"
        let header = ["strategy", "accuracy before -> after", "change (points)", "paired test", "total cost before -> after", "change", "p95 ms before -> after", "max forgetting before -> after"]
        let table = rows.map { row in
            [row.name, pair(row.before.map { Cells.accuracy($0.accuracy) }, row.after.map { Cells.accuracy($0.accuracy) }),
             row.accuracyDelta.map { String(format: "%+.1f", $0) } ?? "-", pairedText(row.paired),
             pair(row.before.map { Cells.usd($0.cost.totalUSD) }, row.after.map { Cells.usd($0.cost.totalUSD) }),
             relative(row.before?.cost.totalUSD, row.after?.cost.totalUSD),
             pair(row.before.map { Cells.ms($0.latencyMs.p95) }, row.after.map { Cells.ms($0.latencyMs.p95) }),
             pair(row.before.map { Cells.forgetting($0) }, row.after.map { Cells.forgetting($0) })]
        }
        out += TerminalRenderer().table(header: header, rows: table)
        return out
    }

    /// `a -> b`, or which run lacks the strategy.
    func pair(_ a: String?, _ b: String?) -> String {
        switch (a, b) {
        case let (a?, b?): a == b ? "\(a) (same)" : "\(a) -> \(b)"
        case let (a?, nil): "\(a) -> (absent)"
        case let (nil, b?): "(absent) -> \(b)"
        default: "-"
        }
    }

    func relative(_ a: Double?, _ b: Double?) -> String {
        guard let a, let b else { return "-" }
        if a == b { return "0%" }
        guard a != 0 else { return "new cost" }
        return String(format: "%+.0f%%", (b - a) / a * 100)
    }

    func pairedText(_ test: PairedComparison?) -> String {
        guard let test else { return "-" }
        return "p = \(String(format: "%.3g", test.pValue))\(test.significant ? " (significant)" : " (not significant)"), n = \(test.n)"
    }

    // MARK: HTML

    /// A self-contained HTML page: the comparison table and a before/after chart of
    /// accuracy and of total cost per strategy.
    public func html() -> String {
        let esc = Markup.escape
        var page = HTMLPage()
        page.open(title: "Tally comparison: \(before.runID) vs \(after.runID)")
        page.raw("<header>\n<h1>Tally comparison</h1>\n<p class=\"meta\">Before: run <code>\(esc(before.runID))</code> of <code>\(esc(before.recipe))</code> &middot; after: run <code>\(esc(after.runID))</code> of <code>\(esc(after.recipe))</code></p>\n</header>\n<main>\n")
        page.raw("<section id=\"summary\" class=\"card\"><h2>What changed</h2><p class=\"pick\"><span class=\"pick-name\">\(esc(decisionSummary))</span></p>")
        if settingChanges.isEmpty {
            page.raw("<p>Same recipe settings (metric, traffic, horizon, prices per hour, constraints, test set size, seed).</p>")
        } else {
            page.raw("<h3>Changed settings</h3><ul>")
            for change in settingChanges { page.raw("<li>\(esc(change))</li>") }
            page.raw("</ul>")
        }
        page.raw("</section>\n<section id=\"tally\"><h2>Side by side</h2><div class=\"scroll\"><table class=\"tally\"><caption>Before -> after per strategy; the paired test compares the same strategy across the two runs on the examples both scored.</caption>\n<thead><tr>")
        for cell in ["Strategy", "Accuracy before", "Accuracy after", "Change (points)", "Paired test", "Total before", "Total after", "Change", "p95 ms before", "p95 ms after", "Max forgetting before", "Max forgetting after"] {
            page.raw("<th scope=\"col\">\(esc(cell))</th>")
        }
        page.raw("</tr></thead>\n<tbody>\n")
        for row in rows {
            page.raw("<tr><th scope=\"row\">\(esc(row.name))</th>")
            let cells = [
                row.before.map { Cells.accuracy($0.accuracy) } ?? "absent", row.after.map { Cells.accuracy($0.accuracy) } ?? "absent",
                row.accuracyDelta.map { String(format: "%+.1f", $0) } ?? "-", pairedText(row.paired),
                row.before.map { Cells.usd($0.cost.totalUSD) } ?? "absent", row.after.map { Cells.usd($0.cost.totalUSD) } ?? "absent",
                relative(row.before?.cost.totalUSD, row.after?.cost.totalUSD),
                row.before.map { Cells.ms($0.latencyMs.p95) } ?? "absent", row.after.map { Cells.ms($0.latencyMs.p95) } ?? "absent",
                row.before.map { Cells.forgetting($0) } ?? "absent", row.after.map { Cells.forgetting($0) } ?? "absent",
            ]
            for cell in cells { page.raw("<td class=\"num\">\(esc(cell))</td>") }
            page.raw("</tr>\n")
        }
        page.raw("</tbody></table></div></section>\n")
        for chart in [accuracyChart(), costChart()].compactMap({ $0 }) {
            page.raw("<section id=\"\(chart.id)\" class=\"chart-section\"><h2>\(esc(chart.title))</h2><figure>\(chart.svg())<figcaption>\(esc(chart.description))</figcaption></figure></section>\n")
        }
        page.raw("</main>\n")
        page.close()
        return page.text
    }

    /// Before (hollow) to after (filled) per strategy, on one axis.
    func dumbbell(id: String, title: String, axis: String, values: [(name: String, before: Double?, after: Double?)], format: @escaping (Double) -> String, log: Bool) -> Chart? {
        let present = values.filter { $0.before != nil || $0.after != nil }
        guard !present.isEmpty else { return nil }
        let all = present.flatMap { [$0.before, $0.after].compactMap { $0 } }
        let useLog = log && all.allSatisfy { $0 > 0 } && (all.max() ?? 1) / max(all.min() ?? 1, 1e-12) > 30
        let domain = useLog ? Scale.logDomain(all) : Scale.niceDomain(all + (log ? [0] : []), pad: 0.08, floor: log ? 0 : nil)
        let rowHeight = 28.0
        let height = 30 + Double(present.count) * rowHeight + 70
        let width = 760.0
        let area = PlotArea(width: width, height: height, margin: (20, 40, 70, 170), xDomain: domain, yDomain: (0, 1), xLog: useLog)
        var svg = SVGFragment()
        for value in area.x.ticks(6) {
            svg.line(x1: area.x(value), y1: area.top, x2: area.x(value), y2: area.bottom, stroke: Palette.grid)
            svg.text(format(value), x: area.x(value), y: area.bottom + 16, anchor: "middle", size: 11, fill: Palette.muted)
        }
        svg.line(x1: area.left, y1: area.bottom, x2: area.right, y2: area.bottom, stroke: Palette.ink)
        svg.text(axis, x: (area.left + area.right) / 2, y: area.bottom + 36, anchor: "middle", size: 12)
        var descriptions: [String] = []
        for (i, value) in present.enumerated() {
            let y = area.top + 10 + (Double(i) + 0.5) * rowHeight
            let style = Palette.style(i)
            svg.text(value.name, x: area.left - 10, y: y + 4, anchor: "end", size: 12)
            if let a = value.before, let b = value.after {
                svg.line(x1: area.x(a), y1: y, x2: area.x(b), y2: y, stroke: style.color, width: 2)
            }
            if let a = value.before { svg.marker(style.marker, x: area.x(a), y: y, size: 5, color: style.color, hollow: true) }
            if let b = value.after { svg.marker(style.marker, x: area.x(b), y: y, size: 5.5, color: style.color) }
            descriptions.append("\(value.name) \(value.before.map(format) ?? "absent") to \(value.after.map(format) ?? "absent")")
        }
        svg.text("Hollow: before; filled: after.", x: area.left, y: area.bottom + 56, size: 11, fill: Palette.muted)
        let table = DataTable(caption: title, header: ["strategy", "before", "after"], rows: present.map { [$0.name, $0.before.map(format) ?? "absent", $0.after.map(format) ?? "absent"] })
        return Chart(id: id, title: title, description: "Before and after per strategy: " + descriptions.joined(separator: "; ") + ".", width: width, height: height, body: svg, table: table)
    }

    func accuracyChart() -> Chart? {
        dumbbell(id: "compare-accuracy", title: "Accuracy before and after", axis: "Accuracy",
                 values: rows.map { ($0.name, $0.before?.accuracy.value, $0.after?.accuracy.value) }, format: TickFormat.percent, log: false)
    }

    func costChart() -> Chart? {
        dumbbell(id: "compare-cost", title: "Total cost before and after", axis: "Total cost over each run's horizon",
                 values: rows.map { ($0.name, $0.before?.cost.totalUSD, $0.after?.cost.totalUSD) }, format: TickFormat.usd, log: true)
    }
}
