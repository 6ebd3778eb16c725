/// A prompt template over a data row's fields: `"Review: {text}"`.
///
/// `{name}` is replaced by the row's field `name` (letters, digits, `_`, `-`, `.`); `{{` and
/// `}}` stand for literal braces; any other brace is kept as written.
public struct PromptTemplate: Sendable, Hashable {
    enum Piece: Sendable, Hashable {
        case text(String)
        case field(String)
    }

    public let source: String
    let pieces: [Piece]

    /// Parses `source`; never fails (stray braces are literal text).
    public init(_ source: String) {
        self.source = source
        var pieces: [Piece] = []
        var text = ""
        let chars = Array(source)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "{", i + 1 < chars.count, chars[i + 1] == "{" {
                text.append("{"); i += 2; continue
            }
            if c == "}", i + 1 < chars.count, chars[i + 1] == "}" {
                text.append("}"); i += 2; continue
            }
            if c == "{" {
                var j = i + 1
                var name = ""
                while j < chars.count, PromptTemplate.isNameCharacter(chars[j]) { name.append(chars[j]); j += 1 }
                if !name.isEmpty, j < chars.count, chars[j] == "}" {
                    if !text.isEmpty { pieces.append(.text(text)); text = "" }
                    pieces.append(.field(name))
                    i = j + 1
                    continue
                }
            }
            text.append(c)
            i += 1
        }
        if !text.isEmpty { pieces.append(.text(text)) }
        self.pieces = pieces
    }

    static func isNameCharacter(_ c: Character) -> Bool {
        c.isLetter || c.isNumber || c == "_" || c == "-" || c == "."
    }

    /// Field names the template uses, in order of first use.
    public var fields: [String] {
        var seen = Set<String>()
        var names: [String] = []
        for case .field(let name) in pieces where seen.insert(name).inserted { names.append(name) }
        return names
    }

    /// The template with every placeholder replaced by the row's value (missing fields
    /// become empty text; loaders drop such rows before rendering).
    public func render(_ fields: [String: String]) -> String {
        pieces.map { piece in
            switch piece {
            case .text(let text): text
            case .field(let name): fields[name] ?? ""
            }
        }.joined()
    }
}
