import Foundation

// A small interpreter of the Jinja subset that chat templates use. See `ChatTemplate`.

/// An insertion-ordered string-keyed dictionary (Jinja dicts keep insertion order).
struct JinjaDict: Sendable, Equatable {
    private(set) var keys: [String] = []
    private var storage: [String: JinjaValue] = [:]

    init(_ pairs: [(String, JinjaValue)] = []) {
        for (key, value) in pairs { self[key] = value }
    }

    subscript(key: String) -> JinjaValue? {
        get { storage[key] }
        set {
            if storage[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil { keys.removeAll { $0 == key } }
            storage[key] = newValue
        }
    }

    var count: Int { keys.count }
    var pairs: [(String, JinjaValue)] { keys.map { ($0, storage[$0] ?? .none) } }
}

indirect enum JinjaValue: Sendable, Equatable {
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([JinjaValue])
    case dict(JinjaDict)
    /// A `namespace()` object; its attributes live in the interpreter under this id.
    case namespace(Int)

    var truthy: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .list(let l): !l.isEmpty
        case .dict(let d): d.count > 0
        case .namespace: true
        }
    }

    var typeName: String {
        switch self {
        case .undefined: "undefined"
        case .none: "none"
        case .bool: "boolean"
        case .int: "integer"
        case .double: "float"
        case .string: "string"
        case .list: "list"
        case .dict: "dict"
        case .namespace: "namespace"
        }
    }

    /// Python's `str()` of the value, as Jinja prints it.
    var text: String {
        switch self {
        case .undefined: ""
        case .none: "None"
        case .bool(let b): b ? "True" : "False"
        case .int(let i): String(i)
        case .double(let d): d == d.rounded() && abs(d) < 1e16 ? String(format: "%.1f", d) : String(d)
        case .string(let s): s
        case .list(let l): "[" + l.map(\.repr).joined(separator: ", ") + "]"
        case .dict(let d): "{" + d.pairs.map { "'\($0.0)': \($0.1.repr)" }.joined(separator: ", ") + "}"
        case .namespace: "<Namespace>"
        }
    }

    /// Python's `repr()`, used inside printed lists and dicts.
    var repr: String {
        if case .string(let s) = self {
            return "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'").replacingOccurrences(of: "\n", with: "\\n") + "'"
        }
        return text
    }

    /// JSON text, as the `tojson` filter writes it (keys in insertion order, `", "` and `": "`).
    var json: String {
        switch self {
        case .undefined, .none: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .string(let s):
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case "<": out += "\\u003c"
                case ">": out += "\\u003e"
                case "&": out += "\\u0026"
                case "'": out += "\\u0027"
                default:
                    if scalar.value < 0x20 || scalar.value > 0x7E {
                        if scalar.value > 0xFFFF {
                            let v = scalar.value - 0x10000
                            out += String(format: "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
                        } else {
                            out += String(format: "\\u%04x", scalar.value)
                        }
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            return out + "\""
        case .list(let l): return "[" + l.map(\.json).joined(separator: ", ") + "]"
        case .dict(let d): return "{" + d.pairs.map { JinjaValue.string($0.0).json + ": " + $0.1.json }.joined(separator: ", ") + "}"
        case .namespace: return "{}"
        }
    }
}

/// A position in the template source.
struct JinjaPosition: Sendable {
    let line: Int
    let column: Int
}

indirect enum JinjaExpr: Sendable {
    case literal(JinjaValue)
    case name(String, JinjaPosition)
    case list([JinjaExpr])
    case dict([(JinjaExpr, JinjaExpr)])
    case attribute(JinjaExpr, String, JinjaPosition)
    case index(JinjaExpr, JinjaExpr)
    case slice(JinjaExpr, JinjaExpr?, JinjaExpr?, JinjaExpr?)
    case call(JinjaExpr, [JinjaExpr], [(String, JinjaExpr)], JinjaPosition)
    case filter(JinjaExpr, String, [JinjaExpr], [(String, JinjaExpr)], JinjaPosition)
    case test(JinjaExpr, String, [JinjaExpr], negated: Bool, JinjaPosition)
    case unary(String, JinjaExpr)
    case binary(String, JinjaExpr, JinjaExpr, JinjaPosition)
    case conditional(JinjaExpr, condition: JinjaExpr, otherwise: JinjaExpr?)
}

indirect enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpr, JinjaPosition)
    case conditional([(JinjaExpr, [JinjaNode])], otherwise: [JinjaNode])
    case loop(targets: [String], iterable: JinjaExpr, filter: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode], JinjaPosition)
    /// `{% set name = … %}` or `{% set ns.attr = … %}`.
    case assign(target: String, attribute: String?, JinjaExpr, JinjaPosition)
    case loopBreak
    case loopContinue
}

// MARK: - Lexing

struct JinjaToken: Sendable {
    enum Kind: Equatable, Sendable {
        case name(String)
        case string(String)
        case int(Int)
        case double(Double)
        case op(String)
    }
    let kind: Kind
    let position: JinjaPosition
}

/// One piece of the template: text or a tag with its tokens.
enum JinjaSegment {
    case text(String)
    case output([JinjaToken], JinjaPosition)
    case statement([JinjaToken], JinjaPosition)
}

