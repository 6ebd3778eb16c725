import Foundation

/// Escaping for text placed in HTML or SVG (element content and attribute values).
public enum Markup {
    /// Escapes `&`, `<`, `>`, `"` and `'` so the text can never open a tag or end an attribute.
    /// - Parameter text: any user-controlled text (inputs, answers, names).
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// A number for an SVG coordinate: at most two decimals, no trailing zeros, never NaN.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let rounded = (value * 100).rounded() / 100
        if rounded == rounded.rounded() { return String(Int(rounded)) }
        var text = String(format: "%.2f", rounded)
        while text.hasSuffix("0") { text.removeLast() }
        return text
    }
}

/// One drawable SVG fragment, built as text. Coordinates are in user units of the chart's
/// `viewBox`; all text content is escaped.
public struct SVGFragment: Sendable {
    public private(set) var markup = ""

    public init() {}

    mutating func append(_ text: String) { markup += text }

    /// Adds an element with attributes and optional (escaped) text content.
    mutating func element(_ name: String, _ attributes: KeyValuePairs<String, String>, text: String? = nil) {
        markup += "<\(name)"
        for (key, value) in attributes { markup += " \(key)=\"\(Markup.escape(value))\"" }
        if let text {
            markup += ">\(Markup.escape(text))</\(name)>"
        } else {
            markup += "/>"
        }
    }

    mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, stroke: String, width: Double = 1, dash: String? = nil, className: String? = nil) {
        var attributes = "x1=\"\(Markup.number(x1))\" y1=\"\(Markup.number(y1))\" x2=\"\(Markup.number(x2))\" y2=\"\(Markup.number(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(Markup.number(width))\""
        if let dash, !dash.isEmpty { attributes += " stroke-dasharray=\"\(dash)\"" }
        if let className { attributes += " class=\"\(className)\"" }
        markup += "<line \(attributes)/>"
    }

    mutating func polyline(_ points: [(Double, Double)], stroke: String, width: Double = 2, dash: String? = nil) {
        guard points.count > 1 else { return }
        let list = points.map { "\(Markup.number($0.0)),\(Markup.number($0.1))" }.joined(separator: " ")
        var attributes = "points=\"\(list)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(Markup.number(width))\" stroke-linejoin=\"round\""
        if let dash, !dash.isEmpty { attributes += " stroke-dasharray=\"\(dash)\"" }
        markup += "<polyline \(attributes)/>"
    }

    mutating func rect(x: Double, y: Double, width: Double, height: Double, fill: String, stroke: String? = nil, opacity: Double? = nil) {
        var attributes = "x=\"\(Markup.number(x))\" y=\"\(Markup.number(y))\" width=\"\(Markup.number(max(0, width)))\" height=\"\(Markup.number(max(0, height)))\" fill=\"\(fill)\""
        if let stroke { attributes += " stroke=\"\(stroke)\"" }
        if let opacity { attributes += " fill-opacity=\"\(Markup.number(opacity))\"" }
        markup += "<rect \(attributes)/>"
    }

    /// Text at a point; `anchor` is `start`, `middle` or `end`.
    mutating func text(_ content: String, x: Double, y: Double, anchor: String = "start", size: Double = 12, weight: String? = nil, fill: String = Palette.ink, rotate: Double? = nil, className: String? = nil) {
        var attributes = "x=\"\(Markup.number(x))\" y=\"\(Markup.number(y))\" font-size=\"\(Markup.number(size))\" text-anchor=\"\(anchor)\" fill=\"\(fill)\""
        if let weight { attributes += " font-weight=\"\(weight)\"" }
        if let rotate { attributes += " transform=\"rotate(\(Markup.number(rotate)) \(Markup.number(x)) \(Markup.number(y)))\"" }
        if let className {
            attributes += " class=\"\(className)\""
            // A white outline behind the glyphs keeps labels legible over lines and fills,
            // also in standalone SVG files where no stylesheet applies.
            if className == "halo" { attributes += " paint-order=\"stroke\" stroke=\"#ffffff\" stroke-width=\"3\" stroke-linejoin=\"round\"" }
        }
        markup += "<text \(attributes)>\(Markup.escape(content))</text>"
    }

    /// A marker of the given shape centred on a point; hollow markers are filled white.
    mutating func marker(_ shape: MarkerShape, x: Double, y: Double, size: Double = 5, color: String, hollow: Bool = false) {
        let fill = hollow ? "#ffffff" : color
        let stroke = "stroke=\"\(color)\" stroke-width=\"\(hollow ? 2 : 1)\""
        let s = size
        switch shape {
        case .circle:
            markup += "<circle cx=\"\(Markup.number(x))\" cy=\"\(Markup.number(y))\" r=\"\(Markup.number(s))\" fill=\"\(fill)\" \(stroke)/>"
        case .square:
            let h = s * 0.9
            markup += "<rect x=\"\(Markup.number(x - h))\" y=\"\(Markup.number(y - h))\" width=\"\(Markup.number(2 * h))\" height=\"\(Markup.number(2 * h))\" fill=\"\(fill)\" \(stroke)/>"
        case .triangle:
            markup += polygon([(x, y - s * 1.15), (x + s, y + s * 0.75), (x - s, y + s * 0.75)], fill: fill, stroke: stroke)
        case .diamond:
            markup += polygon([(x, y - s * 1.2), (x + s * 1.2, y), (x, y + s * 1.2), (x - s * 1.2, y)], fill: fill, stroke: stroke)
        case .triangleDown:
            markup += polygon([(x, y + s * 1.15), (x + s, y - s * 0.75), (x - s, y - s * 0.75)], fill: fill, stroke: stroke)
        case .pentagon:
            let points = (0..<5).map { i -> (Double, Double) in
                let angle = -Double.pi / 2 + Double(i) * 2 * Double.pi / 5
                return (x + s * 1.1 * cos(angle), y + s * 1.1 * sin(angle))
            }
            markup += polygon(points, fill: fill, stroke: stroke)
        case .cross:
            let a = s * 0.9
            markup += "<path d=\"M\(Markup.number(x - a)) \(Markup.number(y - a))L\(Markup.number(x + a)) \(Markup.number(y + a))M\(Markup.number(x - a)) \(Markup.number(y + a))L\(Markup.number(x + a)) \(Markup.number(y - a))\" stroke=\"\(color)\" stroke-width=\"2.5\" fill=\"none\"/>"
        case .plus:
            let a = s * 1.1
            markup += "<path d=\"M\(Markup.number(x - a)) \(Markup.number(y))L\(Markup.number(x + a)) \(Markup.number(y))M\(Markup.number(x)) \(Markup.number(y - a))L\(Markup.number(x)) \(Markup.number(y + a))\" stroke=\"\(color)\" stroke-width=\"2.5\" fill=\"none\"/>"
        }
    }

    private func polygon(_ points: [(Double, Double)], fill: String, stroke: String) -> String {
        let list = points.map { "\(Markup.number($0.0)),\(Markup.number($0.1))" }.joined(separator: " ")
        return "<polygon points=\"\(list)\" fill=\"\(fill)\" \(stroke)/>"
    }

    /// A vertical interval whisker with end caps.
    mutating func verticalWhisker(x: Double, low: Double, high: Double, color: String, cap: Double = 4) {
        line(x1: x, y1: low, x2: x, y2: high, stroke: color, width: 1.5)
        line(x1: x - cap, y1: low, x2: x + cap, y2: low, stroke: color, width: 1.5)
        line(x1: x - cap, y1: high, x2: x + cap, y2: high, stroke: color, width: 1.5)
    }

    /// A horizontal interval whisker with end caps.
    mutating func horizontalWhisker(y: Double, low: Double, high: Double, color: String, cap: Double = 4) {
        line(x1: low, y1: y, x2: high, y2: y, stroke: color, width: 1.5)
        line(x1: low, y1: y - cap, x2: low, y2: y + cap, stroke: color, width: 1.5)
        line(x1: high, y1: y - cap, x2: high, y2: y + cap, stroke: color, width: 1.5)
    }
}

