import Foundation

/// The charts of a report, shared by the HTML renderer (inline) and the Markdown renderer
/// (as `charts/*.svg` files next to `report.md`).
///
/// ```swift
/// for chart in ReportCharts.all(for: report, sensitivity: map, tornado: tornado) {
///     try chart.svg(standalone: true).write(to: dir.appending(path: "charts/\(chart.id).svg"), atomically: true, encoding: .utf8)
/// }
/// ```
public enum ReportCharts {
    /// Every chart the report has data for, in reading order.
    /// - Parameters:
    ///   - report: the report.
    ///   - sensitivity: the region map (omitted from the list when nil).
    ///   - tornado: the one-at-a-time sensitivity (omitted when nil).
    public static func all(for report: Report, sensitivity: SensitivityMap?, tornado: Tornado? = nil) -> [Chart] {
        var charts: [Chart] = []
        if let chart = accuracyVsCost(report) { charts.append(chart) }
        if let chart = costVsVolume(report) { charts.append(chart) }
        if let sensitivity, let chart = sensitivityMap(report, sensitivity) { charts.append(chart) }
        if let tornado, let chart = Self.tornado(report, tornado) { charts.append(chart) }
        if let chart = pairedTest(report) { charts.append(chart) }
        if let chart = trainingCurves(report) { charts.append(chart) }
        if let chart = shotCurves(report) { charts.append(chart) }
        if let chart = forgetting(report) { charts.append(chart) }
        if let chart = lossCurves(report) { charts.append(chart) }
        return charts
    }

    /// The style of strategy `name` (by its position in the report, so every chart agrees).
    static func style(_ report: Report, _ name: String) -> SeriesStyle {
        Palette.style(report.strategies.firstIndex { $0.name == name } ?? report.strategies.count)
    }

    static let width = 760.0

    // MARK: Accuracy against total cost

