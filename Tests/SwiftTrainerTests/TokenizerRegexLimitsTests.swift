import Foundation
import Testing

@testable import SwiftTrainer

/// Regular expressions in a tokenizer.json come from strangers: a pattern that could drive
/// the backtracking engine into exponential work is refused at load, naming the file and field,
/// and matching any text stays within a step budget.
@Suite("Tokenizer: hostile pre-tokenizer patterns")
struct TokenizerRegexLimitsTests {
    static func tokenizerJSON(pattern: String) throws -> Data {
        let object: [String: Any] = [
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false],
            ]],
            "decoder": ["type": "ByteLevel"],
            "model": ["type": "BPE", "vocab": ["a": 0, "b": 1, "ab": 2], "merges": ["a b"]],
        ]
        return try JSONSerialization.data(withJSONObject: object)
    }

    @Test("a catastrophic pattern is refused with an error naming the file and field", arguments: [
        ("(a+)+$", "nested quantifier"), ("(\\s*)*x", "nested quantifier"), ("(a|a)*$", "catastrophic backtracking"),
        ("(a)\\1", "back-reference"), (String(repeating: "a|", count: 2_000) + "a", "characters long"),
    ])
    func refused(pattern: String, reason: String) throws {
        let error = try #require(throws: TokenizerError.self) {
            try BPETokenizer(tokenizerJSONData: try Self.tokenizerJSON(pattern: pattern), file: "hostile/tokenizer.json")
        }
        #expect(error.file == "hostile/tokenizer.json")
        #expect(error.message.contains("pre_tokenizer") && error.message.contains("pattern.Regex"), "\(error.message)")
        #expect(error.message.contains(reason), "\(error.message)")
    }

    @Test("the patterns of real tokenizers pass the checks", arguments: [
        gpt2Pattern, llama3Pattern,
        "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    ])
    func realPatternsPass(pattern: String) throws {
        let compiled = try CompiledRegex.compileFromFile(pattern)
        let text = String(repeating: "Hello, world! 123 don't  stop\n", count: 200)
        let (ranges, exhausted) = compiled.boundedMatches(in: text, budget: RegexLimits.budget(forLength: text.utf16.count))
        #expect(!exhausted)
        #expect(ranges.count > 1000)
    }

    @Test("matching a long text with a catastrophic pattern stops at its step budget instead of hanging")
    func runtimeBudget() throws {
        // Compiled without the load-time checks, as if a pattern had slipped past them.
        let compiled = try CompiledRegex.compile("(a|a)*$")
        let text = String(repeating: "a", count: 2_000) + "!"
        let (_, exhausted) = compiled.boundedMatches(in: text, budget: RegexLimits.budget(forLength: text.utf16.count))
        #expect(exhausted)
    }
}
