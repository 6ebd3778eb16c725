import Foundation
import Testing

@testable import SwiftTrainer

struct TokenizerCase {
    let text: String
    let ids: [Int]
    let tokens: [String]?
    let decoded: String

    static func load(_ relativePath: String, key: String) throws -> [TokenizerCase] {
        let root = try #require(try FormatsFixtures.json(relativePath) as? [String: Any])
        let cases = try #require(root[key] as? [[String: Any]])
        return try cases.map { entry in
            TokenizerCase(
                text: try #require(entry["text"] as? String),
                ids: try #require(entry["ids"] as? [Int]),
                tokens: entry["tokens"] as? [String],
                decoded: try #require(entry["decoded"] as? String))
        }
    }
}

@Suite("Tokenizer: tokenizer.json byte-level BPE")
struct TokenizerTests {
    @Test("Reference tokenizers: ids, tokens and decoded text equal Hugging Face tokenizers", arguments: ["gpt2-style", "llama3-style"])
    func referenceCases(style: String) throws {
        let tokenizer = try BPETokenizer(tokenizerJSON: FormatsFixtures.resource("tokenizers/\(style)/tokenizer.json"))
        let cases = try TokenizerCase.load("tokenizers/\(style)/cases.json", key: "cases")
        #expect(cases.count >= 15)
        for c in cases {
            let ids = tokenizer.encode(c.text, addSpecialTokens: false)
            #expect(ids == c.ids, "ids of \(c.text.debugDescription)")
            #expect(tokenizer.tokenize(c.text) == c.tokens, "tokens of \(c.text.debugDescription)")
            #expect(tokenizer.decode(c.ids, skipSpecialTokens: false) == c.decoded, "decode of \(c.text.debugDescription)")
        }
    }

    @Test("Special tokens: matched before pre-tokenization, skipped on request")
    func specialTokens() throws {
        let tokenizer = try BPETokenizer(tokenizerJSON: FormatsFixtures.resource("tokenizers/gpt2-style/tokenizer.json"))
        let ids = tokenizer.encode("hi<|endoftext|>", addSpecialTokens: false)
        #expect(ids.last == 0)
        #expect(tokenizer.decode(ids, skipSpecialTokens: true) == "hi")
        #expect(tokenizer.decode(ids, skipSpecialTokens: false) == "hi<|endoftext|>")
        #expect(tokenizer.eosTokenIDs == [0])
        // The ByteLevel post-processor adds nothing.
        #expect(tokenizer.encode("hi", addSpecialTokens: true) == tokenizer.encode("hi", addSpecialTokens: false))
    }

    @Test("The hand-written GPT-2 scanner splits exactly as the GPT-2 regular expression")
    func gpt2ScannerMatchesRegex() throws {
        try scannerMatchesRegex(pattern: gpt2Pattern, scanner: .gpt2)
    }

    @Test("The hand-written Llama 3 scanner splits exactly as the Llama 3 regular expression")
    func llama3ScannerMatchesRegex() throws {
        try scannerMatchesRegex(pattern: llama3Pattern, scanner: .llama3)
    }

    func scannerMatchesRegex(pattern: String, scanner: SplitPattern) throws {
        let regex = try CompiledRegex.compile(pattern)
        var texts = try TokenizerCase.load("tokenizers/gpt2-style/cases.json", key: "cases").map(\.text)
        texts += [
            "It's  ok'S 'll '  '", "a\u{0301}b e\u{301}\u{301}", "x\u{0B}y\u{85}z\u{A0} \u{3000}end",
            "   leading", "trailing   ", "\n\n\t \n", "mixed123abc ٣٤ Ⅻ ½", "'", " '", "'re'", "a  \u{1F600}  b",
            "tab\t\tword", "  \n  x", "I'M HE'LL 'Re 'ſ x'", "12345678 ab1234", "a.\n\nb  \r\n c", "!!\n\n x", "\t\nword",
            " \n \n  y", "x\u{0301}\u{0301}y", "-5 +7 (a)", "end\n", " ", "\r", ".\r\n",
        ]
        for text in texts {
            let fast = scanner.matches(in: text).map { String(text.unicodeScalars[$0]) }
            let slow = regex.matches(in: text).map { String(text.unicodeScalars[$0]) }
            #expect(fast == slow, "pieces of \(text.debugDescription)")
            #expect(fast.joined() == text)
        }
    }

    @Test("Split behaviours follow Hugging Face's documented examples")
    func splitBehaviours() {
        let text = "the-final--countdown"
        let dash = SplitPattern.literal("-")
        func split(_ behavior: SplitBehavior, invert: Bool = false) -> [String] {
            PreTokenizer.split(pattern: dash, behavior: behavior, invert: invert).apply([text])
        }
        #expect(split(.removed) == ["the", "final", "countdown"])
        #expect(split(.isolated) == ["the", "-", "final", "-", "-", "countdown"])
        #expect(split(.mergedWithPrevious) == ["the-", "final-", "-", "countdown"])
        #expect(split(.mergedWithNext) == ["the", "-final", "-", "-countdown"])
        #expect(split(.contiguous) == ["the", "-", "final", "--", "countdown"])
        // Inverted: the matches are kept and the text between them is removed.
        #expect(split(.removed, invert: true) == ["-", "-", "-"])
    }

    @Test("Digits pre-tokenizer, individually and in runs")
    func digits() {
        #expect(PreTokenizer.digits(individual: true).apply(["Call 123 please"]) == ["Call ", "1", "2", "3", " please"])
        #expect(PreTokenizer.digits(individual: false).apply(["Call 123 please"]) == ["Call ", "123", " please"])
    }