    /// Accuracy (with 95% whiskers) against total cost over the horizon, Pareto front marked.
    public static func accuracyVsCost(_ report: Report) -> Chart? {
        let rows = report.strategies.filter { $0.accuracy.n > 0 }
        guard !rows.isEmpty else { return nil }
        let height = 460.0
        let legendRows = Double((rows.count + 3) / 4)
        let totals = rows.map(\.cost.totalUSD)
        let positive = totals.allSatisfy { $0 > 0 }
        let useLog = positive && (totals.max() ?? 1) / max(totals.min() ?? 1, 1e-12) > 30
        let xDomain = useLog ? Scale.logDomain(totals) : Scale.niceDomain(totals + [0], pad: 0.08, floor: 0)
        let yDomain = Scale.niceDomain(rows.flatMap { [$0.accuracy.ciLow, $0.accuracy.ciHigh] }, pad: 0.05, floor: 0, ceiling: 1)
        let area = PlotArea(width: width, height: height, margin: (20, 40, 70 + legendRows * 18, 64), xDomain: xDomain, yDomain: yDomain, xLog: useLog)
        var svg = SVGFragment()
        area.drawAxes(&svg, xTicks: area.x.ticks(6), yTicks: area.y.ticks(5), xFormat: TickFormat.usd, yFormat: TickFormat.percent,
                      xLabel: "Total cost over \(CostModel.format(report.costs.horizonMonths)) months at \(CostModel.formatVolume(report.costs.requestsPerMonth)) requests/month\(useLog ? " (log scale)" : "")",
                      yLabel: report.metric == "accuracy" ? "Accuracy, 95% interval" : "Score (\(report.metric)), 95% interval")

        // Pareto front: a dashed line through the non-dominated strategies, cheapest first.
        let front = rows.filter { report.decision.pareto.contains($0.name) }.sorted { $0.cost.totalUSD < $1.cost.totalUSD }
        if front.count > 1 {
            var points: [(Double, Double)] = []
            for s in front { points.append((area.x(s.cost.totalUSD), area.y(s.accuracy.value))) }
            svg.polyline(points, stroke: "#555555", width: 1.5, dash: "5 4")
        }
        if let minimum = report.constraints.minAccuracy, minimum >= area.y.low, minimum <= area.y.high {
            svg.line(x1: area.left, y1: area.y(minimum), x2: area.right, y2: area.y(minimum), stroke: "#D55E00", width: 1, dash: "2 3")
            svg.text("min_accuracy \(TickFormat.percent(minimum))", x: area.right - 4, y: area.y(minimum) - 5, anchor: "end", size: 11, fill: "#A04000")
        }
        for s in rows {
            let style = style(report, s.name)
            let px = area.x(s.cost.totalUSD)
            svg.verticalWhisker(x: px, low: area.y(s.accuracy.ciLow), high: area.y(s.accuracy.ciHigh), color: style.color)
        }
        for s in rows {
            let style = style(report, s.name)
            let px = area.x(s.cost.totalUSD), py = area.y(s.accuracy.value)
            let onFront = report.decision.pareto.contains(s.name)
            if s.name == report.decision.recommended {
                svg.append("<circle cx=\"\(Markup.number(px))\" cy=\"\(Markup.number(py))\" r=\"12\" fill=\"none\" stroke=\"\(Palette.ink)\" stroke-width=\"1.5\"/>")
            }
            svg.marker(style.marker, x: px, y: py, size: 6, color: style.color, hollow: !onFront)
            let label = s.name + (s.name == report.decision.recommended ? " (recommended)" : "")
            let anchor = px > area.right - 160 ? "end" : "start"
            svg.text(label, x: px + (anchor == "start" ? 14 : -14), y: py - 8, anchor: anchor, size: 12, weight: s.name == report.decision.recommended ? "bold" : nil, className: "halo")
        }
        let legendTop = area.bottom + 54
        var entries = rows.map { Legend.Entry(label: $0.name, style: style(report, $0.name)) }
        entries = entries.map { entry in
            var copy = entry
            copy.hollow = !report.decision.pareto.contains(entry.label)
            return copy
        }
        Legend.draw(&svg, entries: entries, x: area.left, y: legendTop, width: area.right - area.left)
        svg.text("Filled: on the Pareto front (dashed); hollow: dominated; ring: recommended.", x: area.left, y: legendTop + legendRows * 18 + 2, size: 11, fill: Palette.muted)

        let cheapest = rows.min { $0.cost.totalUSD < $1.cost.totalUSD }
        let best = rows.max { $0.accuracy.value < $1.accuracy.value }
        var description = "Each strategy's accuracy with its 95% interval against its total cost over the horizon. "
        description += "Pareto front: \(report.decision.pareto.joined(separator: ", ")). "
        if let cheapest, let best {
            description += "Cheapest: \(cheapest.name) (\(Cells.usd(cheapest.cost.totalUSD))); most accurate: \(best.name) (\(Cells.accuracy(best.accuracy)))."
        }
        let table = DataTable(
            caption: "Accuracy and total cost per strategy",
            header: ["strategy", "accuracy [95% CI]", "total cost", "on Pareto front", "meets constraints"],
            rows: rows.map { s in
                [s.name, Cells.accuracy(s.accuracy), Cells.usd(s.cost.totalUSD), Cells.yesNo(report.decision.pareto.contains(s.name)),
                 Cells.yesNo(!report.decision.infeasible.contains { $0.name == s.name })]
            })
        return Chart(id: "accuracy-vs-cost", title: "Accuracy against total cost", description: description, width: width, height: height, body: svg, table: table)
    }

    // MARK: Cost against traffic