enum JinjaLexer {
    /// Cuts `source` into text and tags, applying `-` whitespace control, `trim_blocks` and
    /// `lstrip_blocks` as Hugging Face configures Jinja for chat templates.
    static func segments(_ source: String) throws -> [JinjaSegment] {
        let chars = Array(source)
        var lineStarts: [Int] = [0]
        for (i, c) in chars.enumerated() where c == "\n" { lineStarts.append(i + 1) }
        func position(_ offset: Int) -> JinjaPosition {
            var low = 0, high = lineStarts.count - 1
            while low < high {
                let mid = (low + high + 1) / 2
                if lineStarts[mid] <= offset { low = mid } else { high = mid - 1 }
            }
            return JinjaPosition(line: low + 1, column: offset - lineStarts[low] + 1)
        }

        var segments: [JinjaSegment] = []
        var text = ""
        var i = 0
        var stripNextLeading = false
        var trimNextNewline = false
        func flushText() {
            if !text.isEmpty { segments.append(.text(text)) }
            text = ""
        }
        while i < chars.count {
            let c = chars[i]
            let next: Character? = i + 1 < chars.count ? chars[i + 1] : nil
            guard c == "{", let n = next, n == "{" || n == "%" || n == "#" else {
                if stripNextLeading {
                    if c.isWhitespace {
                        i += 1
                        continue
                    }
                    stripNextLeading = false
                }
                if trimNextNewline {
                    trimNextNewline = false
                    if c == "\n" || c == "\r\n" {
                        i += 1
                        continue
                    }
                }
                text.append(c)
                i += 1
                continue
            }
            stripNextLeading = false
            trimNextNewline = false
            let start = i
            let kind = n
            let closer: Character = kind == "{" ? "}" : (kind == "%" ? "%" : "#")
            var j = i + 2
            var stripBefore = false
            var keepLeading = false
            if j < chars.count && chars[j] == "-" {
                stripBefore = true
                j += 1
            } else if j < chars.count && chars[j] == "+" {
                keepLeading = true
                j += 1
            }
            if stripBefore {
                while let last = text.last, last.isWhitespace { text.removeLast() }
            } else if kind != "{" && !keepLeading {
                // lstrip_blocks: drop the spaces and tabs between a line start and a block tag.
                var n = 0
                while start - n > 0, chars[start - n - 1] == " " || chars[start - n - 1] == "\t" { n += 1 }
                if start - n == 0 || chars[start - n - 1] == "\n" {
                    var removed = 0
                    while removed < n, let last = text.last, last == " " || last == "\t" {
                        text.removeLast()
                        removed += 1
                    }
                }
            }
            // Find the closer, skipping string literals inside the tag.
            var quote: Character?
            var end = -1
            var k = j
            while k < chars.count {
                let ch = chars[k]
                if let q = quote {
                    if ch == "\\" {
                        k += 2
                        continue
                    }
                    if ch == q { quote = nil }
                } else if kind != "#" && (ch == "'" || ch == "\"") {
                    quote = ch
                } else if ch == closer, k + 1 < chars.count, chars[k + 1] == "}" {
                    end = k
                    break
                }
                k += 1
            }
            guard end >= 0 else {
                let p = position(start)
                throw ChatTemplateError("a tag opened with '{\(kind)' is never closed", line: p.line, column: p.column)
            }
            var bodyEnd = end
            var stripAfter = false
            if bodyEnd > j && chars[bodyEnd - 1] == "-" {
                stripAfter = true
                bodyEnd -= 1
            } else if bodyEnd > j && chars[bodyEnd - 1] == "+" {
                bodyEnd -= 1
            }
            let pos = position(start)
            flushText()
            if kind != "#" {
                let tokens = try tokenize(chars, from: j, to: bodyEnd, position: position)
                segments.append(kind == "{" ? .output(tokens, pos) : .statement(tokens, pos))
            }
            i = end + 2
            if stripAfter {
                stripNextLeading = true
            } else if kind != "{" {
                trimNextNewline = true  // trim_blocks
            }
        }
        flushText()
        return segments
    }

    static func tokenize(_ chars: [Character], from start: Int, to end: Int, position: (Int) -> JinjaPosition) throws -> [JinjaToken] {
        var tokens: [JinjaToken] = []
        var i = start
        let twoCharOps: Set<String> = ["==", "!=", "<=", ">=", "//", "**"]
        while i < end {
            let c = chars[i]
            if c.isWhitespace {
                i += 1
                continue
            }
            let pos = position(i)
            if c == "'" || c == "\"" {
                var value = ""
                var k = i + 1
                var closed = false
                while k < end {
                    let ch = chars[k]
                    if ch == "\\", k + 1 < end {
                        let e = chars[k + 1]
                        switch e {
                        case "n": value.append("\n")
                        case "t": value.append("\t")
                        case "r": value.append("\r")
                        case "\\": value.append("\\")
                        case "'": value.append("'")
                        case "\"": value.append("\"")
                        default: value.append("\\"); value.append(e)
                        }
                        k += 2
                        continue
                    }
                    if ch == c {
                        closed = true
                        break
                    }
                    value.append(ch)
                    k += 1
                }
                guard closed else { throw ChatTemplateError("unterminated string literal", line: pos.line, column: pos.column) }
                tokens.append(JinjaToken(kind: .string(value), position: pos))
                i = k + 1
            } else if c.isNumber && c.isASCII {
                var k = i
                var literal = ""
                while k < end, chars[k].isASCII, chars[k].isNumber || chars[k] == "_" {
                    if chars[k] != "_" { literal.append(chars[k]) }
                    k += 1
                }
                if k + 1 < end, chars[k] == ".", chars[k + 1].isASCII, chars[k + 1].isNumber {
                    literal.append(".")
                    k += 1
                    while k < end, chars[k].isASCII, chars[k].isNumber {
                        literal.append(chars[k])
                        k += 1
                    }
                    tokens.append(JinjaToken(kind: .double(Double(literal) ?? 0), position: pos))
                } else {
                    guard let value = Int(literal) else { throw ChatTemplateError("number \(literal) is too large", line: pos.line, column: pos.column) }
                    tokens.append(JinjaToken(kind: .int(value), position: pos))
                }
                i = k
            } else if c.isLetter || c == "_" {
                var k = i
                var name = ""
                while k < end, chars[k].isLetter || chars[k].isNumber || chars[k] == "_" {
                    name.append(chars[k])
                    k += 1
                }
                tokens.append(JinjaToken(kind: .name(name), position: pos))
                i = k
            } else {
                if i + 1 < end, twoCharOps.contains(String([c, chars[i + 1]])) {
                    tokens.append(JinjaToken(kind: .op(String([c, chars[i + 1]])), position: pos))
                    i += 2
                } else if "+-*/%~<>()[]{}.,:|=!".contains(c) {
                    tokens.append(JinjaToken(kind: .op(String(c)), position: pos))
                    i += 1
                } else {
                    throw ChatTemplateError("unexpected character '\(c)'", line: pos.line, column: pos.column)
                }
            }
        }
        return tokens
    }
}

// MARK: - Parsing

enum JinjaParser {
    static func parse(_ source: String, limits: ChatTemplate.Limits = .standard) throws -> [JinjaNode] {
        var parser = try NodeParser(segments: JinjaLexer.segments(source), maxDepth: limits.depth)
        let (nodes, terminator) = try parser.parseBlock(until: [])
        if let terminator {
            throw ChatTemplateError("unexpected '{% \(terminator.name) %}'", line: terminator.position.line, column: terminator.position.column)
        }
        return nodes
    }

    struct NodeParser {
        let segments: [JinjaSegment]
        var index = 0
        /// The deepest nesting of blocks, and of expressions in one tag.
        let maxDepth: Int
        /// Blocks open around the current position.
        var depth = 0

        init(segments: [JinjaSegment], maxDepth: Int) {
            self.segments = segments
            self.maxDepth = maxDepth
        }

        /// Enters a block (`if`, `for`, `generation`) opened at `position`.
        mutating func enterBlock(_ position: JinjaPosition) throws {
            depth += 1
            guard depth <= maxDepth else {
                throw ChatTemplateError("blocks are nested more than \(maxDepth) deep (limit on nesting depth)", line: position.line, column: position.column)
            }
        }

        struct Terminator {
            let name: String
            var tokens: ExprParser
            let position: JinjaPosition
        }

        /// Nodes up to one of the `until` keywords (returned with the rest of its tag).
        mutating func parseBlock(until keywords: Set<String>) throws -> ([JinjaNode], Terminator?) {
            var nodes: [JinjaNode] = []
            while index < segments.count {
                let segment = segments[index]
                index += 1
                switch segment {
                case .text(let text):
                    nodes.append(.text(text))
                case .output(let tokens, let position):
                    var parser = ExprParser(tokens: tokens, end: position, maxDepth: maxDepth)
                    let expr = try parser.parseExpression()
                    try parser.expectEnd()
                    nodes.append(.output(expr, position))
                case .statement(let tokens, let position):
                    var parser = ExprParser(tokens: tokens, end: position, maxDepth: maxDepth)
                    guard case .name(let keyword)? = parser.peek?.kind else {
                        throw ChatTemplateError("a '{% %}' tag must start with a keyword", line: position.line, column: position.column)
                    }
                    if keywords.contains(keyword) {
                        parser.advance()
                        return (nodes, Terminator(name: keyword, tokens: parser, position: position))
                    }
                    parser.advance()
                    nodes.append(contentsOf: try parseStatement(keyword, &parser, position))
                }
            }
            if !keywords.isEmpty {
                let expected = keywords.sorted().joined(separator: "' or '")
                throw ChatTemplateError("the template ends before '{% \(expected) %}'")
            }
            return (nodes, nil)
        }

