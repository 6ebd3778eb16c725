import Foundation

/// Rewrites text before pre-tokenization (Hugging Face `normalizer`).
indirect enum Normalizer: Sendable {
    case nfc, nfd, nfkc, nfkd, lowercase
    case prepend(String)
    case replace(pattern: SplitPattern, content: String)
    case strip(left: Bool, right: Bool)
    case sequence([Normalizer])

    func apply(_ text: String) -> String {
        switch self {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        case .lowercase: return text.lowercased()
        case .prepend(let prefix): return text.isEmpty ? text : prefix + text
        case .replace(let pattern, let content):
            var out = String.UnicodeScalarView()
            let scalars = text.unicodeScalars
            var cursor = scalars.startIndex
            for match in pattern.matches(in: text) {
                out.append(contentsOf: scalars[cursor..<match.lowerBound])
                out.append(contentsOf: content.unicodeScalars)
                cursor = match.upperBound
            }
            out.append(contentsOf: scalars[cursor...])
            return String(out)
        case .strip(let left, let right):
            var view = Substring(text)
            if left { view = view.drop(while: { $0.isWhitespace }) }
            if right {
                while let last = view.last, last.isWhitespace { view = view.dropLast() }
            }
            return String(view)
        case .sequence(let steps):
            return steps.reduce(text) { $1.apply($0) }
        }
    }
}