    /// Total cost over the horizon against monthly requests, one line per strategy, with
    /// break-even volumes marked.
    public static func costVsVolume(_ report: Report) -> Chart? {
        let rows = report.strategies
        guard !rows.isEmpty else { return nil }
        let range = Sensitivity.volumeRange(report: report)
        let samples = Sensitivity.logSpaced(from: range.low, to: range.high, count: 60)
        let horizon = report.costs.horizonMonths
        func total(_ s: StrategyReport, _ v: Double) -> Double { CostModel.total(s.cost, requestsPerMonth: v, horizonMonths: horizon) }
        let values = rows.flatMap { s in samples.map { total(s, $0) } }
        let positive = values.filter { $0 > 0 }
        let yLog = !positive.isEmpty
        let yDomain: (Double, Double) = yLog ? Scale.logDomain(positive) : (0, 1)
        let legendRows = Double((rows.count + 3) / 4)
        let height = 440.0
        let area = PlotArea(width: width, height: height, margin: (20, 40, 64 + legendRows * 18, 70), xDomain: (range.low, range.high), yDomain: yDomain, xLog: true, yLog: yLog)
        var svg = SVGFragment()
        area.drawAxes(&svg, xTicks: area.x.ticks(), yTicks: area.y.ticks(), xFormat: TickFormat.volume, yFormat: TickFormat.usd,
                      xLabel: "Requests per month (log scale)", yLabel: "Total cost over \(CostModel.format(horizon)) months\(yLog ? " (log)" : "")")
        let current = report.costs.requestsPerMonth
        if current >= range.low && current <= range.high {
            svg.line(x1: area.x(current), y1: area.top, x2: area.x(current), y2: area.bottom, stroke: Palette.muted, width: 1, dash: "3 3")
            svg.text("recipe: \(CostModel.formatVolume(current))/month", x: area.x(current) + 4, y: area.top + 12, size: 11, fill: Palette.muted)
        }
        for s in rows {
            let style = style(report, s.name)
            let points = samples.map { (area.x($0), area.y(total(s, $0))) }
            svg.polyline(points, stroke: style.color, width: 2.2, dash: style.dash)
            for i in stride(from: 6, to: samples.count, by: 13) {
                svg.marker(style.marker, x: points[i].0, y: points[i].1, size: 4.5, color: style.color)
            }
        }
        var marked: [[String]] = []
        for pair in report.decision.breakEven {
            guard let volume = pair.requestsPerMonth, volume >= range.low, volume <= range.high,
                  let first = report.strategy(named: pair.first) else { continue }
            let px = area.x(volume), py = area.y(total(first, volume))
            svg.append("<circle cx=\"\(Markup.number(px))\" cy=\"\(Markup.number(py))\" r=\"6\" fill=\"none\" stroke=\"\(Palette.ink)\" stroke-width=\"2\"/>")
            let involvesChoice = pair.first == report.decision.recommended || pair.second == report.decision.recommended
            if involvesChoice || report.decision.breakEven.count <= 3 {
                svg.text(TickFormat.volume(volume), x: px, y: py + 20, anchor: "middle", size: 11, weight: "bold", className: "halo")
            }
            marked.append(["\(pair.first) vs \(pair.second)", CostModel.formatVolume(volume), Cells.usd(total(first, volume)), pair.cheaperBelow ?? "-", pair.cheaperAbove ?? "-"])
        }
        let legendTop = area.bottom + 50
        Legend.draw(&svg, entries: rows.map { Legend.Entry(label: $0.name, style: style(report, $0.name), line: true) }, x: area.left, y: legendTop, width: area.right - area.left)
        svg.text("Circles: break-even volumes, where two strategies cost the same.", x: area.left, y: legendTop + legendRows * 18 + 2, size: 11, fill: Palette.muted)

        var description = "Total cost of each strategy over \(CostModel.format(horizon)) months as traffic grows from \(TickFormat.volume(range.low)) to \(TickFormat.volume(range.high)) requests per month. "
        description += marked.isEmpty ? "No two strategies break even in this range." : "\(marked.count) break-even point\(marked.count == 1 ? "" : "s") in this range."
        let table = DataTable(
            caption: "Break-even volumes (total cost equal)",
            header: ["pair", "requests/month", "total cost there", "cheaper below", "cheaper above"],
            rows: marked.isEmpty ? rows.map { [$0.name, "-", "\(Cells.oneOff($0.cost)) once + \(Cells.usd($0.cost.per1kRequestsUSD))/1k requests", "-", "-"] } : marked)
        return Chart(id: "cost-vs-traffic", title: "Total cost against monthly requests", description: description, width: width, height: height, body: svg, table: table)
    }