        mutating func parseStatement(_ keyword: String, _ parser: inout ExprParser, _ position: JinjaPosition) throws -> [JinjaNode] {
            if ["if", "for", "generation"].contains(keyword) { try enterBlock(position) }
            defer { if ["if", "for", "generation"].contains(keyword) { depth -= 1 } }
            switch keyword {
            case "if":
                var branches: [(JinjaExpr, [JinjaNode])] = []
                var condition = try parser.parseExpression()
                try parser.expectEnd()
                while true {
                    let (body, terminator) = try parseBlock(until: ["elif", "else", "endif"])
                    branches.append((condition, body))
                    guard var terminator else { throw ChatTemplateError("'{% if %}' is never closed", line: position.line, column: position.column) }
                    switch terminator.name {
                    case "elif":
                        condition = try terminator.tokens.parseExpression()
                        try terminator.tokens.expectEnd()
                    case "else":
                        try terminator.tokens.expectEnd()
                        let (otherwise, end) = try parseBlock(until: ["endif"])
                        guard end != nil else { throw ChatTemplateError("'{% if %}' is never closed", line: position.line, column: position.column) }
                        return [.conditional(branches, otherwise: otherwise)]
                    default:
                        try terminator.tokens.expectEnd()
                        return [.conditional(branches, otherwise: [])]
                    }
                }
            case "for":
                var targets: [String] = [try parser.expectName()]
                while parser.consume(op: ",") { targets.append(try parser.expectName()) }
                guard parser.consume(name: "in") else { throw parser.error("expected 'in' in a for loop") }
                let iterable = try parser.parseExpression(allowConditional: false)
                var filter: JinjaExpr?
                if parser.consume(name: "if") { filter = try parser.parseExpression(allowConditional: false) }
                if parser.consume(name: "recursive") { throw parser.error("recursive loops are not supported") }
                try parser.expectEnd()
                let (body, terminator) = try parseBlock(until: ["else", "endfor"])
                guard let terminator else { throw ChatTemplateError("'{% for %}' is never closed", line: position.line, column: position.column) }
                var otherwise: [JinjaNode] = []
                if terminator.name == "else" {
                    let (elseBody, end) = try parseBlock(until: ["endfor"])
                    guard end != nil else { throw ChatTemplateError("'{% for %}' is never closed", line: position.line, column: position.column) }
                    otherwise = elseBody
                }
                return [.loop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise, position)]
            case "set":
                let target = try parser.expectName()
                var attribute: String?
                if parser.consume(op: ".") { attribute = try parser.expectName() }
                guard parser.consume(op: "=") else {
                    throw parser.error("only '{% set name = value %}' is supported (not block assignments)")
                }
                let value = try parser.parseExpression()
                try parser.expectEnd()
                return [.assign(target: target, attribute: attribute, value, position)]
            case "break":
                try parser.expectEnd()
                return [.loopBreak]
            case "continue":
                try parser.expectEnd()
                return [.loopContinue]
            case "generation":
                // Hugging Face's marker for assistant tokens: render the body as is.
                try parser.expectEnd()
                let (body, end) = try parseBlock(until: ["endgeneration"])
                guard end != nil else { throw ChatTemplateError("'{% generation %}' is never closed", line: position.line, column: position.column) }
                return body
            default:
                throw ChatTemplateError("'{% \(keyword) %}' is not supported by Tally's chat-template interpreter (supported: if, for, set, break, continue)", line: position.line, column: position.column)
            }
        }
    }

    /// Parses one tag's tokens into expressions.
    struct ExprParser {
        let tokens: [JinjaToken]
        let end: JinjaPosition
        var index = 0
        /// The deepest expression tree (and parser recursion) allowed.
        let maxDepth: Int
        /// The depth of the tree the last `parse…` function returned.
        var lastDepth = 0
        /// Recursive `parse…` calls in progress (brackets, unary operators, `else` chains).
        var recursion = 0

        init(tokens: [JinjaToken], end: JinjaPosition, maxDepth: Int = ChatTemplate.Limits.standard.depth) {
            self.tokens = tokens
            self.end = end
            self.maxDepth = maxDepth
        }

        /// `expr`, a tree `depth` deep, recorded as the last result; throws when it is too deep
        /// (deep trees would overflow the stack when evaluated or freed).
        mutating func made(_ expr: JinjaExpr, depth: Int) throws -> JinjaExpr {
            guard depth <= maxDepth else { throw error("the expression is nested more than \(maxDepth) deep (limit on nesting depth)") }
            lastDepth = depth
            return expr
        }

        /// Runs a recursive parse, bounding the recursion.
        mutating func nested(_ parse: (inout ExprParser) throws -> JinjaExpr) throws -> JinjaExpr {
            recursion += 1
            defer { recursion -= 1 }
            guard recursion <= maxDepth else { throw error("the expression is nested more than \(maxDepth) deep (limit on nesting depth)") }
            return try parse(&self)
        }

        var peek: JinjaToken? { index < tokens.count ? tokens[index] : nil }
        var position: JinjaPosition { peek?.position ?? end }

        mutating func advance() { index += 1 }

        func error(_ message: String) -> ChatTemplateError {
            ChatTemplateError(message, line: position.line, column: position.column)
        }

        mutating func consume(op: String) -> Bool {
            if peek?.kind == .op(op) {
                index += 1
                return true
            }
            return false
        }

        mutating func consume(name: String) -> Bool {
            if peek?.kind == .name(name) {
                index += 1
                return true
            }
            return false
        }

        func isName(_ name: String, at offset: Int = 0) -> Bool {
            index + offset < tokens.count && tokens[index + offset].kind == .name(name)
        }

        mutating func expectName() throws -> String {
            guard case .name(let name)? = peek?.kind else { throw error("expected a name") }
            index += 1
            return name
        }

        mutating func expect(op: String) throws {
            guard consume(op: op) else { throw error("expected '\(op)'") }
        }

        func expectEnd() throws {
            if let token = peek { throw ChatTemplateError("unexpected \(describe(token)) (unsupported syntax)", line: token.position.line, column: token.position.column) }
        }

        func describe(_ token: JinjaToken) -> String {
            switch token.kind {
            case .name(let n): "'\(n)'"
            case .string(let s): "string '\(s)'"
            case .int(let i): "number \(i)"
            case .double(let d): "number \(d)"
            case .op(let o): "'\(o)'"
            }
        }

        mutating func parseExpression(allowConditional: Bool = true) throws -> JinjaExpr {
            let value = try parseOr()
            var depth = lastDepth
            if allowConditional, isName("if") {
                advance()
                let condition = try parseOr()
                depth = max(depth, lastDepth)
                var otherwise: JinjaExpr?
                if consume(name: "else") {
                    otherwise = try nested { try $0.parseExpression() }
                    depth = max(depth, lastDepth)
                }
                return try made(.conditional(value, condition: condition, otherwise: otherwise), depth: depth + 1)
            }
            return value
        }

        mutating func parseOr() throws -> JinjaExpr {
            var left = try parseAnd()
            var depth = lastDepth
            while isName("or") {
                let pos = position
                advance()
                let right = try parseAnd()
                depth = max(depth, lastDepth) + 1
                left = try made(.binary("or", left, right, pos), depth: depth)
            }
            return left
        }

        mutating func parseAnd() throws -> JinjaExpr {
            var left = try parseNot()
            var depth = lastDepth
            while isName("and") {
                let pos = position
                advance()
                let right = try parseNot()
                depth = max(depth, lastDepth) + 1
                left = try made(.binary("and", left, right, pos), depth: depth)
            }
            return left
        }

        mutating func parseNot() throws -> JinjaExpr {
            if isName("not") {
                advance()
                let operand = try nested { try $0.parseNot() }
                return try made(.unary("not", operand), depth: lastDepth + 1)
            }
            return try parseComparison()
        }

        mutating func parseComparison() throws -> JinjaExpr {
            var left = try parseConcat()
            var depth = lastDepth
            while true {
                let pos = position
                if case .op(let op)? = peek?.kind, ["==", "!=", "<", ">", "<=", ">="].contains(op) {
                    advance()
                    let right = try parseConcat()
                    depth = max(depth, lastDepth) + 1
                    left = try made(.binary(op, left, right, pos), depth: depth)
                } else if isName("in") {
                    advance()
                    let right = try parseConcat()
                    depth = max(depth, lastDepth) + 1
                    left = try made(.binary("in", left, right, pos), depth: depth)
                } else if isName("not") && isName("in", at: 1) {
                    advance()
                    advance()
                    let right = try parseConcat()
                    depth = max(depth, lastDepth) + 2
                    left = try made(.unary("not", .binary("in", left, right, pos)), depth: depth)
                } else if isName("is") {
                    advance()
                    let negated = consume(name: "not")
                    let test = try expectName()
                    var args: [JinjaExpr] = []
                    var argDepth = 0
                    if consume(op: "(") {
                        args = try parseArguments().positional
                        argDepth = lastDepth
                    } else if let next = peek, case .string = next.kind {
                        args = [try parsePrimary()]
                        argDepth = lastDepth
                    } else if let next = peek, case .int = next.kind {
                        args = [try parsePrimary()]
                        argDepth = lastDepth
                    }
                    depth = max(depth, argDepth) + 1
                    left = try made(.test(left, test, args, negated: negated, pos), depth: depth)
                } else {
                    lastDepth = depth
                    return left
                }
            }
        }

        mutating func parseConcat() throws -> JinjaExpr {
            var left = try parseAdditive()
            var depth = lastDepth
            while case .op("~")? = peek?.kind {
                let pos = position
                advance()
                let right = try parseAdditive()
                depth = max(depth, lastDepth) + 1
                left = try made(.binary("~", left, right, pos), depth: depth)
            }
            return left
        }

        mutating func parseAdditive() throws -> JinjaExpr {
            var left = try parseMultiplicative()
            var depth = lastDepth
            while case .op(let op)? = peek?.kind, op == "+" || op == "-" {
                let pos = position
                advance()
                let right = try parseMultiplicative()
                depth = max(depth, lastDepth) + 1
                left = try made(.binary(op, left, right, pos), depth: depth)
            }
            return left
        }

        mutating func parseMultiplicative() throws -> JinjaExpr {
            var left = try parseUnary()
            var depth = lastDepth
            while case .op(let op)? = peek?.kind, ["*", "/", "//", "%"].contains(op) {
                let pos = position
                advance()
                let right = try parseUnary()
                depth = max(depth, lastDepth) + 1
                left = try made(.binary(op, left, right, pos), depth: depth)
            }
            return left
        }

        mutating func parseUnary() throws -> JinjaExpr {
            if case .op(let op)? = peek?.kind, op == "-" || op == "+" {
                advance()
                let operand = try nested { try $0.parseUnary() }
                return try made(.unary(op, operand), depth: lastDepth + 1)
            }
            return try parsePostfix()
        }

        /// Arguments up to `)`; `lastDepth` becomes the deepest argument's depth.
        mutating func parseArguments() throws -> (positional: [JinjaExpr], keywords: [(String, JinjaExpr)]) {
            var positional: [JinjaExpr] = []
            var keywords: [(String, JinjaExpr)] = []
            var depth = 0
            defer { lastDepth = depth }
            if consume(op: ")") { return (positional, keywords) }
            repeat {
                if case .name(let name)? = peek?.kind, index + 1 < tokens.count, tokens[index + 1].kind == .op("=") {
                    index += 2
                    keywords.append((name, try nested { try $0.parseExpression() }))
                } else {
                    positional.append(try nested { try $0.parseExpression() })
                }
                depth = max(depth, lastDepth)
            } while consume(op: ",") && peek?.kind != .op(")")
            try expect(op: ")")
            return (positional, keywords)
        }

        mutating func parsePostfix() throws -> JinjaExpr {
            var expr = try parsePrimary()
            var depth = lastDepth
            while true {
                let pos = position
                if consume(op: ".") {
                    depth += 1
                    expr = try made(.attribute(expr, try expectName(), pos), depth: depth)
                } else if consume(op: "[") {
                    var parts: [JinjaExpr?] = [nil]
                    var isSlice = false
                    var partDepth = 0
                    while true {
                        if consume(op: "]") { break }
                        if consume(op: ":") {
                            isSlice = true
                            guard parts.count < 3 else { throw error("a slice takes at most three parts") }
                            parts.append(nil)
                            continue
                        }
                        guard parts[parts.count - 1] == nil else { throw error("expected ']' or ':'") }
                        parts[parts.count - 1] = try nested { try $0.parseExpression() }
                        partDepth = max(partDepth, lastDepth)
                    }
                    depth = max(depth, partDepth) + 1
                    if isSlice {
                        while parts.count < 3 { parts.append(nil) }
                        expr = try made(.slice(expr, parts[0], parts[1], parts[2]), depth: depth)
                    } else {
                        guard let key = parts[0] else { throw error("empty subscript") }
                        expr = try made(.index(expr, key), depth: depth)
                    }
                } else if consume(op: "(") {
                    let (args, keywords) = try parseArguments()
                    depth = max(depth, lastDepth) + 1
                    expr = try made(.call(expr, args, keywords, pos), depth: depth)
                } else if consume(op: "|") {
                    let name = try expectName()
                    var args: [JinjaExpr] = []
                    var keywords: [(String, JinjaExpr)] = []
                    var argDepth = 0
                    if consume(op: "(") {
                        (args, keywords) = try parseArguments()
                        argDepth = lastDepth
                    }
                    depth = max(depth, argDepth) + 1
                    expr = try made(.filter(expr, name, args, keywords, pos), depth: depth)
                } else {
                    lastDepth = depth
                    return expr
                }
            }
        }

        mutating func parsePrimary() throws -> JinjaExpr {
            guard let token = peek else { throw error("expected an expression") }
            advance()
            lastDepth = 1
            switch token.kind {
            case .string(var s):
                // Adjacent string literals concatenate.
                while case .string(let more)? = peek?.kind {
                    s += more
                    advance()
                }
                return .literal(.string(s))
            case .int(let i): return .literal(.int(i))
            case .double(let d): return .literal(.double(d))
            case .name(let name):
                switch name {
                case "true", "True": return .literal(.bool(true))
                case "false", "False": return .literal(.bool(false))
                case "none", "None": return .literal(.none)
                default: return .name(name, token.position)
                }
            case .op("("):
                let expr = try nested { try $0.parseExpression() }
                if consume(op: ",") { throw error("tuples are not supported") }
                try expect(op: ")")
                return expr
            case .op("["):
                var items: [JinjaExpr] = []
                var depth = 0
                if !consume(op: "]") {
                    repeat {
                        if peek?.kind == .op("]") { break }
                        items.append(try nested { try $0.parseExpression() })
                        depth = max(depth, lastDepth)
                    } while consume(op: ",")
                    try expect(op: "]")
                }
                return try made(.list(items), depth: depth + 1)
            case .op("{"):
                var pairs: [(JinjaExpr, JinjaExpr)] = []
                var depth = 0
                if !consume(op: "}") {
                    repeat {
                        if peek?.kind == .op("}") { break }
                        let key = try nested { try $0.parseExpression() }
                        depth = max(depth, lastDepth)
                        try expect(op: ":")
                        pairs.append((key, try nested { try $0.parseExpression() }))
                        depth = max(depth, lastDepth)
                    } while consume(op: ",")
                    try expect(op: "}")
                }
                return try made(.dict(pairs), depth: depth + 1)
            default:
                index -= 1
                throw error("unexpected \(describe(token))")
            }
        }
    }
}

