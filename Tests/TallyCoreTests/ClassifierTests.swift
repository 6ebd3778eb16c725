import Foundation
import TallyCore
import Testing

/// TF-IDF, logistic regression, L-BFGS and stratified folds: hand-computed values, and
/// golden values from scikit-learn 1.9.1 (the snippets that produced them are quoted).
@Suite("Classic classifiers")
struct ClassifierTests {
    static func close(_ a: Double, _ b: Double, _ tolerance: Double = 1e-6) -> Bool { abs(a - b) <= tolerance }

    // MARK: TF-IDF

    @Test("smoothed idf and L2-normalised tf-idf on a tiny corpus")
    func tinyCorpus() throws {
        let docs = ["good movie", "bad movie", "good good plot"]
        let block = TFIDFVectorizer.fit(docs, options: TFIDFOptions(analyzer: .word))
        #expect(block.terms == ["bad", "good", "movie", "plot"])
        // idf = ln((1 + n) / (1 + df)) + 1 with n = 3: df 1 -> 1 + ln 2, df 2 -> 1 + ln(4/3).
        let rare = 1 + log(2.0), common = 1 + log(4.0 / 3)
        #expect(zip(block.idf, [rare, common, common, rare]).allSatisfy { Self.close($0, $1, 1e-12) })
        #expect(Self.close(rare, 1.6931471806) && Self.close(common, 1.2876820725))

        // "good good plot": tf good 2, plot 1 -> (2 x 1.287682, 1.693147) / 3.082085.
        let third = block.transform(docs[2])
        #expect(third.indices == [1, 3])
        #expect(Self.close(third.values[0], 0.835592) && Self.close(third.values[1], 0.549351))
        #expect(Self.close(third.values[0], 2 * common / (4 * common * common + rare * rare).squareRoot(), 1e-12))
        // Unknown words are ignored; equal weights give 1/sqrt(2) each.
        let first = block.transform("Good MOVIE, unseen!")
        #expect(first.indices == [1, 2] && first.values.allSatisfy { Self.close($0, 0.5.squareRoot(), 1e-12) })
        #expect(block.transform("nothing known") == .zero)

        // Sublinear tf: 1 + ln 2 for the repeated word.
        let sublinear = TFIDFVectorizer.fit(docs, options: TFIDFOptions(analyzer: .word, sublinearTF: true)).transform(docs[2])
        #expect(Self.close(sublinear.values[0], 0.789807) && Self.close(sublinear.values[1], 0.613356))
    }

    @Test("word and character n-grams as scikit-learn's analyzers cut them")
    func analyzers() {
        // TfidfVectorizer(ngram_range=(1, 2)).build_analyzer()("It's a good, good film_2 é x")
        let words = TFIDFOptions(analyzer: .word, ngramMin: 1, ngramMax: 2).terms(of: "It's a good, good film_2 é x")
        #expect(words == ["it", "good", "good", "film_2", "it good", "good good", "good film_2"])
        // TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).build_analyzer()("ab c  Ok")
        let chars = TFIDFOptions(analyzer: .charWordBounded, ngramMin: 2, ngramMax: 4).terms(of: "ab c  Ok")
        #expect(chars == [" a", "ab", "b ", " ab", "ab ", " ab ", " c", "c ", " c ", " o", "ok", "k ", " ok", "ok ", " ok "])
        // Vocabulary in code-point order: TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit(["ab c", "Abd"])
        let vocabulary = TFIDFVectorizer.fit(["ab c", "Abd"], options: TFIDFOptions(analyzer: .charWordBounded, ngramMin: 2, ngramMax: 4)).terms
        #expect(vocabulary == [" a", " ab", " ab ", " abd", " c", " c ", "ab", "ab ", "abd", "abd ", "b ", "bd", "bd ", "c ", "d "])
    }