    // MARK: Paired test

    /// The accuracy difference between the two most accurate strategies, with its interval.
    public static func pairedTest(_ report: Report) -> Chart? {
        guard let test = report.pairedTest else { return nil }
        let height = 130.0
        let d = test.difference
        let domain = Scale.niceDomain([d.low, d.high, d.value, 0, -abs(d.high) * 0.2, abs(d.low) * 0.2], pad: 0.1, floor: -1, ceiling: 1)
        let area = PlotArea(width: width, height: height, margin: (24, 40, 50, 70), xDomain: domain, yDomain: (0, 1))
        var svg = SVGFragment()
        for value in area.x.ticks(6) {
            svg.line(x1: area.x(value), y1: area.top, x2: area.x(value), y2: area.bottom, stroke: Palette.grid)
            svg.text(String(format: "%+.0f", value * 100), x: area.x(value), y: area.bottom + 16, anchor: "middle", size: 11, fill: Palette.muted)
        }
        svg.line(x1: area.x(0), y1: area.top - 6, x2: area.x(0), y2: area.bottom, stroke: Palette.ink, width: 1.5)
        svg.text("no difference", x: area.x(0) + 4, y: area.top - 10, size: 11, fill: Palette.muted)
        let y = (area.top + area.bottom) / 2
        let color = test.significant ? "#0072B2" : "#666666"
        svg.horizontalWhisker(y: y, low: area.x(d.low), high: area.x(d.high), color: color, cap: 8)
        svg.marker(.diamond, x: area.x(d.value), y: y, size: 6, color: color, hollow: !test.significant)
        svg.text("\(test.first) minus \(test.second), accuracy points (95% interval)", x: (area.left + area.right) / 2, y: area.bottom + 36, anchor: "middle", size: 12)
        let verdict = test.significant ? "significant at the 5% level" : "not significantly different"
        let description = "\(test.first) minus \(test.second): \(String(format: "%+.1f", d.value * 100)) points [\(String(format: "%+.1f", d.low * 100)), \(String(format: "%+.1f", d.high * 100))] on \(test.n) shared examples; \(DecisionMaker.describe(test)); \(verdict)."
        let table = DataTable(
            caption: "Paired test between the two most accurate strategies",
            header: ["comparison", "difference (points)", "95% interval", "test", "verdict"],
            rows: [["\(test.first) vs \(test.second)", String(format: "%+.1f", d.value * 100), "[\(String(format: "%+.1f", d.low * 100)), \(String(format: "%+.1f", d.high * 100))]", DecisionMaker.describe(test), verdict]])
        return Chart(id: "paired-test", title: "Paired test: \(test.first) vs \(test.second)", description: description, width: width, height: height, body: svg, table: table)
    }

    // MARK: Forgetting

