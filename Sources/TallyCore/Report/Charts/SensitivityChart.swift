import Foundation

extension ReportCharts {
    /// The region map: which strategy the decision picks at each traffic and price level.
    public static func sensitivityMap(_ report: Report, _ map: SensitivityMap) -> Chart? {
        guard !map.volumes.isEmpty, !map.multipliers.isEmpty else { return nil }
        let strip = map.multipliers.count == 1
        let legendNames = map.shares.map(\.name)
        let legendRows = Double((legendNames.count + 3) / 4)
        let plotHeight = strip ? 60.0 : 300.0
        let height = 20 + plotHeight + 64 + legendRows * 18 + 10
        let area = PlotArea(
            width: width, height: height, margin: (20, 40, height - 20 - plotHeight, 70),
            xDomain: (map.volumes.first ?? 1, map.volumes.last ?? 10),
            yDomain: (map.multipliers.first ?? 1, map.multipliers.last ?? 1), xLog: true, yLog: !strip)
        var svg = SVGFragment()
        let columnWidth = (area.right - area.left) / Double(map.volumes.count)
        let rowHeight = (area.bottom - area.top) / Double(map.multipliers.count)
        var centroids: [String: (x: Double, y: Double, n: Double)] = [:]
        for (r, row) in map.winners.enumerated() {
            for (c, winner) in row.enumerated() {
                let x = area.left + Double(c) * columnWidth
                let y = area.bottom - Double(r + 1) * rowHeight
                let fill = winner.map { style(report, $0).tint } ?? "#f2f2f2"
                svg.rect(x: x, y: y, width: columnWidth + 0.6, height: rowHeight + 0.6, fill: fill)
                let name = winner ?? "none"
                let old = centroids[name] ?? (0, 0, 0)
                centroids[name] = (old.x + x + columnWidth / 2, old.y + y + rowHeight / 2, old.n + 1)
            }
        }
        // Texture: each region's marker on a sparse lattice, so regions differ in grey too.
        for (r, row) in map.winners.enumerated() where strip || r % 3 == 1 {
            for (c, winner) in row.enumerated() where c % 4 == 2 {
                guard let winner else { continue }
                let s = style(report, winner)
                svg.marker(s.marker, x: area.left + (Double(c) + 0.5) * columnWidth, y: area.bottom - (Double(r) + 0.5) * rowHeight, size: 3, color: s.color)
            }
        }
        let xTicks = area.x.ticks()
        let yTicks = strip ? [] : [0.1, 0.2, 0.5, 1, 2, 5, 10].filter { $0 >= area.y.low * 0.999 && $0 <= area.y.high * 1.001 }
        area.drawAxes(&svg, xTicks: xTicks, yTicks: yTicks, xFormat: TickFormat.volume, yFormat: TickFormat.multiplier,
                      xLabel: "Requests per month (log scale)", yLabel: strip ? "" : "\(map.axis == .computePrice ? "Compute price" : "Token price") x (log)", xGrid: false)
        for (name, c) in centroids.sorted(by: { $0.key < $1.key }) where c.n >= 4 {
            svg.text(name, x: c.x / c.n, y: c.y / c.n + 4, anchor: "middle", size: 13, weight: "bold", className: "halo")
        }
        // The recipe's own traffic and prices.
        let px = area.x(map.currentVolume), py = strip ? (area.top + area.bottom) / 2 : area.y(1)
        svg.append("<circle cx=\"\(Markup.number(px))\" cy=\"\(Markup.number(py))\" r=\"7\" fill=\"#ffffff\" stroke=\"\(Palette.ink)\" stroke-width=\"2.5\"/>")
        svg.append("<circle cx=\"\(Markup.number(px))\" cy=\"\(Markup.number(py))\" r=\"2\" fill=\"\(Palette.ink)\"/>")
        svg.text("this recipe", x: px + 10, y: py - 9, size: 11, weight: "bold", className: "halo")

        let legendTop = area.bottom + 54
        let entries = legendNames.map { name -> Legend.Entry in
            let share = map.shares.first { $0.name == name }?.share ?? 0
            let label = "\(name == "none" ? "none qualifies" : name) (\(Int((share * 100).rounded()))%)"
            return Legend.Entry(label: label, style: name == "none" ? SeriesStyle(color: "#9e9e9e", tint: "#f2f2f2", marker: .square, dash: "") : style(report, name))
        }
        Legend.draw(&svg, entries: entries, x: area.left, y: legendTop, width: area.right - area.left)

        let range = "\(TickFormat.multiplier(map.axisRange.lowerBound)) to \(TickFormat.multiplier(map.axisRange.upperBound))"
        let compute = Cells.usd(report.costs.computeUSDPerHour)
        var description: String
        switch map.axis {
        case .tokenPrices:
            description = "The recommended strategy when monthly traffic (horizontal) and all token prices (vertical, \(range)) change, with everything else as measured. "
        case .computePrice:
            description = "No strategy has a token price, so the vertical axis is the compute price instead (\(range) of \(compute)/h, which prices local inference time and training wall time); the recommended strategy as it and monthly traffic (horizontal) change. "
        case .trafficOnly:
            description = "The recommended strategy as monthly traffic changes, at the recipe's prices (without the run's measurements, or with no price set, prices cannot be varied). "
        }
        if map.flatAlongAxis {
            description += map.axis == .computePrice
                ? "The compute price changes no winner in that range (it scales every local cost alike, and no constraint bites), so one row is shown. "
                : "No winner changes along the price axis in that range, so one row is shown. "
        }
        description += "At this recipe's traffic and prices: \(map.currentWinner ?? "none qualifies"). Share of the map: "
        description += map.shares.map { "\($0.name) \(Int(($0.share * 100).rounded()))%" }.joined(separator: ", ") + "."
        // Text alternative: the winner along the recipe's price row and, when varied, the 0.5x and 2x rows.
        var tableRows: [[String]] = []
        let wanted = strip ? [1] : [0.5, 1, 2]
        for target in wanted {
            guard let r = map.multipliers.indices.min(by: { abs(log(map.multipliers[$0] / target)) < abs(log(map.multipliers[$1] / target)) }) else { continue }
            var segments: [String] = []
            var start = 0
            for c in 1...map.volumes.count {
                if c == map.volumes.count || map.winners[r][c] != map.winners[r][start] {
                    segments.append("\(map.winners[r][start] ?? "none") from \(TickFormat.volume(map.volumes[start])) to \(TickFormat.volume(map.volumes[c - 1]))")
                    start = c
                }
            }
            let level = TickFormat.multiplier(map.multipliers[r])
            tableRows.append([map.axis == .computePrice ? "\(level) (\(Cells.usd(report.costs.computeUSDPerHour * map.multipliers[r]))/h)" : level, segments.joined(separator: "; ")])
        }
        let axisName = map.axis == .computePrice ? "compute price" : "token prices"
        let table = DataTable(caption: "Winner by traffic (requests/month) at selected \(axisName) levels", header: [axisName, "winner across traffic"], rows: tableRows)
        var chart = Chart(id: "sensitivity", title: "Which strategy wins as traffic and prices change", description: description, width: width, height: height, body: svg, table: table)
        chart.note = switch map.axis {
        case .tokenPrices: "Each cell reruns the cost model and the decision (constraints included) with the traffic of its column and all token prices multiplied by its row's factor; compute prices and accuracy stay as measured."
        case .computePrice: "Each cell reruns the cost model and the decision (constraints included) with the traffic of its column and compute_usd_per_hour multiplied by its row's factor; accuracy stays as measured."
        case .trafficOnly: "Each cell reruns the cost model and the decision (constraints included) with the traffic of its column; prices and accuracy stay as measured."
        }
        return chart
    }
}
