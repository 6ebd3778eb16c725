import Foundation
import Testing
@testable import TallyCore

@Suite struct StatisticsTests {
    @Test func quantileInterpolatesLinearly() throws {
        #expect(try #require(Statistics.quantile([4, 1, 3, 2], 0.5)) == 2.5)
        #expect(abs(try #require(Statistics.quantile([1, 2, 3, 4], 0.95)) - 3.85) < 1e-12)
        #expect(Statistics.quantile([], 0.5) == nil)
        #expect(Statistics.quantile([7], 0.95) == 7)
    }

    @Test func bootstrapIsDeterministicForASeed() {
        let scores: [Double] = (0..<50).map { $0 % 3 == 0 ? 0 : 1 }
        let a = Bootstrap.meanInterval(scores, samples: 500, seed: 42)
        let b = Bootstrap.meanInterval(scores, samples: 500, seed: 42)
        let c = Bootstrap.meanInterval(scores, samples: 500, seed: 43)
        #expect(a == b)
        #expect(a.low != c.low || a.high != c.high)
        #expect(a.value == 33.0 / 50.0)
        #expect(a.contains(a.value))
    }

    @Test func bootstrapIntervalMatchesTheNormalApproximation() {
        // 60 of 100 correct: standard error sqrt(0.6 * 0.4 / 100) = 0.049, so a 95% interval
        // is about 0.60 +- 0.096.
        let scores: [Double] = (0..<100).map { $0 < 60 ? 1 : 0 }
        let ci = Bootstrap.meanInterval(scores, samples: 2000, seed: 7)
        #expect(ci.value == 0.6)
        #expect(ci.low > 0.48 && ci.low < 0.53)
        #expect(ci.high > 0.67 && ci.high < 0.72)
    }

    @Test func constantSampleHasAZeroWidthInterval() {
        let ci = Bootstrap.meanInterval([1, 1, 1, 1], samples: 100, seed: 1)
        #expect(ci == ConfidenceInterval(value: 1, low: 1, high: 1))
        #expect(Bootstrap.meanInterval([], samples: 100, seed: 1) == ConfidenceInterval(value: 0, low: 0, high: 0))
    }

    @Test func exactMcNemarMatchesTheBinomialTail() {
        // b = 1, c = 6: P(X <= 1) for Binomial(7, 1/2) = (1 + 7) / 128; two-sided doubles it.
        let r = McNemar.exact(b: 1, c: 6)
        #expect(abs(r.pValue - 16.0 / 128.0) < 1e-12)
        // b = 0, c = 5: 2 / 32.
        #expect(abs(McNemar.exact(b: 0, c: 5).pValue - 0.0625) < 1e-12)
        // Symmetric and capped at 1.
        #expect(McNemar.exact(b: 6, c: 1).pValue == r.pValue)
        #expect(McNemar.exact(b: 3, c: 3).pValue == 1)
        #expect(McNemar.exact(b: 0, c: 0).pValue == 1)
    }

    @Test func continuityCorrectedMcNemarMatchesChiSquare() {
        // b = 10, c = 20: chi2 = (10 - 1)^2 / 30 = 2.7; P(chi2_1 > 2.7) = 0.100348.
        let r = McNemar.continuityCorrected(b: 10, c: 20)
        #expect(abs(r.pValue - 0.100348) < 1e-5)
        // b = 5, c = 25: chi2 = 19^2 / 30 = 12.0333; p = 0.000523.
        #expect(abs(McNemar.continuityCorrected(b: 5, c: 25).pValue - 0.000523) < 2e-6)
    }

    @Test func pairedComparisonMatchesByExampleID() throws {
        // Second list in a different order: pairing must follow ids, not positions.
        let first = (0..<14).map { (id: "e\($0)", score: $0 < 12 ? 1.0 : 0.0) }
        let second = (0..<14).reversed().map { (id: "e\($0)", score: $0 < 2 ? 1.0 : 0.0) }
        let test = PairedComparison.compare(first: ("a", first), second: ("b", second), samples: 500, seed: 3)
        #expect(test.n == 14)
        #expect(test.method == "mcnemar-exact")
        #expect(test.onlyFirstCorrect == 10)
        #expect(test.onlySecondCorrect == 0)
        // Binomial(10, 1/2): P(X <= 0) = 1/1024; two-sided 2/1024.
        #expect(abs(test.pValue - 2.0 / 1024.0) < 1e-12)
        #expect(test.significant)
        #expect(abs(test.difference.value - 10.0 / 14.0) < 1e-12)
    }

    @Test func nonBinaryScoresUsePairedBootstrap() {
        let first = (0..<30).map { (id: "\($0)", score: 0.5 + Double($0 % 3) * 0.1) }
        let second = (0..<30).map { (id: "\($0)", score: 0.5 + Double(($0 + 1) % 3) * 0.1) }
        let test = PairedComparison.compare(first: ("a", first), second: ("b", second), samples: 1000, seed: 11)
        #expect(test.method == "paired-bootstrap")
        #expect(!test.significant)
        #expect(test.difference.contains(0))
    }
}