    /// Forgetting per probe and strategy: the drop with its 95% interval; prompting
    /// strategies shown at zero, marked "by construction".
    public static func forgetting(_ report: Report) -> Chart? {
        var probes: [String] = []
        for s in report.strategies { for f in s.forgetting where !probes.contains(f.probe) { probes.append(f.probe) } }
        guard !probes.isEmpty else { return nil }
        var items: [(probe: String, strategy: StrategyReport, entry: ForgettingReport)] = []
        for probe in probes {
            for s in report.strategies {
                if let entry = s.forgetting.first(where: { $0.probe == probe }) { items.append((probe, s, entry)) }
            }
        }
        let rowHeight = 24.0
        let groupGap = 14.0
        let plotHeight = Double(items.count) * rowHeight + Double(probes.count - 1) * groupGap + 10
        let height = 20 + plotHeight + 56
        var values: [Double] = [0]
        for item in items {
            values += [item.entry.drop, item.entry.ciLow, item.entry.ciHigh].compactMap { $0 }
        }
        if let limit = report.constraints.maxForgetting { values.append(limit) }
        let domain = Scale.niceDomain(values, pad: 0.08)
        let area = PlotArea(width: width, height: height, margin: (20, 40, 56, 220), xDomain: domain, yDomain: (0, 1))
        var svg = SVGFragment()
        for value in area.x.ticks(6) {
            svg.line(x1: area.x(value), y1: area.top, x2: area.x(value), y2: area.bottom, stroke: Palette.grid)
            svg.text(TickFormat.plain(value), x: area.x(value), y: area.bottom + 16, anchor: "middle", size: 11, fill: Palette.muted)
        }
        svg.line(x1: area.left, y1: area.bottom, x2: area.right, y2: area.bottom, stroke: Palette.ink)
        svg.line(x1: area.x(0), y1: area.top, x2: area.x(0), y2: area.bottom, stroke: Palette.ink, width: 1.5)
        if let limit = report.constraints.maxForgetting {
            svg.line(x1: area.x(limit), y1: area.top, x2: area.x(limit), y2: area.bottom, stroke: "#D55E00", width: 1.2, dash: "2 3")
            svg.text("max_forgetting \(TickFormat.plain(limit))", x: area.x(limit) + 4, y: area.top + 10, size: 11, fill: "#A04000")
        }
        var y = area.top + 8
        var previous: String?
        var tableRows: [[String]] = []
        for item in items {
            if let previous, previous != item.probe { y += groupGap }
            if previous != item.probe {
                svg.text(item.probe, x: 12, y: y + rowHeight / 2 + 4, size: 12, weight: "bold")
            }
            previous = item.probe
            let cy = y + rowHeight / 2
            let style = style(report, item.strategy.name)
            svg.text(item.strategy.name, x: area.left - 10, y: cy + 4, anchor: "end", size: 12)
            if item.entry.byConstruction {
                svg.marker(style.marker, x: area.x(0), y: cy, size: 5, color: style.color, hollow: true)
                svg.text("0 by construction", x: area.x(0) + 12, y: cy + 4, size: 11, fill: Palette.muted)
                tableRows.append([item.probe, item.strategy.name, Cells.decimal(item.entry.base), Cells.decimal(item.entry.adapted), "0 (by construction)"])
            } else if let drop = item.entry.drop {
                if let low = item.entry.ciLow, let high = item.entry.ciHigh {
                    svg.horizontalWhisker(y: cy, low: area.x(low), high: area.x(high), color: style.color)
                }
                svg.marker(style.marker, x: area.x(drop), y: cy, size: 5.5, color: style.color)
                tableRows.append([item.probe, item.strategy.name, Cells.decimal(item.entry.base), Cells.decimal(item.entry.adapted),
                                  "\(String(format: "%.3f", drop)) [\(Cells.decimal(item.entry.ciLow)), \(Cells.decimal(item.entry.ciHigh))]"])
            } else {
                svg.text("no base measurement", x: area.x(0) + 12, y: cy + 4, size: 11, fill: Palette.muted)
                tableRows.append([item.probe, item.strategy.name, "-", Cells.decimal(item.entry.adapted), "-"])
            }
            y += rowHeight
        }
        svg.text("Drop = base minus adapted score; right of zero = worse. Whiskers: 95% interval.", x: area.left, y: area.bottom + 38, size: 12)
        let measured = items.filter { !$0.entry.byConstruction && $0.entry.drop != nil }
        var description = "Forgetting on \(probes.count) probe\(probes.count == 1 ? "" : "s"): the drop from the base model to the adapted one, with 95% intervals. "
        if let worst = measured.max(by: { ($0.entry.drop ?? 0) < ($1.entry.drop ?? 0) }), let drop = worst.entry.drop {
            description += "Largest: \(worst.strategy.name) on \(worst.probe) (\(String(format: "%.3f", drop))). "
        }
        description += "Prompting strategies are zero by construction."
        let table = DataTable(caption: "Forgetting per probe and strategy", header: ["probe", "strategy", "base", "adapted", "drop [95% CI]"], rows: tableRows)
        return Chart(id: "forgetting", title: "Forgetting per probe", description: description, width: width, height: height, body: svg, table: table)
    }