/// Marker shapes, so series stay distinguishable without colour (and in grey print).
public enum MarkerShape: String, Sendable, CaseIterable {
    case circle, square, triangle, diamond, triangleDown, pentagon, cross, plus
}

/// The Okabe-Ito palette (distinguishable with the common colour-vision deficiencies),
/// paired with marker shapes and dash patterns so no chart relies on colour alone.
public enum Palette {
    /// Okabe-Ito colours, ordered for contrast on white (yellow last: weakest on white).
    public static let colors = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"]
    /// Lighter tints of `colors` for filled regions (same order).
    public static let tints = ["#A6CDE6", "#F6D9A0", "#A0DCC9", "#F0BE9E", "#EDCBDE", "#C6E4F6", "#BDBDBD", "#FAF4AE"]
    /// Dash patterns for lines (same order as `colors`; solid first).
    public static let dashes = ["", "7 4", "2 3", "9 3 2 3", "4 4", "12 4", "2 6", "6 2 2 2 2 2"]
    /// Text and axis colour.
    public static let ink = "#222222"
    /// Grid lines.
    public static let grid = "#e3e3e3"
    /// Secondary text.
    public static let muted = "#666666"

    /// The style of the series at `index` (cycles after eight).
    public static func style(_ index: Int) -> SeriesStyle {
        let i = ((index % colors.count) + colors.count) % colors.count
        return SeriesStyle(color: colors[i], tint: tints[i], marker: MarkerShape.allCases[i % MarkerShape.allCases.count], dash: dashes[i])
    }
}

/// How one series (usually one strategy) is drawn in every chart.
public struct SeriesStyle: Sendable, Hashable {
    public let color: String
    public let tint: String
    public let marker: MarkerShape
    public let dash: String
}