    @Test("max_features keeps the most frequent terms; blocks are normalised separately and concatenated")
    func limitsAndBlocks() {
        let docs = ["a b b c", "b c c", "c d"]
        let limited = TFIDFVectorizer.fit(docs, options: TFIDFOptions(analyzer: .charWordBounded, ngramMin: 1, ngramMax: 1, maxFeatures: 2))
        // Single characters with their padding: " " occurs 18 times, "c" 4, "b" 3.
        #expect(limited.terms == [" ", "c"])

        let featurizer = TextFeaturizer.fit(["good movie", "bad movie"], blocks: [
            TFIDFOptions(analyzer: .word), TFIDFOptions(analyzer: .charWordBounded, ngramMin: 3, ngramMax: 3),
        ])
        let words = featurizer.blocks[0].featureCount
        let x = featurizer.transform("good movie")
        #expect(featurizer.featureCount == words + featurizer.blocks[1].featureCount)
        let wordPart = zip(x.indices, x.values).filter { $0.0 < words }.map(\.1)
        let charPart = zip(x.indices, x.values).filter { $0.0 >= words }.map(\.1)
        #expect(Self.close(wordPart.reduce(0) { $0 + $1 * $1 }, 1, 1e-12) && Self.close(charPart.reduce(0) { $0 + $1 * $1 }, 1, 1e-12))
        #expect(Self.close(x.norm, 2.0.squareRoot(), 1e-12))
    }

    // MARK: Logistic regression

    static func dense(_ rows: [[Double]]) -> [SparseVector] {
        rows.map { row in SparseVector(pairs: row.enumerated().map { ($0.offset, $0.element) }) }
    }

    @Test("two symmetric points: the weight solves w = 2C sigmoid(-w), the intercept is 0")
    func symmetricPair() {
        // With x = +1 (class 1) and -1 (class 0) the objective is ln(1 + e^-w) + w^2 / (4C);
        // its minimum satisfies w = 2C / (1 + e^w): for C = 1, w = 0.674831614342 (fixed-point
        // iteration), which LogisticRegression(C=1).fit([[1], [-1]], [1, 0]).coef_ also gives.
        let model = LogisticRegression(c: 1, tolerance: 1e-10).fit(Self.dense([[1], [-1]]), labels: [1, 0], classCount: 2, featureCount: 1)
        #expect(model.converged)
        #expect(Self.close(model.weights[0], 0.6748316143, 1e-8))
        #expect(Self.close(model.weights[0], 2 / (1 + exp(model.weights[0])), 1e-9))
        #expect(Self.close(model.intercepts[0], 0, 1e-9))
        #expect(model.predict(Self.dense([[2]])[0]) == 1 && model.predict(Self.dense([[-0.5]])[0]) == 0)
    }

    @Test("separable toy set: every training row right, confident, and weaker regularisation grows the weights")
    func separable() {
        let x = Self.dense([[1, 0], [0.9, 0.2], [0.8, 0.1], [0, 1], [0.1, 0.9], [0.2, 0.7]])
        let y = [0, 0, 0, 1, 1, 1]
        let weak = LogisticRegression(c: 100).fit(x, labels: y, classCount: 2, featureCount: 2)
        let strong = LogisticRegression(c: 0.01).fit(x, labels: y, classCount: 2, featureCount: 2)
        #expect(weak.converged && strong.converged)
        #expect(x.map(weak.predict) == y)
        #expect(zip(x, y).allSatisfy { weak.probabilities($0)[$1] > 0.9 })
        let weakSize: Double = weak.weights.reduce(0) { $0 + abs($1) }
        let strongSize: Double = strong.weights.reduce(0) { $0 + abs($1) }
        #expect(weakSize > 10 * strongSize)
        #expect(weak.logLoss(x, labels: y) < strong.logLoss(x, labels: y))
        // The objective falls monotonically from ln 2 at zero weights.
        #expect(Self.close(weak.objectiveTrace[0], log(2.0), 1e-12))
        #expect(zip(weak.objectiveTrace, weak.objectiveTrace.dropFirst()).allSatisfy { $1 <= $0 })
    }

