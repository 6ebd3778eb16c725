import Foundation
import TallyCore
import Testing

@Suite("Metrics")
struct MetricTests {
    @Test("normalisation drops case, punctuation and articles")
    func normalise() {
        #expect(TextNormalizer.normalize("The  Positive!") == "positive")
        #expect(TextNormalizer.normalize("Don't stop, an apple.") == "dont stop apple")
        #expect(TextNormalizer.tokens("The cat", keepArticles: true) == ["the", "cat"])
    }

    @Test("exact match")
    func exact() {
        #expect(Metrics.exactMatch("Paris.", "paris") == 1)
        #expect(Metrics.exactMatch("Paris, France", "Paris") == 0)
    }

    @Test("token F1 against hand-computed values")
    func f1() {
        // answer: [cat, sat, on, mat]; reference: [cat, sat, on, red, mat]: common 4,
        // P = 4/4, R = 4/5, F1 = 2*1*0.8/1.8 = 0.888…
        #expect(abs(Metrics.tokenF1("the cat sat on the mat", "a cat sat on the red mat") - 8.0 / 9.0) < 1e-12)
        // answer [a b b], reference [b c]: common 1 (one b), P = 1/3, R = 1/2, F1 = 0.4
        #expect(abs(Metrics.tokenF1("x y y", "y z") - 0.4) < 1e-12)
        #expect(Metrics.tokenF1("nothing", "else") == 0)
        #expect(Metrics.tokenF1("", "") == 1)
    }

    @Test("ROUGE-L against hand-computed values")
    func rouge() {
        // candidate: the cat was found under the bed (7); reference: the cat was under the bed (6)
        // LCS = the cat was under the bed = 6; P = 6/7, R = 1, F = 2*(6/7)/(13/7) = 12/13
        #expect(abs(Metrics.rougeL("the cat was found under the bed", "the cat was under the bed") - 12.0 / 13.0) < 1e-12)
        // candidate [a b c d], reference [b d e]: LCS = b d = 2; P = 1/2, R = 2/3, F = 4/7
        #expect(abs(Metrics.rougeL("w x y z", "x z q") - 4.0 / 7.0) < 1e-12)
    }

    @Test("numbers are found with thousands separators, decimals and signs")
    func numbers() {
        #expect(Metrics.numbers(in: "It costs $1,234.50 or -3 and .5") == [1234.5, -3, 0.5])
        #expect(Metrics.numbers(in: "list 1,2,3") == [1, 2, 3])
        #expect(Metrics.numbers(in: "co-2 items") == [2])
        #expect(Metrics.numericMatch(0.1 + 0.2, 0.3) == 1)
        #expect(Metrics.numericMatch(3, 3.01) == 0)
    }

    @Test("label extraction: first label mentioned, longer label wins at the same word, none is unparsed")
    func labels() {
        let scorer = AnswerScorer(metric: .accuracy, labels: ["positive", "negative"])
        #expect(scorer.extractAnswer(from: "Positive.") == "positive")
        #expect(scorer.extractAnswer(from: "  NEGATIVE! The acting was poor.") == "negative")
        #expect(scorer.extractAnswer(from: "negative, not positive") == "negative")
        #expect(scorer.extractAnswer(from: "positively great") == nil)  // whole words only
        #expect(scorer.extractAnswer(from: "I cannot tell.") == nil)
        let nested = AnswerScorer(metric: .accuracy, labels: ["positive", "very positive"])
        #expect(nested.extractAnswer(from: "Very positive indeed") == "very positive")
        #expect(scorer.score(answer: nil, expected: ["positive"]) == 0)
        #expect(scorer.evaluate(output: "Positive", expected: ["positive"]).score == 1)
        #expect(scorer.evaluate(output: "negative", expected: ["positive"]).score == 0)
    }

    @Test("chain-of-thought extraction reads the final Answer: line, else the last label")
    func reasoning() {
        let scorer = AnswerScorer(metric: .accuracy, labels: ["positive", "negative"])
        #expect(scorer.extractAnswer(from: "It says positive things but...\nAnswer: Negative", reasoning: true) == "negative")
        #expect(scorer.extractAnswer(from: "First positive, then overall negative.", reasoning: true) == "negative")
        #expect(scorer.extractAnswer(from: "No idea.", reasoning: true) == nil)
        let numeric = AnswerScorer(metric: .numeric)
        #expect(numeric.extractAnswer(from: "3 apples plus 4 apples is 7.\nAnswer: 7 apples", reasoning: true) == "7")
        #expect(numeric.evaluate(output: "So 12 + 30 = 42", expected: ["42.0"]).score == 1)
        let exact = AnswerScorer(metric: .exactMatch)
        #expect(exact.extractAnswer(from: "Let me think.\nParis\n", reasoning: true) == "Paris")
        #expect(exact.extractAnswer(from: "   ") == nil)
    }

    @Test("regex metric extracts the first capture group")
    func regex() {
        let scorer = AnswerScorer(metric: .regex, answerPattern: "final: (\\w+)")
        #expect(scorer.evaluate(output: "blah final: Blue", expected: ["blue"]) == ("Blue", 1))
        #expect(scorer.evaluate(output: "no match", expected: ["blue"]).answer == nil)
    }

    @Test("scores take the best reference; F1 and ROUGE metrics through the scorer")
    func multipleReferences() {
        #expect(AnswerScorer(metric: .exactMatch).score(answer: "eight", expected: ["8", "Eight"]) == 1)
        #expect(abs(AnswerScorer(metric: .f1).score(answer: "x y y", expected: ["nothing", "y z"]) - 0.4) < 1e-12)
        #expect(abs(AnswerScorer(metric: .rougeL).score(answer: "w x y z", expected: ["x z q"]) - 4.0 / 7.0) < 1e-12)
    }

    @Test("refusal heuristic")
    func refusals() {
        #expect(RefusalDetector.isRefusal("I can’t help with that."))
        #expect(RefusalDetector.isRefusal("Sorry, but I must decline."))
        #expect(!RefusalDetector.isRefusal("Sure, here is how."))
    }

    @Test("SHA-256 matches the FIPS 180-4 test vectors")
    func sha256() {
        #expect(SHA256.hexDigest(of: "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hexDigest(of: "") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hexDigest(of: "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hexDigest(of: String(repeating: "a", count: 1000)) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}