/// A linear or logarithmic mapping from data values to pixels, with "nice" ticks.
public struct Scale: Sendable {
    public let low: Double
    public let high: Double
    public let start: Double
    public let end: Double
    public let logarithmic: Bool

    /// - Parameters:
    ///   - domain: data range (positive for a logarithmic scale; widened when empty).
    ///   - range: pixel range (`start` maps `domain.low`).
    ///   - logarithmic: base-10 logarithmic spacing.
    public init(domain: (Double, Double), range: (Double, Double), logarithmic: Bool = false) {
        var (low, high) = domain
        if logarithmic {
            low = max(low, 1e-12)
            high = max(high, low * 10)
        }
        if !(high > low) {
            let pad = abs(low) > 0 ? abs(low) * 0.1 : 1
            low -= pad
            high += pad
        }
        self.low = low
        self.high = high
        self.start = range.0
        self.end = range.1
        self.logarithmic = logarithmic
    }

    /// The pixel position of `value` (clamped to the domain for a logarithmic scale).
    public func callAsFunction(_ value: Double) -> Double {
        let t: Double
        if logarithmic {
            let v = max(value, low)
            t = (log10(v) - log10(low)) / (log10(high) - log10(low))
        } else {
            t = (value - low) / (high - low)
        }
        return start + t * (end - start)
    }

    /// Round tick values inside the domain: 1-2-5 steps (linear) or powers of ten (log).
    public func ticks(_ count: Int = 5) -> [Double] {
        if logarithmic {
            let first = Int(floor(log10(low))), last = Int(ceil(log10(high)))
            var values = (first...last).map { pow(10, Double($0)) }.filter { $0 >= low * 0.999 && $0 <= high * 1.001 }
            if values.count < 3 {
                values = (first...last).flatMap { e in [1.0, 2, 5].map { $0 * pow(10, Double(e)) } }
                    .filter { $0 >= low * 0.999 && $0 <= high * 1.001 }
            }
            return values
        }
        let step = Scale.niceStep((high - low) / Double(max(count, 1)))
        var value = (low / step).rounded(.up) * step
        var values: [Double] = []
        while value <= high + step * 1e-9 && values.count < 50 {
            values.append(abs(value) < step * 1e-9 ? 0 : value)
            value += step
        }
        return values
    }

    /// A 1, 2 or 5 times a power of ten close to `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let exponent = floor(log10(raw))
        let fraction = raw / pow(10, exponent)
        let nice: Double = fraction < 1.5 ? 1 : fraction < 3.5 ? 2 : fraction < 7.5 ? 5 : 10
        return nice * pow(10, exponent)
    }

    /// A domain rounded out to nice values around `values` (padding by `pad` of the span).
    static func niceDomain(_ values: [Double], pad: Double = 0.05, floor lowest: Double? = nil, ceiling highest: Double? = nil) -> (Double, Double) {
        let finite = values.filter(\.isFinite)
        guard var low = finite.min(), var high = finite.max() else { return (0, 1) }
        let span = max(high - low, abs(high) * 0.1, 1e-9)
        low -= span * pad
        high += span * pad
        let step = niceStep(span / 5)
        low = (low / step).rounded(.down) * step
        high = (high / step).rounded(.up) * step
        if let lowest { low = max(low, lowest) }
        if let highest { high = min(high, highest) }
        return (low, high)
    }

    /// A log domain spanning whole powers of ten around the positive `values`.
    static func logDomain(_ values: [Double]) -> (Double, Double) {
        let positive = values.filter { $0 > 0 && $0.isFinite }
        guard let low = positive.min(), let high = positive.max() else { return (1, 10) }
        return (pow(10, floor(log10(low))), pow(10, max(ceil(log10(high)), floor(log10(low)) + 1)))
    }
}

/// Tick label formatting.
enum TickFormat {
    static func usd(_ value: Double) -> String {
        if value == 0 { return "$0" }
        if abs(value) >= 1e6 { return "$" + compact(value / 1e6) + "M" }
        if abs(value) >= 1e3 { return "$" + compact(value / 1e3) + "k" }
        if abs(value) >= 1 { return "$" + compact(value) }
        return "$" + String(format: "%g", value)
    }

    static func volume(_ value: Double) -> String {
        if value >= 1e9 { return compact(value / 1e9) + "B" }
        if value >= 1e6 { return compact(value / 1e6) + "M" }
        if value >= 1e3 { return compact(value / 1e3) + "k" }
        return compact(value)
    }

    static func percent(_ value: Double) -> String { compact(value * 100) + "%" }

    static func multiplier(_ value: Double) -> String { compact(value) + "x" }

    static func plain(_ value: Double) -> String { compact(value) }

    /// Up to 3 significant digits without trailing zeros.
    static func compact(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e15 { return String(Int(value)) }
        var text = String(format: "%.3g", value)
        if text.contains(".") && !text.contains("e") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text
    }
}