// MARK: - Evaluation

struct JinjaInterpreter {
    var scopes: [[String: JinjaValue]]
    var namespaces: [JinjaDict] = []
    var output = ""
    /// The bounds on this rendering.
    let limits: ChatTemplate.Limits
    /// When the rendering must have finished.
    let deadline: ContinuousClock.Instant
    /// Loop iterations so far.
    var iterations = 0

    enum Flow: Error {
        case breakLoop
        case continueLoop
    }

    /// - Parameters:
    ///   - globals: the variables the template sees.
    ///   - limits: the bounds on the rendering; its time starts now.
    init(globals: [String: JinjaValue], limits: ChatTemplate.Limits = .standard) {
        scopes = [globals]
        self.limits = limits
        deadline = ContinuousClock.now.advanced(by: limits.duration)
    }

    mutating func render(_ nodes: [JinjaNode]) throws -> String {
        output = ""
        do {
            try run(nodes)
        } catch is Flow {
            throw ChatTemplateError("'break' or 'continue' outside a loop")
        }
        return output
    }

    /// Counts one loop iteration at `position`; throws past the iteration or time limit.
    mutating func step(_ position: JinjaPosition) throws {
        iterations += 1
        guard iterations <= limits.loopIterations else {
            throw fail("the template ran more than \(limits.loopIterations) loop iterations (limit on loop iterations)", position)
        }
        try checkTime(position)
    }

