import Foundation

// Learning-curve charts: accuracy against training examples (log scale) for strategies that
// train, and against demonstrations for prompting strategies. Each point with its 95%
// whisker; the fitted curve solid over the measured range and dashed beyond it (labelled as
// an extrapolation), with its bootstrap band.

extension ReportCharts {
    /// The chart of curves that train (`train_examples`), nil without any.
    public static func trainingCurves(_ report: Report) -> Chart? {
        let curves = (report.learningCurves ?? []).filter { $0.axis == .trainExamples }
        return curveChart(report, curves, id: "learning-curves", title: "Accuracy against training examples", xLabel: "Training examples (log scale)", logarithmic: true)
    }

    /// The chart of curves over demonstrations (`shots`), nil without any.
    public static func shotCurves(_ report: Report) -> Chart? {
        let curves = (report.learningCurves ?? []).filter { $0.axis == .shots }
        return curveChart(report, curves, id: "shot-curves", title: "Accuracy against demonstrations", xLabel: "Demonstrations (shots)", logarithmic: false)
    }

    static func curveChart(_ report: Report, _ curves: [LearningCurveReport], id: String, title: String, xLabel: String, logarithmic: Bool) -> Chart? {
        let curves = curves.filter { !$0.points.isEmpty }
        guard !curves.isEmpty else { return nil }
        let height = 440.0
        let legendRows = Double((curves.count + 3) / 4)
        let sizes = curves.flatMap { curve in curve.points.map { Double($0.size) } + curve.band.map(\.size) }
        let xDomain = logarithmic ? Scale.logDomain(sizes) : Scale.niceDomain(sizes + [0], pad: 0.03, floor: 0)
        var yValues = curves.flatMap { curve in curve.points.flatMap { [$0.accuracy.ciLow, $0.accuracy.ciHigh] } + curve.band.flatMap { [$0.low ?? $0.value, $0.high ?? $0.value] } }
        if let minimum = report.constraints.minAccuracy { yValues.append(minimum) }
        let yDomain = Scale.niceDomain(yValues, pad: 0.05, floor: 0, ceiling: 1)
        let area = PlotArea(width: width, height: height, margin: (20, 40, 84 + legendRows * 18, 64), xDomain: xDomain, yDomain: yDomain, xLog: logarithmic)
        var svg = SVGFragment()
        area.drawAxes(&svg, xTicks: area.x.ticks(6), yTicks: area.y.ticks(5), xFormat: TickFormat.plain, yFormat: TickFormat.percent,
                      xLabel: xLabel, yLabel: report.metric == "accuracy" ? "Accuracy, 95% interval" : "Score (\(report.metric)), 95% interval")
        if let minimum = report.constraints.minAccuracy, minimum >= area.y.low, minimum <= area.y.high {
            svg.line(x1: area.left, y1: area.y(minimum), x2: area.right, y2: area.y(minimum), stroke: "#D55E00", width: 1, dash: "2 3")
            svg.text("min_accuracy \(TickFormat.percent(minimum))", x: area.right - 4, y: area.y(minimum) - 5, anchor: "end", size: 11, fill: "#A04000")
        }
        var entries: [Legend.Entry] = []
        var rows: [[String]] = []
        var extrapolated = false
        for curve in curves {
            let style = style(report, curve.strategy)
            let tint = Palette.tints[Palette.colors.firstIndex(of: style.color) ?? 0]
            // Band: the bootstrap range of refitted curves.
            let banded = curve.band.filter { $0.low != nil && $0.high != nil }
            if banded.count > 1 {
                let upper = banded.map { (area.x($0.size), area.y($0.high ?? $0.value)) }
                let lower = banded.reversed().map { (area.x($0.size), area.y($0.low ?? $0.value)) }
                let points = (upper + lower).map { "\(Markup.number($0.0)),\(Markup.number($0.1))" }.joined(separator: " ")
                svg.append("<polygon points=\"\(points)\" fill=\"\(tint)\" fill-opacity=\"0.45\" stroke=\"none\"/>")
            }
            let measured = curve.band.filter { !$0.extrapolated }
            let beyond = curve.band.filter(\.extrapolated)
            svg.polyline(measured.map { (area.x($0.size), area.y($0.value)) }, stroke: style.color, width: 2)
            if let last = measured.last, !beyond.isEmpty {
                extrapolated = true
                svg.polyline(([last] + beyond).map { (area.x($0.size), area.y($0.value)) }, stroke: style.color, width: 2, dash: "6 4")
                if let end = beyond.last {
                    svg.text("extrapolation", x: area.x(end.size) - 4, y: area.y(end.value) - 8, anchor: "end", size: 11, fill: Palette.muted, className: "halo")
                }
            }
            if curve.fit == nil, curve.points.count > 1 {
                // No fit: join the measured points with a thin line so the series reads as one.
                svg.polyline(curve.points.map { (area.x(Double($0.size)), area.y($0.accuracy.value)) }, stroke: style.color, width: 1, dash: "2 3")
            }
            for point in curve.points {
                let px = area.x(Double(point.size))
                svg.verticalWhisker(x: px, low: area.y(point.accuracy.ciLow), high: area.y(point.accuracy.ciHigh), color: style.color)
                svg.marker(style.marker, x: px, y: area.y(point.accuracy.value), size: 5.5, color: style.color)
                rows.append([curve.strategy, String(point.size), Cells.accuracy(point.accuracy), curve.fit.map { Cells.percent(min(1, max(0, $0.predict(Double(max(point.size, 1)))))) } ?? "-"])
            }
            entries.append(Legend.Entry(label: curve.strategy, style: style, line: curve.fit != nil))
        }
        let legendTop = area.bottom + 54
        Legend.draw(&svg, entries: entries, x: area.left, y: legendTop, width: area.right - area.left)
        // The key, on lines that fit the chart's width.
        let fitted = curves.contains { $0.fit != nil }
        let joined = curves.contains { $0.fit == nil && $0.points.count > 1 }
        var key = ["Markers: measured, with 95% intervals." + (fitted ? " Solid: fitted curve; shaded: bootstrap band." : "")]
        let second = (joined ? ["Dotted: the measured points joined (no curve fitted)."] : [])
            + (extrapolated ? ["Dashed: extrapolation beyond the largest measured size."] : [])
        if !second.isEmpty { key.append(second.joined(separator: " ")) }
        for (i, line) in key.enumerated() {
            svg.text(line, x: area.left, y: legendTop + legendRows * 18 + 2 + Double(i) * 14, size: 11, fill: Palette.muted)
        }
        var description = "Accuracy of \(curves.map(\.strategy).joined(separator: ", ")) at each measured number of \(curves[0].unit), with 95% intervals. "
        description += curves.map { curve in "\(curve.strategy): " + (curve.examplesNeeded?.summary ?? curve.fitLine) }.joined(separator: " ")
        let table = DataTable(caption: "Measured accuracy per size, and the fitted curve's value there", header: ["strategy", curves[0].axis == .shots ? "shots" : "training examples", "accuracy [95% CI]", "fitted"], rows: rows)
        var chart = Chart(id: id, title: title, description: description, width: width, height: height, body: svg, table: table)
        chart.note = "Curves: \(LearningCurveReport.fitMethod)."
        return chart
    }
}
