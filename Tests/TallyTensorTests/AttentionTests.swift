import Foundation
import Testing
@testable import TallyTensor

/// The BLAS attention kernel against a direct evaluation of the definition.
struct AttentionTests {
    func naive(q: [Float], k: [Float], v: [Float], b: Int, s: Int, h: Int, kvh: Int, d: Int, mask: [Bool]?) -> [Float] {
        var out = [Float](repeating: 0, count: b * s * h * d)
        let group = h / kvh
        for bi in 0..<b {
            for hi in 0..<h {
                let g = hi / group
                for i in 0..<s {
                    var scores = [Float](repeating: -.infinity, count: s)
                    for j in 0...i where mask?[bi * s + j] ?? true {
                        var dot: Float = 0
                        for c in 0..<d { dot += q[(bi * s + i) * h * d + hi * d + c] * k[(bi * s + j) * kvh * d + g * d + c] }
                        scores[j] = dot / Float(d).squareRoot()
                    }
                    let m = scores.max() ?? 0
                    if m == -.infinity { continue }
                    let e = scores.map { $0 == -.infinity ? 0 : exp($0 - m) }
                    let z = e.reduce(0, +)
                    for j in 0..<s where e[j] > 0 {
                        for c in 0..<d { out[(bi * s + i) * h * d + hi * d + c] += e[j] / z * v[(bi * s + j) * kvh * d + g * d + c] }
                    }
                }
            }
        }
        return out
    }

    @Test(arguments: [1, 2])
    func matchesDefinition(threads: Int) throws {
        let (b, s, h, kvh, d) = (2, 67, 6, 2, 8)
        let q = Tensor.randomNormal([b * s, h * d], std: 1, seed: 1)
        let k = Tensor.randomNormal([b * s, kvh * d], std: 1, seed: 2)
        let v = Tensor.randomNormal([b * s, kvh * d], std: 1, seed: 3)
        let mask = (0..<b * s).map { $0 % 11 != 4 }
        let out = Threading.withThreadCount(threads) {
            #expect(Threading.threadCount == threads)
            return Tape(recording: false).causalAttention(q: q, k: k, v: v, batch: b, seq: s, heads: h, kvHeads: kvh, headDim: d, keyMask: mask)
        }
        let want = naive(q: q.values, k: k.values, v: v.values, b: b, s: s, h: h, kvh: kvh, d: d, mask: mask)
        let got = out.values
        var worst: Float = 0
        for i in 0..<got.count { worst = max(worst, abs(got[i] - want[i])) }
        #expect(worst < 1e-5)
    }
}