    /// Throws once the rendering has run past its time limit.
    func checkTime(_ position: JinjaPosition) throws {
        guard ContinuousClock.now < deadline else {
            throw fail("rendering took longer than \(limits.duration) (time limit)", position)
        }
    }

    /// `value`, after checking that it is no larger than the output limit and no deeper than the
    /// depth limit (printing or comparing a larger one would exhaust memory or the stack).
    func bounded(_ value: JinjaValue, _ position: JinjaPosition) throws -> JinjaValue {
        var budget = limits.outputBytes
        func visit(_ v: JinjaValue, depth: Int) throws {
            guard depth <= limits.depth else {
                throw fail("a value is nested more than \(limits.depth) deep (limit on nesting depth)", position)
            }
            switch v {
            case .string(let s): budget -= s.utf8.count + 1
            case .list(let items):
                budget -= 1
                for item in items where budget >= 0 { try visit(item, depth: depth + 1) }
            case .dict(let dict):
                budget -= 1
                for (key, item) in dict.pairs where budget >= 0 {
                    budget -= key.utf8.count
                    try visit(item, depth: depth + 1)
                }
            default: budget -= 1
            }
            guard budget >= 0 else {
                throw fail("a value grew past \(limits.outputBytes) bytes (limit on output size)", position)
            }
        }
        try visit(value, depth: 0)
        return value
    }

    /// `text` as a value, after checking it against the output limit.
    func sized(_ text: String, _ position: JinjaPosition) throws -> JinjaValue {
        guard text.utf8.count <= limits.outputBytes else {
            throw fail("a string grew past \(limits.outputBytes) bytes (limit on output size)", position)
        }
        return .string(text)
    }

    /// Throws when a string of `count` copies of `bytes` bytes would pass the output limit.
    func checkRepeat(_ bytes: Int, _ count: Int, _ position: JinjaPosition) throws {
        let (total, overflow) = bytes.multipliedReportingOverflow(by: max(count, 0))
        guard !overflow, total <= limits.outputBytes else {
            throw fail("a string would grow past \(limits.outputBytes) bytes (limit on output size)", position)
        }
    }

    /// Appends `text` to the output; throws past the output limit.
    mutating func emit(_ text: String, _ position: JinjaPosition?) throws {
        output += text
        guard output.utf8.count <= limits.outputBytes else {
            throw ChatTemplateError("the output grew past \(limits.outputBytes) bytes (limit on output size)", line: position?.line, column: position?.column)
        }
    }

