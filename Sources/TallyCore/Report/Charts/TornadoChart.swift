import Foundation

extension ReportCharts {
    /// Colours and markers of the tornado's two ends (Okabe-Ito sky blue and vermillion;
    /// the markers and the value labels say the same without colour).
    static let tornadoLow = SeriesStyle(color: "#56B4E9", tint: "#C6E4F6", marker: .triangleDown, dash: "")
    static let tornadoHigh = SeriesStyle(color: "#D55E00", tint: "#F0BE9E", marker: .triangle, dash: "")

    /// The tornado chart: one bar per cost input, from the recommended strategy's cost
    /// advantage over its rival with the input at its low end to that with it at its high
    /// end, widest first, with a diamond where the recommendation changes.
    public static func tornado(_ report: Report, _ tornado: Tornado) -> Chart? {
        guard !tornado.bars.isEmpty else { return nil }
        let rowHeight = 52.0
        let top = 50.0
        let height = top + Double(tornado.bars.count) * rowHeight + 100
        var values = [0, tornado.baseAdvantage]
        for bar in tornado.bars { values += [bar.advantageAtLow, bar.advantageAtHigh] + bar.flips.map(\.advantage) }
        let area = PlotArea(width: width, height: height, margin: (top, 40, 100, 210), xDomain: Scale.niceDomain(values, pad: 0.18), yDomain: (0, 1))
        let horizon = CostModel.format(report.costs.horizonMonths)
        var svg = SVGFragment()
        for value in area.x.ticks(6) {
            svg.line(x1: area.x(value), y1: area.top, x2: area.x(value), y2: area.bottom, stroke: Palette.grid)
            svg.text(value < 0 ? "-" + TickFormat.usd(-value) : TickFormat.usd(value), x: area.x(value), y: area.bottom + 16, anchor: "middle", size: 11, fill: Palette.muted)
        }
        svg.line(x1: area.left, y1: area.bottom, x2: area.right, y2: area.bottom, stroke: Palette.ink)
        // Where the two cost the same, and where the recipe's own inputs put them.
        let zero = area.x(0), center = area.x(tornado.baseAdvantage)
        svg.line(x1: zero, y1: area.top - 12, x2: zero, y2: area.bottom, stroke: Palette.ink, width: 1.2, dash: "5 4")
        // Labels run away from the recipe's line, and never off the chart's edges.
        func anchor(_ x: Double, _ preferred: String) -> String {
            x > area.right - 150 ? "end" : x < area.left + 150 ? "start" : preferred
        }
        let tieAnchor = anchor(zero, zero > center ? "start" : "end")
        svg.text("tie: \(tornado.rival) as cheap", x: zero + (tieAnchor == "start" ? 3 : -3), y: area.top - 16, anchor: tieAnchor, size: 11, fill: Palette.muted, className: "halo")
        svg.line(x1: center, y1: area.top - 30, x2: center, y2: area.bottom, stroke: Palette.ink, width: 2)
        svg.text("recipe: \(signedUSD(tornado.baseAdvantage))", x: center, y: area.top - 34, anchor: anchor(center, "middle"), size: 11, weight: "bold", className: "halo")

        for (i, bar) in tornado.bars.enumerated() {
            let cy = area.top + Double(i) * rowHeight + rowHeight / 2 - 6
            svg.text(bar.input.label, x: area.left - 12, y: cy, anchor: "end", size: 12, weight: "bold")
            svg.text("\(bar.input.format(bar.low)) to \(bar.input.format(bar.high))", x: area.left - 12, y: cy + 14, anchor: "end", size: 11, fill: Palette.muted)
            for (end, style, value) in [(bar.advantageAtLow, tornadoLow, bar.low), (bar.advantageAtHigh, tornadoHigh, bar.high)] {
                let x = area.x(end)
                svg.rect(x: min(x, center), y: cy - 9, width: abs(x - center), height: 18, fill: style.tint, stroke: style.color)
                svg.marker(style.marker, x: x, y: cy, size: 5, color: style.color)
                guard abs(x - center) > 1 else { continue }
                let outward = x < center
                svg.text(bar.input.format(value), x: x + (outward ? -9 : 9), y: cy + 4, anchor: outward ? "end" : "start", size: 11, className: "halo")
            }
            for flip in bar.flips {
                let x = area.x(flip.advantage)
                svg.marker(.diamond, x: x, y: cy, size: 5.5, color: "#000000")
                svg.text("\(flip.to ?? "none qualifies") at \(bar.input.format(flip.value))", x: x, y: cy + 24, anchor: "middle", size: 11, weight: "bold", className: "halo")
            }
        }
        svg.text("\(tornado.rival)'s total minus \(tornado.recommended)'s, over \(horizon) months (right of the dashed line: \(tornado.recommended) cheaper)",
                 x: width / 2 + 20, y: area.bottom + 36, anchor: "middle", size: 12)
        let legendTop = area.bottom + 62
        Legend.draw(&svg, entries: [
            Legend.Entry(label: "input at its low end", style: tornadoLow),
            Legend.Entry(label: "input at its high end", style: tornadoHigh),
            Legend.Entry(label: "the recommendation changes", style: SeriesStyle(color: "#000000", tint: "#BDBDBD", marker: .diamond, dash: "")),
        ], x: area.left - 150, y: legendTop, width: area.right - area.left + 150)
        svg.text("Solid line: the recipe's inputs; bars are sorted by width.", x: area.left - 150, y: legendTop + 22, size: 11, fill: Palette.muted)

        let rivalRole = tornado.rivalIsRunnerUp ? "the runner-up" : "the cheapest other strategy; none other meets the constraints"
        var description = "How much cheaper \(tornado.recommended) is than \(tornado.rival) (\(rivalRole)) in total over \(horizon) months, now \(signedUSD(tornado.baseAdvantage)), "
        description += "as one cost input at a time moves over its range with the others at the recipe's values. Widest first: "
        description += tornado.bars.map { "\($0.input.label.lowercased()) (\(signedUSD($0.advantageAtLow)) to \(signedUSD($0.advantageAtHigh)))" }.joined(separator: ", ") + ". "
        description += tornadoFlipSentence(tornado)
        if !tornado.unaffected.isEmpty {
            description += " No effect: \(tornado.unaffected.map { $0.label.lowercased() }.joined(separator: ", "))."
        }
        for skipped in tornado.skipped { description += " \(skipped.input.label) not varied: \(skipped.reason)." }
        if tornado.rivalIsRunnerUp, let test = report.decision.significance, Set([test.first, test.second]) == [tornado.recommended, tornado.rival] {
            description += " In accuracy the two are \(test.significant ? "significantly different" : "not significantly different") (\(DecisionMaker.describe(test)))."
        }

        var rows: [[String]] = tornado.bars.map { bar in
            [bar.input.label, "\(bar.input.format(bar.low)) to \(bar.input.format(bar.high)) (recipe: \(bar.input.format(bar.base)))",
             signedUSD(bar.advantageAtLow), signedUSD(bar.advantageAtHigh),
             "\(bar.winnerAtLow ?? "none") / \(bar.winnerAtHigh ?? "none")",
             bar.flips.isEmpty ? "no" : bar.flips.map { "to \($0.to ?? "none qualifies") at \(bar.input.format($0.value))" }.joined(separator: "; ")]
        }
        for input in tornado.unaffected {
            rows.append([input.label, "varied; no effect", signedUSD(tornado.baseAdvantage), signedUSD(tornado.baseAdvantage), "\(tornado.recommended) / \(tornado.recommended)", "no"])
        }
        for skipped in tornado.skipped { rows.append([skipped.input.label, "not varied: \(skipped.reason)", "-", "-", "-", "-"]) }
        let table = DataTable(
            caption: "\(tornado.rival)'s total minus \(tornado.recommended)'s at each end of each input's range",
            header: ["input", "range", "advantage at low end", "advantage at high end", "recommended at low / high end", "flips the recommendation"],
            rows: rows)
        var chart = Chart(id: "tornado", title: "What moves the choice, one input at a time", description: description, width: width, height: height, body: svg, table: table)
        chart.note = "Each point reruns the cost model and the decision (constraints included) with one input changed: monthly requests, the horizon, every per-million-token price (one factor for all), or compute_usd_per_hour (which prices local inference time and training wall time). Accuracy stays as measured."
        return chart
    }

    /// One sentence naming the inputs that change the recommendation, and where.
    static func tornadoFlipSentence(_ tornado: Tornado) -> String {
        let flips = tornado.flips
        guard !flips.isEmpty else { return "No single input changes the recommendation within these ranges." }
        return "The recommendation changes with " + flips.map { "\($0.input.label.lowercased()) at \($0.input.format($0.flip.value)) (to \($0.flip.to ?? "none qualifies"))" }.joined(separator: "; ") + "."
    }

    /// Dollars with the sign in front: `-$0.17`, `$1.20`.
    static func signedUSD(_ value: Double) -> String {
        value < 0 ? "-" + Cells.usd(-value) : Cells.usd(value)
    }
}
