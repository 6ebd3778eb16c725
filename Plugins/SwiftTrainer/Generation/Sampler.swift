import Foundation
import TallyTensor

/// Chooses the next token from a row of logits: greedy (temperature 0) or seeded
/// temperature / nucleus (top-p) sampling as transformers' warpers define them.
public struct Sampler: Sendable {
    /// 0 means greedy.
    public let temperature: Double
    /// Keep the smallest set of most likely tokens whose probability reaches `topP`.
    public let topP: Double
    private var rng: SeededGenerator

    /// Makes a sampler.
    /// - Parameters:
    ///   - temperature: 0 for greedy decoding; otherwise logits are divided by it.
    ///   - topP: nucleus threshold in (0, 1]; 1 keeps every token.
    ///   - seed: seeds the generator, so equal seeds give equal samples.
    public init(temperature: Double = 0, topP: Double = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topP = topP
        rng = SeededGenerator(seed: seed)
    }

    /// The index of the largest logit (the first one on ties).
    public static func argmax(_ logits: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for i in 0..<count where logits[i] > bestValue {
            best = i
            bestValue = logits[i]
        }
        return best
    }

    /// Picks a token from `count` logits.
    public mutating func next(_ logits: UnsafePointer<Float>, count: Int) -> Int {
        if temperature <= 0 { return Sampler.argmax(logits, count: count) }
        let t = Float(temperature)
        var m = -Float.infinity
        for i in 0..<count { m = max(m, logits[i] / t) }
        var probs = [Double](repeating: 0, count: count)
        var z: Double = 0
        for i in 0..<count {
            let e = Foundation.exp(Double(logits[i] / t - m))
            probs[i] = e
            z += e
        }
        var candidates = Array(0..<count)
        if topP < 1 {
            candidates.sort { probs[$0] > probs[$1] }
            var cumulative: Double = 0
            var keep = 0
            for i in candidates {
                cumulative += probs[i] / z
                keep += 1
                if cumulative >= topP { break }
            }
            candidates = Array(candidates.prefix(max(keep, 1)))
        }
        let total = candidates.reduce(0) { $0 + probs[$1] }
        var u = rng.nextUniform() * total
        for i in candidates {
            u -= probs[i]
            if u < 0 { return i }
        }
        return candidates.last ?? 0
    }
}
