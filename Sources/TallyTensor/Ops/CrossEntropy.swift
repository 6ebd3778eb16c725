import Foundation

extension Tape {
    /// The value used in `targets` for positions that are not scored.
    public static let ignoreIndex = -100

    /// Mean softmax cross-entropy of `logits` rows against `targets`, ignoring rows whose
    /// target is -100 (they get zero gradient). With no scored row the loss is 0.
    /// - Parameters:
    ///   - logits: `[n, vocab]`.
    ///   - targets: `n` class indices in `0..<vocab`, or -100.
    /// - Returns: a one-element tensor.
    public func crossEntropy(_ logits: Tensor, targets: [Int]) -> Tensor {
        let v = logits.columns
        let n = logits.rows
        precondition(targets.count == n, "crossEntropy: \(targets.count) targets for \(n) rows")
        let lse = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        let box = ScratchBox(lse)
        var scored = 0
        for t in targets where t != Tape.ignoreIndex {
            precondition(t >= 0 && t < v, "crossEntropy: target \(t) outside 0..<\(v)")
            scored += 1
        }
        Threading.parallelChunks(n, minChunk: 4) { r0, r1 in
            for r in r0..<r1 where targets[r] != Tape.ignoreIndex {
                let row = logits.data + r * v
                let m = FastMath.max(row, v)
                lse[r] = m + Foundation.log(FastMath.expSum(row, v, shift: m))
            }
        }
        var total: Double = 0
        for r in 0..<n where targets[r] != Tape.ignoreIndex {
            total += Double(lse[r] - logits.data[r * v + targets[r]])
        }
        let y = Tensor(uninitializedShape: [1])
        y.data[0] = scored > 0 ? Float(total / Double(scored)) : 0
        guard needsGrad(logits), scored > 0 else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            let g = dy[0] / Float(scored)
            // A fresh buffer (the usual case) is written, not zeroed and then accumulated.
            let (dl, accumulate) = logits.gradForWriting()
            let lse = box.pointer
            Threading.parallelChunks(n, minChunk: 4) { r0, r1 in
                for r in r0..<r1 {
                    let row = logits.data + r * v, drow = dl + r * v
                    if targets[r] == Tape.ignoreIndex {
                        if !accumulate { drow.update(repeating: 0, count: v) }
                        continue
                    }
                    let l = lse[r]
                    let gv = FastMath.V(repeating: g), lv = FastMath.V(repeating: l)
                    var c = 0
                    while c + 8 <= v {
                        let d = gv * FastMath.exp(FastMath.load(row, c) - lv)
                        FastMath.store(accumulate ? FastMath.load(drow, c) + d : d, drow, c)
                        c += 8
                    }
                    while c < v {
                        let d = g * FastMath.exp(row[c] - l)
                        drow[c] = accumulate ? drow[c] + d : d
                        c += 1
                    }
                    drow[targets[r]] -= g
                }
            }
        }
        return y
    }
}