    // MARK: Loss curves

    /// Training (solid) and validation (dashed) loss per fine-tuning strategy.
    public static func lossCurves(_ report: Report) -> Chart? {
        let trained = report.strategies.filter { ($0.training?.trainLoss.count ?? 0) + ($0.training?.validationLoss.count ?? 0) > 0 }
        guard !trained.isEmpty else { return nil }
        let allPoints = trained.flatMap { ($0.training?.trainLoss ?? []) + ($0.training?.validationLoss ?? []) }
        let steps = allPoints.map { Double($0.step) }
        let losses = allPoints.map(\.loss).filter(\.isFinite)
        let legendRows = Double((trained.count * 2 + 3) / 4)
        let height = 400.0
        let area = PlotArea(width: width, height: height, margin: (20, 40, 64 + legendRows * 18, 64),
                            xDomain: Scale.niceDomain(steps + [0], pad: 0.02, floor: 0), yDomain: Scale.niceDomain(losses + [0], pad: 0.05, floor: 0))
        var svg = SVGFragment()
        area.drawAxes(&svg, xTicks: area.x.ticks(6), yTicks: area.y.ticks(5), xFormat: TickFormat.plain, yFormat: TickFormat.plain, xLabel: "Optimizer step", yLabel: "Loss (nats per token)")
        var entries: [Legend.Entry] = []
        var tableRows: [[String]] = []
        for s in trained {
            guard let t = s.training else { continue }
            let style = style(report, s.name)
            let train = t.trainLoss.filter { $0.loss.isFinite }
            let validation = t.validationLoss.filter { $0.loss.isFinite }
            svg.polyline(train.map { (area.x(Double($0.step)), area.y($0.loss)) }, stroke: style.color, width: 2)
            let stride = max(1, train.count / 12)
            for (i, point) in train.enumerated() where i % stride == 0 || i == train.count - 1 {
                svg.marker(style.marker, x: area.x(Double(point.step)), y: area.y(point.loss), size: 3.5, color: style.color)
            }
            svg.polyline(validation.map { (area.x(Double($0.step)), area.y($0.loss)) }, stroke: style.color, width: 2, dash: "7 4")
            for point in validation {
                svg.marker(style.marker, x: area.x(Double(point.step)), y: area.y(point.loss), size: 4.5, color: style.color, hollow: true)
            }
            entries.append(Legend.Entry(label: "\(s.name) training", style: style, line: true, dash: ""))
            if !validation.isEmpty { entries.append(Legend.Entry(label: "\(s.name) validation", style: style, line: true, dash: "7 4", hollow: true)) }
            let bestValidation = validation.min { $0.loss < $1.loss }
            tableRows.append([s.name, "\(t.steps)", Cells.decimal(train.first?.loss), Cells.decimal(train.last?.loss),
                              bestValidation.map { "\(String(format: "%.3f", $0.loss)) at step \($0.step)" } ?? "-"])
        }
        Legend.draw(&svg, entries: entries, x: area.left, y: area.bottom + 50, width: area.right - area.left)
        let description = "Training loss (solid) and validation loss (dashed, hollow markers) per step for " + trained.map(\.name).joined(separator: ", ") + "."
        let table = DataTable(caption: "Loss per fine-tuning strategy", header: ["strategy", "steps", "first training loss", "last training loss", "best validation loss"], rows: tableRows)
        return Chart(id: "loss-curves", title: "Training and validation loss", description: description, width: width, height: height, body: svg, table: table)
    }
}
