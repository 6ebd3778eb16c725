import Foundation

/// A finished chart: SVG markup plus everything a reader without sight of it needs
/// (a title, a description, and the plotted numbers as a table).
public struct Chart: Sendable {
    /// Stable identifier (`accuracy-vs-cost`); also the SVG file's base name.
    public let id: String
    public let title: String
    /// One or two sentences saying what the chart shows and what it says.
    public let description: String
    public let width: Double
    public let height: Double
    /// Drawing without the outer `<svg>` element.
    public let body: SVGFragment
    /// The plotted numbers: the chart's text alternative.
    public let table: DataTable
    /// How the chart was computed, shown under it (nil for none).
    public var note: String? = nil

    /// The chart as an `<svg role="img">` with `<title>` and `<desc>`.
    /// - Parameter standalone: true for a `.svg` file (adds the XML namespace and a
    ///   white background); false for inline use in HTML, which needs no namespace.
    public func svg(standalone: Bool = false) -> String {
        let titleID = "\(id)-title", descID = "\(id)-desc"
        var out = standalone ? "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" : ""
        out += "<svg"
        if standalone { out += " xmlns=\"http://www.w3.org/2000/svg\"" }
        out += " role=\"img\" aria-labelledby=\"\(titleID) \(descID)\" viewBox=\"0 0 \(Markup.number(width)) \(Markup.number(height))\""
        out += standalone ? " width=\"\(Markup.number(width))\" height=\"\(Markup.number(height))\"" : " class=\"chart\""
        out += " font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\">"
        out += "<title id=\"\(titleID)\">\(Markup.escape(title))</title>"
        out += "<desc id=\"\(descID)\">\(Markup.escape(description))</desc>"
        if standalone { out += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>" }
        out += body.markup
        out += "</svg>"
        return out + (standalone ? "\n" : "")
    }
}

/// Rows of text cells: the data behind a chart.
public struct DataTable: Sendable, Hashable {
    public let caption: String
    public let header: [String]
    public let rows: [[String]]

    public init(caption: String, header: [String], rows: [[String]]) {
        self.caption = caption
        self.header = header
        self.rows = rows
    }
}

/// The rectangle data is drawn in, its two scales, and the frame around it.
struct PlotArea {
    let left: Double, top: Double, right: Double, bottom: Double
    let x: Scale
    let y: Scale

    init(width: Double, height: Double, margin: (top: Double, right: Double, bottom: Double, left: Double), xDomain: (Double, Double), yDomain: (Double, Double), xLog: Bool = false, yLog: Bool = false) {
        left = margin.left
        top = margin.top
        right = width - margin.right
        bottom = height - margin.bottom
        x = Scale(domain: xDomain, range: (left, right), logarithmic: xLog)
        y = Scale(domain: yDomain, range: (bottom, top), logarithmic: yLog)
    }

    /// Grid lines, tick labels and axis titles.
    func drawAxes(_ svg: inout SVGFragment, xTicks: [Double], yTicks: [Double], xFormat: (Double) -> String, yFormat: (Double) -> String, xLabel: String, yLabel: String, xGrid: Bool = true) {
        for value in yTicks {
            let py = y(value)
            svg.line(x1: left, y1: py, x2: right, y2: py, stroke: Palette.grid)
            svg.text(yFormat(value), x: left - 6, y: py + 4, anchor: "end", size: 11, fill: Palette.muted)
        }
        for value in xTicks {
            let px = x(value)
            if xGrid { svg.line(x1: px, y1: top, x2: px, y2: bottom, stroke: Palette.grid) }
            svg.line(x1: px, y1: bottom, x2: px, y2: bottom + 4, stroke: Palette.ink)
            svg.text(xFormat(value), x: px, y: bottom + 17, anchor: "middle", size: 11, fill: Palette.muted)
        }
        svg.line(x1: left, y1: bottom, x2: right, y2: bottom, stroke: Palette.ink)
        svg.line(x1: left, y1: top, x2: left, y2: bottom, stroke: Palette.ink)
        svg.text(xLabel, x: (left + right) / 2, y: bottom + 36, anchor: "middle", size: 12)
        svg.text(yLabel, x: 14, y: (top + bottom) / 2, anchor: "middle", size: 12, rotate: -90)
    }
}

/// A legend: one row per entry, each with its marker and line style.
struct Legend {
    struct Entry {
        let label: String
        let style: SeriesStyle
        var line: Bool = false
        var dash: String? = nil
        var hollow: Bool = false
    }

    /// Draws entries in rows of `perRow`, starting at (`x`, `y`); returns the height used.
    @discardableResult
    static func draw(_ svg: inout SVGFragment, entries: [Entry], x: Double, y: Double, width: Double) -> Double {
        let itemWidth = max(150, min(220, width / Double(max(1, min(entries.count, 4)))))
        let perRow = max(1, Int(width / itemWidth))
        for (i, entry) in entries.enumerated() {
            let px = x + Double(i % perRow) * itemWidth
            let py = y + Double(i / perRow) * 18
            if entry.line {
                svg.line(x1: px, y1: py, x2: px + 26, y2: py, stroke: entry.style.color, width: 2, dash: entry.dash ?? entry.style.dash)
            }
            svg.marker(entry.style.marker, x: px + 13, y: py, size: 4.5, color: entry.style.color, hollow: entry.hollow)
            svg.text(entry.label, x: px + 32, y: py + 4, size: 12)
        }
        return Double((entries.count + perRow - 1) / perRow) * 18
    }
}