    @Test("ByteLevel with add_prefix_space prefixes one space")
    func byteLevelPrefixSpace() {
        let pieces = PreTokenizer.byteLevel(addPrefixSpace: true, useRegex: true).apply(["Hello world"])
        #expect(pieces == ["ĠHello", "Ġworld"])
        #expect(PreTokenizer.byteLevel(addPrefixSpace: false, useRegex: false).apply(["a b"]) == ["aĠb"])
    }

    /// A tokenizer.json with a six-token vocabulary and two merges in the given encoding.
    func tinyTokenizerJSON(merges: String, extra: String = "") -> Data {
        Data("""
            {"added_tokens": [{"id": 6, "content": "<eos>", "special": true}],
             "normalizer": null,
             "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
             "post_processor": {"type": "TemplateProcessing",
               "single": [{"SpecialToken": {"id": "<eos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
               "special_tokens": {"<eos>": {"id": "<eos>", "ids": [6], "tokens": ["<eos>"]}}},
             "decoder": {"type": "ByteLevel"},
             "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4, "c": 5}, "merges": \(merges)}\(extra)}
            """.utf8)
    }

    @Test("Both merge encodings, \"a b\" strings and [a, b] pairs, give the same tokenizer")
    func mergeEncodings() throws {
        let strings = try BPETokenizer(tokenizerJSONData: tinyTokenizerJSON(merges: #"["a b", "Ġ ab"]"#), file: "strings.json")
        let pairs = try BPETokenizer(tokenizerJSONData: tinyTokenizerJSON(merges: #"[["a", "b"], ["Ġ", "ab"]]"#), file: "pairs.json")
        for tokenizer in [strings, pairs] {
            #expect(tokenizer.encode("ab abc", addSpecialTokens: false) == [2, 4, 5])
            #expect(tokenizer.encode("ab", addSpecialTokens: true) == [6, 2])
            #expect(tokenizer.decode([2, 4, 5], skipSpecialTokens: true) == "ab abc")
        }
    }

    @Test("Malformed tokenizer files give errors naming the file and the problem")
    func malformed() throws {
        let notJSON = #expect(throws: TokenizerError.self) {
            try BPETokenizer(tokenizerJSONData: Data("{ nope".utf8), file: "broken.json")
        }
        #expect(notJSON?.description.contains("broken.json") == true)
        let badMerge = #expect(throws: TokenizerError.self) {
            try BPETokenizer(tokenizerJSONData: tinyTokenizerJSON(merges: #"["a zz"]"#), file: "merge.json")
        }
        #expect(badMerge?.message.contains("merge 0") == true)
        let unsupported = #expect(throws: TokenizerError.self) {
            try BPETokenizer(tokenizerJSONData: Data(#"{"model": {"type": "Unigram", "vocab": []}}"#.utf8), file: "uni.json")
        }
        #expect(unsupported?.message.contains("Unigram") == true)
        let missing = #expect(throws: TokenizerError.self) {
            try BPETokenizer(tokenizerJSON: URL(fileURLWithPath: "no-such-dir/tokenizer.json"))
        }
        #expect(missing?.description.contains("no-such-dir/tokenizer.json") == true)
    }

    @Test("A Hugging Face model directory: tokenizer.json plus chat template and EOS ids from the config files")
    func huggingFaceDirectory() throws {
        let directory = FormatsFixtures.temporaryFile("hf-model")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.copyItem(
            at: FormatsFixtures.resource("tokenizers/gpt2-style/tokenizer.json"), to: directory.appendingPathComponent("tokenizer.json"))
        try Data(#"{"eos_token": {"content": "<|pad|>"}, "bos_token": "<|endoftext|>", "chat_template": "{{ messages[0].content }}"}"#.utf8)
            .write(to: directory.appendingPathComponent("tokenizer_config.json"))
        try Data(#"{"eos_token_id": [0]}"#.utf8).write(to: directory.appendingPathComponent("generation_config.json"))
        var tokenizer = try BPETokenizer(huggingFaceDirectory: directory)
        #expect(tokenizer.eosTokenIDs == [0, 1])
        #expect(tokenizer.bosTokenID == 0)
        #expect(tokenizer.chatTemplate == "{{ messages[0].content }}")
        try Data("{{ 'file' }}".utf8).write(to: directory.appendingPathComponent("chat_template.jinja"))
        tokenizer = try BPETokenizer(huggingFaceDirectory: directory)
        #expect(tokenizer.chatTemplate == "{{ 'file' }}")
        #expect(try ChatTemplate(tokenizer: tokenizer).render(messages: [.user("x")], addGenerationPrompt: true) == "file")

        try Data("{".utf8).write(to: directory.appendingPathComponent("generation_config.json"))
        let error = #expect(throws: TokenizerError.self) { try BPETokenizer(huggingFaceDirectory: directory) }
        #expect(error?.file.hasSuffix("generation_config.json") == true)
    }

    @Test("Encoding a long text is fast")
    func speed() throws {
        let tokenizer = try BPETokenizer(tokenizerJSON: FormatsFixtures.resource("tokenizers/llama3-style/tokenizer.json"))
        let text = String(repeating: "Licensor grants You a worldwide, royalty-free, non-exclusive license 42. ", count: 400)
        let clock = ContinuousClock()
        var count = 0
        let elapsed = clock.measure { count = tokenizer.encode(text, addSpecialTokens: false).count }
        #expect(count > 10_000)
        #expect(elapsed < .seconds(5))
    }
}