    func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() {
            if let value = scope[name] { return value }
        }
        return .undefined
    }

    mutating func run(_ nodes: [JinjaNode]) throws {
        for node in nodes {
            switch node {
            case .text(let text):
                try emit(text, nil)
            case .output(let expr, let position):
                try emit(try bounded(evaluate(expr), position).text, position)
            case .conditional(let branches, let otherwise):
                var taken = false
                for (condition, body) in branches {
                    if try evaluate(condition).truthy {
                        try run(body)
                        taken = true
                        break
                    }
                }
                if !taken { try run(otherwise) }
            case .loop(let targets, let iterableExpr, let filter, let body, let otherwise, let position):
                try runLoop(targets: targets, iterable: try evaluate(iterableExpr), filter: filter, body: body, otherwise: otherwise, position: position)
            case .assign(let target, let attribute, let expr, let position):
                let value = try bounded(evaluate(expr), position)
                if let attribute {
                    guard case .namespace(let id) = lookup(target) else {
                        throw ChatTemplateError("'\(target)' is not a namespace, so '\(target).\(attribute)' cannot be set", line: position.line, column: position.column)
                    }
                    namespaces[id][attribute] = value
                } else {
                    scopes[scopes.count - 1][target] = value
                }
            case .loopBreak:
                throw Flow.breakLoop
            case .loopContinue:
                throw Flow.continueLoop
            }
        }
    }

    mutating func runLoop(targets: [String], iterable: JinjaValue, filter: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode], position: JinjaPosition) throws {
        var items: [JinjaValue]
        switch iterable {
        case .list(let list): items = list
        case .dict(let dict): items = dict.keys.map { .string($0) }
        case .string(let s): items = s.map { .string(String($0)) }
        case .undefined, .none: items = []
        default:
            throw ChatTemplateError("cannot loop over a \(iterable.typeName)", line: position.line, column: position.column)
        }
        func bind(_ item: JinjaValue, into scope: inout [String: JinjaValue]) throws {
            if targets.count == 1 {
                scope[targets[0]] = item
                return
            }
            guard case .list(let parts) = item, parts.count == targets.count else {
                throw ChatTemplateError("cannot unpack \(item.typeName) into \(targets.count) names", line: position.line, column: position.column)
            }
            for (name, part) in zip(targets, parts) { scope[name] = part }
        }
        if let filter {
            var kept: [JinjaValue] = []
            for item in items {
                try step(position)
                var scope: [String: JinjaValue] = [:]
                try bind(item, into: &scope)
                scopes.append(scope)
                defer { scopes.removeLast() }
                if try evaluate(filter).truthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            try run(otherwise)
            return
        }
        let count = items.count
        for (i, item) in items.enumerated() {
            try step(position)
            var scope: [String: JinjaValue] = [:]
            try bind(item, into: &scope)
            scope["loop"] = .dict(JinjaDict([
                ("index", .int(i + 1)), ("index0", .int(i)), ("revindex", .int(count - i)),
                ("revindex0", .int(count - i - 1)), ("first", .bool(i == 0)), ("last", .bool(i == count - 1)),
                ("length", .int(count)), ("previtem", i > 0 ? items[i - 1] : .undefined),
                ("nextitem", i + 1 < count ? items[i + 1] : .undefined),
            ]))
            scopes.append(scope)
            defer { scopes.removeLast() }
            do {
                try run(body)
            } catch Flow.breakLoop {
                break
            } catch Flow.continueLoop {
                continue
            }
        }
    }

    func fail(_ message: String, _ position: JinjaPosition) -> ChatTemplateError {
        ChatTemplateError(message, line: position.line, column: position.column)
    }

    mutating func evaluate(_ expr: JinjaExpr) throws -> JinjaValue {
        switch expr {
        case .literal(let value):
            return value
        case .name(let name, _):
            return lookup(name)
        case .list(let items):
            return .list(try items.map { try evaluate($0) })
        case .dict(let pairs):
            var dict = JinjaDict()
            for (keyExpr, valueExpr) in pairs {
                guard case .string(let key) = try evaluate(keyExpr) else { throw ChatTemplateError("dict keys must be strings") }
                dict[key] = try evaluate(valueExpr)
            }
            return .dict(dict)
        case .attribute(let baseExpr, let name, _):
            return member(try evaluate(baseExpr), name)
        case .index(let baseExpr, let keyExpr):
            let base = try evaluate(baseExpr)
            let key = try evaluate(keyExpr)
            switch (base, key) {
            case (.list(let list), .int(let i)):
                let j = i < 0 ? list.count + i : i
                return j >= 0 && j < list.count ? list[j] : .undefined
            case (.string(let s), .int(let i)):
                let chars = Array(s)
                let j = i < 0 ? chars.count + i : i
                return j >= 0 && j < chars.count ? .string(String(chars[j])) : .undefined
            case (_, .string(let name)):
                return member(base, name)
            default:
                return .undefined
            }
        case .slice(let baseExpr, let startExpr, let stopExpr, let stepExpr):
            let base = try evaluate(baseExpr)
            func int(_ e: JinjaExpr?) throws -> Int? {
                guard let e else { return nil }
                switch try evaluate(e) {
                case .int(let i): return i
                case .none, .undefined: return nil
                default: throw ChatTemplateError("slice bounds must be integers")
                }
            }
            let step = try int(stepExpr) ?? 1
            guard step != 0 else { throw ChatTemplateError("slice step cannot be zero") }
            let start = try int(startExpr), stop = try int(stopExpr)
            func indices(_ n: Int) -> [Int] {
                func clamp(_ v: Int?, _ fallback: Int, low: Int, high: Int) -> Int {
                    guard var v else { return fallback }
                    if v < 0 { v += n }
                    return min(max(v, low), high)
                }
                if step > 0 {
                    let a = clamp(start, 0, low: 0, high: n), b = clamp(stop, n, low: 0, high: n)
                    return Array(stride(from: a, to: b, by: step))
                }
                let a = clamp(start, n - 1, low: -1, high: n - 1), b = clamp(stop, -1, low: -1, high: n - 1)
                return Array(stride(from: a, to: b, by: step))
            }
            switch base {
            case .list(let list): return .list(indices(list.count).map { list[$0] })
            case .string(let s):
                let chars = Array(s)
                return .string(String(indices(chars.count).map { chars[$0] }))
            default: throw ChatTemplateError("cannot slice a \(base.typeName)")
            }
        case .call(let callee, let argExprs, let keywordExprs, let position):
            let args = try argExprs.map { try bounded(evaluate($0), position) }
            var keywords: [String: JinjaValue] = [:]
            for (name, e) in keywordExprs { keywords[name] = try bounded(evaluate(e), position) }
            if case .attribute(let baseExpr, let method, _) = callee {
                return try callMethod(try evaluate(baseExpr), method, args, keywords, position)
            }
            guard case .name(let name, _) = callee else { throw fail("only functions and methods can be called", position) }
            return try callFunction(name, args, keywords, position)
        case .filter(let baseExpr, let name, let argExprs, let keywordExprs, let position):
            let base = try evaluate(baseExpr)
            let args = try argExprs.map { try bounded(evaluate($0), position) }
            var keywords: [String: JinjaValue] = [:]
            for (name, e) in keywordExprs { keywords[name] = try bounded(evaluate(e), position) }
            return try applyFilter(name, base, args, keywords, position)
        case .test(let baseExpr, let name, let argExprs, let negated, let position):
            let base = try evaluate(baseExpr)
            let args = try argExprs.map { try bounded(evaluate($0), position) }
            let result = try applyTest(name, base, args, position)
            return .bool(negated ? !result : result)
        case .unary(let op, let operandExpr):
            let operand = try evaluate(operandExpr)
            switch (op, operand) {
            case ("not", _): return .bool(!operand.truthy)
            case ("-", .int(let i)): return .int(-i)
            case ("-", .double(let d)): return .double(-d)
            case ("+", .int), ("+", .double): return operand
            default: throw ChatTemplateError("cannot apply '\(op)' to a \(operand.typeName)")
            }
        case .binary(let op, let leftExpr, let rightExpr, let position):
            if op == "and" {
                let left = try evaluate(leftExpr)
                return left.truthy ? try evaluate(rightExpr) : left
            }
            if op == "or" {
                let left = try evaluate(leftExpr)
                return left.truthy ? left : try evaluate(rightExpr)
            }
            return try binary(op, try evaluate(leftExpr), try evaluate(rightExpr), position)
        case .conditional(let valueExpr, let condition, let otherwise):
            if try evaluate(condition).truthy { return try evaluate(valueExpr) }
            return try otherwise.map { try evaluate($0) } ?? .undefined
        }
    }

    func member(_ base: JinjaValue, _ name: String) -> JinjaValue {
        switch base {
        case .dict(let dict): return dict[name] ?? .undefined
        case .namespace(let id): return namespaces[id][name] ?? .undefined
        default: return .undefined
        }
    }

    func number(_ v: JinjaValue) -> Double? {
        switch v {
        case .int(let i): Double(i)
        case .double(let d): d
        case .bool(let b): b ? 1 : 0
        default: nil
        }
    }

    func equal(_ a: JinjaValue, _ b: JinjaValue) -> Bool {
        if let x = number(a), let y = number(b) {
            if case .bool = a, case .bool = b { return x == y }
            return x == y
        }
        if case .undefined = a, case .undefined = b { return true }
        return a == b
    }

    func binary(_ op: String, _ left: JinjaValue, _ right: JinjaValue, _ position: JinjaPosition) throws -> JinjaValue {
        switch op {
        case "==": return .bool(equal(left, right))
        case "!=": return .bool(!equal(left, right))
        case "~": return try sized(bounded(left, position).text + bounded(right, position).text, position)
        case "in":
            switch right {
            case .string(let s):
                guard case .string(let needle) = left else { throw fail("'in <string>' needs a string on the left, not a \(left.typeName)", position) }
                return .bool(needle.isEmpty || s.contains(needle))
            case .list(let list): return .bool(list.contains { equal($0, left) })
            case .dict(let dict):
                guard case .string(let key) = left else { return .bool(false) }
                return .bool(dict[key] != nil)
            case .undefined, .none: return .bool(false)
            default: throw fail("cannot test membership in a \(right.typeName)", position)
            }
        case "<", ">", "<=", ">=":
            let ordered: Bool
            if let x = number(left), let y = number(right) {
                ordered = op == "<" ? x < y : op == ">" ? x > y : op == "<=" ? x <= y : x >= y
            } else if case .string(let x) = left, case .string(let y) = right {
                ordered = op == "<" ? x < y : op == ">" ? x > y : op == "<=" ? x <= y : x >= y
            } else {
                throw fail("cannot compare a \(left.typeName) with a \(right.typeName)", position)
            }
            return .bool(ordered)
        case "+":
            switch (left, right) {
            case (.string(let a), .string(let b)): return try sized(a + b, position)
            case (.list(let a), .list(let b)):
                guard a.count + b.count <= limits.outputBytes else {
                    throw fail("a list grew past \(limits.outputBytes) items (limit on output size)", position)
                }
                return .list(a + b)
            case (.int(let a), .int(let b)): return .int(a &+ b)
            default:
                if let a = number(left), let b = number(right) { return .double(a + b) }
                throw fail("cannot add a \(left.typeName) and a \(right.typeName)", position)
            }
        case "-", "*", "/", "//", "%":
            if case .int(let a) = left, case .int(let b) = right, op != "/" {
                switch op {
                case "-": return .int(a &- b)
                case "*": return .int(a &* b)
                default:
                    guard b != 0 else { throw fail("division by zero", position) }
                    if op == "//" { return .int(Int((Double(a) / Double(b)).rounded(.down))) }
                    let r = a % b
                    return .int(r != 0 && (r < 0) != (b < 0) ? r + b : r)
                }
            }
            if op == "*", case .string(let s) = left, case .int(let n) = right {
                try checkRepeat(s.utf8.count, n, position)
                return .string(String(repeating: s, count: max(n, 0)))
            }
            guard let a = number(left), let b = number(right) else {
                throw fail("cannot apply '\(op)' to a \(left.typeName) and a \(right.typeName)", position)
            }
            switch op {
            case "-": return .double(a - b)
            case "*": return .double(a * b)
            case "/":
                guard b != 0 else { throw fail("division by zero", position) }
                return .double(a / b)
            case "//":
                guard b != 0 else { throw fail("division by zero", position) }
                return .double((a / b).rounded(.down))
            default:
                guard b != 0 else { throw fail("division by zero", position) }
                return .double(a - b * (a / b).rounded(.down))
            }
        default:
            throw fail("unsupported operator '\(op)'", position)
        }
    }

    mutating func callFunction(_ name: String, _ args: [JinjaValue], _ keywords: [String: JinjaValue], _ position: JinjaPosition) throws -> JinjaValue {
        switch name {
        case "raise_exception":
            throw fail("the template raised an error: \(args.first?.text ?? "")", position)
        case "range":
            let ints = args.compactMap { v -> Int? in if case .int(let i) = v { return i } else { return nil } }
            guard ints.count == args.count, (1...3).contains(ints.count) else { throw fail("range() takes one to three integers", position) }
            let start = ints.count > 1 ? ints[0] : 0
            let stop = ints.count > 1 ? ints[1] : ints[0]
            let step = ints.count > 2 ? ints[2] : 1
            guard step != 0 else { throw fail("range() step cannot be zero", position) }
            guard abs((stop - start) / step) <= 100_000 else { throw fail("range() is too long", position) }
            return .list(Array(stride(from: start, to: stop, by: step)).map { .int($0) })
        case "namespace":
            var dict = JinjaDict()
            for key in keywords.keys.sorted() { dict[key] = keywords[key] }
            namespaces.append(dict)
            return .namespace(namespaces.count - 1)
        case "dict":
            var dict = JinjaDict()
            for key in keywords.keys.sorted() { dict[key] = keywords[key] }
            return .dict(dict)
        case "strftime_now":
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.dateFormat = "dd MMM yyyy"
            return .string(formatter.string(from: Date()))
        default:
            throw fail("function '\(name)' is not supported by Tally's chat-template interpreter", position)
        }
    }

    func callMethod(_ base: JinjaValue, _ method: String, _ args: [JinjaValue], _ keywords: [String: JinjaValue], _ position: JinjaPosition) throws -> JinjaValue {
        func stringArg(_ i: Int) -> String? {
            if i < args.count, case .string(let s) = args[i] { return s }
            return nil
        }
        switch base {
        case .string(let s):
            func strip(_ view: Substring, leading: Bool, trailing: Bool) -> String {
                let set = stringArg(0).map { Set($0) }
                let drop: (Character) -> Bool = { set?.contains($0) ?? $0.isWhitespace }
                var v = view
                if leading { v = v.drop(while: drop) }
                if trailing { while let last = v.last, drop(last) { v = v.dropLast() } }
                return String(v)
            }
            switch method {
            case "strip": return .string(strip(s[...], leading: true, trailing: true))
            case "lstrip": return .string(strip(s[...], leading: true, trailing: false))
            case "rstrip": return .string(strip(s[...], leading: false, trailing: true))
            case "upper": return .string(s.uppercased())
            case "lower": return .string(s.lowercased())
            case "title": return .string(s.capitalized)
            case "capitalize": return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
            case "startswith": return .bool(stringArg(0).map { s.hasPrefix($0) } ?? false)
            case "endswith": return .bool(stringArg(0).map { s.hasSuffix($0) } ?? false)
            case "replace":
                guard let a = stringArg(0), let b = stringArg(1) else { throw fail("replace() takes two strings", position) }
                return try replacing(s, a, b, position)
            case "split":
                if let separator = stringArg(0) {
                    return .list(s.components(separatedBy: separator).map { .string($0) })
                }
                return .list(s.split(whereSeparator: \.isWhitespace).map { .string(String($0)) })
            case "format":
                var out = s
                for arg in args {
                    if let range = out.range(of: "%s") { out.replaceSubrange(range, with: try bounded(arg, position).text) }
                    guard out.utf8.count <= limits.outputBytes else { return try sized(out, position) }
                }
                return .string(out)
            default: break
            }
        case .dict(let dict):
            switch method {
            case "items": return .list(dict.pairs.map { .list([.string($0.0), $0.1]) })
            case "keys": return .list(dict.keys.map { .string($0) })
            case "values": return .list(dict.pairs.map(\.1))
            case "get":
                guard let key = stringArg(0) else { throw fail("get() takes a string key", position) }
                return dict[key] ?? (args.count > 1 ? args[1] : .none)
            default: break
            }
        default: break
        }
        throw fail("method '\(method)' of a \(base.typeName) is not supported by Tally's chat-template interpreter", position)
    }

    /// `s` with every `a` replaced by `b`, refused when the result could pass the output limit.
    func replacing(_ s: String, _ a: String, _ b: String, _ position: JinjaPosition) throws -> JinjaValue {
        if b.utf8.count > a.utf8.count {
            // At most one match per byte of `s` (an empty `a` matches between characters).
            let matches = a.isEmpty ? s.utf8.count + 1 : s.utf8.count / a.utf8.count
            try checkRepeat(b.utf8.count - a.utf8.count, matches, position)
            try checkRepeat(1, s.utf8.count + matches * (b.utf8.count - a.utf8.count), position)
        }
        return try sized(s.replacingOccurrences(of: a, with: b), position)
    }

    func applyFilter(_ name: String, _ value: JinjaValue, _ args: [JinjaValue], _ keywords: [String: JinjaValue], _ position: JinjaPosition) throws -> JinjaValue {
        let value = try bounded(value, position)
        switch name {
        case "trim":
            return .string(value.text.trimmingCharacters(in: .whitespacesAndNewlines))
        case "length", "count":
            switch value {
            case .string(let s): return .int(s.count)
            case .list(let l): return .int(l.count)
            case .dict(let d): return .int(d.count)
            case .undefined, .none: return .int(0)
            default: throw fail("a \(value.typeName) has no length", position)
            }
        case "upper": return .string(value.text.uppercased())
        case "lower": return .string(value.text.lowercased())
        case "capitalize":
            let s = value.text
            return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case "title": return .string(value.text.capitalized)
        case "string": return .string(value.text)
        case "safe": return value
        case "int":
            switch value {
            case .int: return value
            case .double(let d): return .int(Int(d))
            case .string(let s): return .int(Int(s.trimmingCharacters(in: .whitespaces)) ?? 0)
            case .bool(let b): return .int(b ? 1 : 0)
            default: return .int(0)
            }
        case "tojson":
            return try sized(value.json, position)
        case "default", "d":
            let fallback = args.first ?? .string("")
            let useFalsy = (args.count > 1 && args[1].truthy) || (keywords["boolean"]?.truthy ?? false)
            if case .undefined = value { return fallback }
            if useFalsy && !value.truthy { return fallback }
            return value
        case "first":
            if case .list(let l) = value { return l.first ?? .undefined }
            if case .string(let s) = value { return s.first.map { .string(String($0)) } ?? .undefined }
        case "last":
            if case .list(let l) = value { return l.last ?? .undefined }
            if case .string(let s) = value { return s.last.map { .string(String($0)) } ?? .undefined }
        case "join":
            let separator = try args.first.map { try bounded($0, position).text } ?? ""
            if case .list(let l) = value {
                try checkRepeat(separator.utf8.count, l.count, position)
                return try sized(l.map(\.text).joined(separator: separator), position)
            }
        case "list":
            switch value {
            case .list: return value
            case .string(let s): return .list(s.map { .string(String($0)) })
            case .dict(let d): return .list(d.keys.map { .string($0) })
            default: break
            }
        case "items":
            if case .dict(let d) = value { return .list(d.pairs.map { .list([.string($0.0), $0.1]) }) }
        case "reverse":
            if case .list(let l) = value { return .list(l.reversed()) }
            if case .string(let s) = value { return .string(String(s.reversed())) }
        case "replace":
            guard args.count >= 2 else { throw fail("replace takes two arguments", position) }
            return try replacing(value.text, try bounded(args[0], position).text, try bounded(args[1], position).text, position)
        case "selectattr", "rejectattr":
            guard case .list(let l) = value, let attribute = args.first?.text else { break }
            let select = name == "selectattr"
            let kept = try l.filter { item in
                let attr = member(item, attribute)
                let passes: Bool
                if args.count >= 2 {
                    passes = try applyTest(args[1].text, attr, Array(args.dropFirst(2)), position)
                } else {
                    passes = attr.truthy
                }
                return passes == select
            }
            return .list(kept)
        case "map":
            guard case .list(let l) = value else { break }
            if let attribute = keywords["attribute"]?.text {
                return .list(l.map { member($0, attribute) })
            }
            if let filterName = args.first?.text {
                return .list(try l.map { try applyFilter(filterName, $0, Array(args.dropFirst()), [:], position) })
            }
        default:
            break
        }
        throw fail("filter '\(name)' is not supported for a \(value.typeName) by Tally's chat-template interpreter", position)
    }

    func applyTest(_ name: String, _ value: JinjaValue, _ args: [JinjaValue], _ position: JinjaPosition) throws -> Bool {
        switch name {
        case "defined":
            if case .undefined = value { return false }
            return true
        case "undefined":
            if case .undefined = value { return true }
            return false
        case "none":
            if case .none = value { return true }
            return false
        case "string":
            if case .string = value { return true }
            return false
        case "number":
            switch value {
            case .int, .double: return true
            default: return false
            }
        case "integer":
            if case .int = value { return true }
            return false
        case "boolean":
            if case .bool = value { return true }
            return false
        case "true":
            return value == .bool(true)
        case "false":
            return value == .bool(false)
        case "mapping":
            switch value {
            case .dict, .namespace: return true
            default: return false
            }
        case "sequence", "iterable":
            switch value {
            case .list, .string, .dict: return true
            default: return false
            }
        case "odd", "even":
            guard case .int(let i) = value else { throw fail("'\(name)' needs an integer", position) }
            return (i % 2 != 0) == (name == "odd")
        case "equalto", "eq", "sameas", "==":
            return equal(value, args.first ?? .undefined)
        case "ne", "!=":
            return !equal(value, args.first ?? .undefined)
        default:
            throw fail("test '\(name)' is not supported by Tally's chat-template interpreter", position)
        }
    }
}
