import Foundation

extension Tape {
    /// RMSNorm over the last dimension: `y = x / sqrt(mean(x²) + eps) * weight`
    /// (as `LlamaRMSNorm` computes it).
    /// - Parameters:
    ///   - x: `[rows, d]`.
    ///   - weight: `[d]`.
    ///   - eps: added to the mean square.
    /// - Returns: `[rows, d]`.
    public func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float) -> Tensor {
        let d = x.columns
        let n = x.rows
        precondition(weight.count == d, "rmsNorm: weight \(weight.shape) does not match \(d) features")
        let y = Tensor(uninitializedShape: x.shape)
        let record = needsGrad(x, weight)
        let inv = record ? UnsafeMutablePointer<Float>.allocate(capacity: n) : nil
        Threading.parallelChunks(n, minChunk: 16) { r0, r1 in
            for r in r0..<r1 {
                let xr = x.data + r * d
                let yr = y.data + r * d
                let ss = FastMath.dot(xr, xr, d)
                let rs = 1 / (ss / Float(d) + eps).squareRoot()
                inv?[r] = rs
                for c in 0..<d { yr[c] = weight.data[c] * (xr[c] * rs) }
            }
        }
        guard record, let inv else { return y }
        let box = ScratchBox(inv)
        self.record(y) {
            guard let dy = y.grad else { return }
            let inv = box.pointer
            if weight.requiresGrad {
                let dw = weight.ensureGrad()
                for r in 0..<n {
                    let xr = x.data + r * d, gr = dy + r * d
                    let rs = inv[r]
                    for c in 0..<d { dw[c] += gr[c] * xr[c] * rs }
                }
            }
            if x.requiresGrad {
                let dx = x.ensureGrad()
                Threading.parallelChunks(n, minChunk: 16) { r0, r1 in
                    for r in r0..<r1 {
                        let xr = x.data + r * d, gr = dy + r * d, dxr = dx + r * d
                        let rs = inv[r]
                        var dot: Float = 0
                        do {
                            var acc = FastMath.V(repeating: 0)
                            var c = 0
                            while c + 8 <= d {
                                acc += FastMath.load(gr, c) * FastMath.load(weight.data, c) * FastMath.load(xr, c)
                                c += 8
                            }
                            dot = acc.sum()
                            while c < d {
                                dot += gr[c] * weight.data[c] * xr[c]
                                c += 1
                            }
                        }
                        let k = dot * rs * rs / Float(d)
                        for c in 0..<d { dxr[c] += rs * (gr[c] * weight.data[c] - xr[c] * k) }
                    }
                }
            }
        }
        return y
    }

    /// LayerNorm over the last dimension: `y = (x - mean) / sqrt(var + eps) * weight + bias`.
    /// - Parameters:
    ///   - x: `[rows, d]`.
    ///   - weight: `[d]`.
    ///   - bias: `[d]`.
    ///   - eps: added to the (biased) variance.
    /// - Returns: `[rows, d]`.
    public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
        let d = x.columns
        let n = x.rows
        precondition(weight.count == d && bias.count == d, "layerNorm: weight/bias do not match \(d) features")
        let y = Tensor(uninitializedShape: x.shape)
        let record = needsGrad(x, weight, bias)
        let stats = record ? UnsafeMutablePointer<Float>.allocate(capacity: 2 * n) : nil
        Threading.parallelChunks(n, minChunk: 16) { r0, r1 in
            for r in r0..<r1 {
                let xr = x.data + r * d, yr = y.data + r * d
                var mean: Float = 0
                for c in 0..<d { mean += xr[c] }
                mean /= Float(d)
                var v: Float = 0
                for c in 0..<d { let t = xr[c] - mean; v += t * t }
                let rs = 1 / (v / Float(d) + eps).squareRoot()
                stats?[2 * r] = mean
                stats?[2 * r + 1] = rs
                for c in 0..<d { yr[c] = (xr[c] - mean) * rs * weight.data[c] + bias.data[c] }
            }
        }
        guard record, let stats else { return y }
        let box = ScratchBox(stats)
        self.record(y) {
            guard let dy = y.grad else { return }
            let st = box.pointer
            if weight.requiresGrad || bias.requiresGrad {
                let dw = weight.requiresGrad ? weight.ensureGrad() : nil
                let db = bias.requiresGrad ? bias.ensureGrad() : nil
                for r in 0..<n {
                    let xr = x.data + r * d, gr = dy + r * d
                    let mean = st[2 * r], rs = st[2 * r + 1]
                    if let dw { for c in 0..<d { dw[c] += gr[c] * (xr[c] - mean) * rs } }
                    if let db { for c in 0..<d { db[c] += gr[c] } }
                }
            }
            if x.requiresGrad {
                let dx = x.ensureGrad()
                Threading.parallelChunks(n, minChunk: 16) { r0, r1 in
                    for r in r0..<r1 {
                        let xr = x.data + r * d, gr = dy + r * d, dxr = dx + r * d
                        let mean = st[2 * r], rs = st[2 * r + 1]
                        var s1: Float = 0, s2: Float = 0
                        for c in 0..<d {
                            let g = gr[c] * weight.data[c]
                            s1 += g
                            s2 += g * (xr[c] - mean) * rs
                        }
                        s1 /= Float(d); s2 /= Float(d)
                        for c in 0..<d {
                            let g = gr[c] * weight.data[c]
                            let xh = (xr[c] - mean) * rs
                            dxr[c] += rs * (g - s1 - xh * s2)
                        }
                    }
                }
            }
        }
        return y
    }
}

/// Owns a scratch buffer saved for a backward pass and frees it with the closure.
final class ScratchBox {
    let pointer: UnsafeMutablePointer<Float>
    init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
    init(count: Int) { pointer = .allocate(capacity: max(count, 1)) }
    deinit { pointer.deallocate() }
}