    @Test("three classes: multinomial weights match scikit-learn's")
    func multinomialGolden() {
        // LogisticRegression(C=10, tol=1e-12, max_iter=100000).fit(X, y) in scikit-learn 1.9.1.
        let x = Self.dense([[1, 0, 0.5], [0.9, 0.1, 0], [0, 1, 0.2], [0.1, 0.8, 0], [0, 0, 1], [0.2, 0.1, 0.9], [0.5, 0.5, 0]])
        let y = [0, 0, 1, 1, 2, 2, 0]
        let model = LogisticRegression(c: 10, maxIterations: 10_000, tolerance: 1e-10).fit(x, labels: y, classCount: 3, featureCount: 3)
        let coef: [Double] = [2.4596478251, -0.8655176148, -1.3085587429, -1.4153427181, 2.0752824989, -0.8358674385, -1.0443051071, -1.2097648841, 2.1444261814]
        let intercept: [Double] = [0.3818597414, -0.2156905323, -0.1661692091]
        #expect(model.converged)
        #expect(zip(model.weights, coef).allSatisfy { Self.close($0, $1, 1e-6) }, "\(model.weights)")
        #expect(zip(model.intercepts, intercept).allSatisfy { Self.close($0, $1, 1e-6) }, "\(model.intercepts)")
        let p = model.probabilities(x[0])
        #expect(Self.close(p[0], 0.8991203887) && Self.close(p[1], 0.0130035419) && Self.close(p[2], 0.0878760693))
    }

    @Test("training is deterministic: the same data give bit-identical models")
    func deterministic() {
        let docs = ["a fine film", "a dull film", "fine acting", "dull plot", "fine fine", "so dull"]
        let y = [0, 1, 0, 1, 0, 1]
        func train() -> (TextFeaturizer, LogisticModel) {
            let featurizer = TextFeaturizer.fit(docs, blocks: [TFIDFOptions(analyzer: .word, ngramMax: 2), TFIDFOptions(analyzer: .charWordBounded, ngramMin: 2, ngramMax: 5)])
            return (featurizer, LogisticRegression(c: 10).fit(docs.map(featurizer.transform), labels: y, classCount: 2, featureCount: featurizer.featureCount))
        }
        let (f1, m1) = train()
        let (f2, m2) = train()
        #expect(f1 == f2)
        #expect(m1.weights.map(\.bitPattern) == m2.weights.map(\.bitPattern) && m1.intercepts.map(\.bitPattern) == m2.intercepts.map(\.bitPattern))
        #expect(m1.iterations == m2.iterations && m1.iterations > 0)
    }

    @Test("L-BFGS finds the minimum of the Rosenbrock function")
    func rosenbrock() {
        let result = LBFGS(maxIterations: 500, gradientTolerance: 1e-8).minimize(start: [-1.2, 1]) { p in
            let (x, y) = (p[0], p[1])
            let value = (1 - x) * (1 - x) + 100 * (y - x * x) * (y - x * x)
            return (value, [-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
        }
        #expect(result.converged)
        #expect(Self.close(result.x[0], 1, 1e-6) && Self.close(result.x[1], 1, 1e-6))
    }

    // MARK: Folds

    @Test("stratified folds are scikit-learn's StratifiedKFold(3) without shuffling")
    func folds() {
        let labels = ["b", "a", "a", "b", "c", "a", "b", "a", "a", "c", "b"]
        let folds = StratifiedFolds.split(labels: labels, folds: 3)
        #expect(folds.map(\.test) == [[0, 1, 3, 4], [2, 5, 6, 9], [7, 8, 10]])
        #expect(folds.map(\.train) == [[2, 5, 6, 7, 8, 9, 10], [0, 1, 3, 4, 7, 8, 10], [0, 1, 2, 3, 4, 5, 6, 9]])
        #expect(StratifiedFolds.split(labels: ["a"], folds: 5).isEmpty)
        #expect(StratifiedFolds.split(labels: ["a", "b", "a"], folds: 5).count == 3)
    }
}
