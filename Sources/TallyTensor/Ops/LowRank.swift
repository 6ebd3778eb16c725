/// Ops for low-rank adapters (LoRA): seeded inverted dropout and a fused
/// `base + scale * h Bᵀ`.
extension Tape {
    /// Inverted dropout: zeroes each element with `probability` and scales the rest by
    /// `1 / (1 - probability)`; the mask depends only on `seed`, so a run is repeatable.
    /// - Parameters:
    ///   - x: any tensor.
    ///   - probability: the chance of dropping an element, in `[0, 1)`.
    ///   - seed: the mask's seed.
    /// - Returns: a tensor with `x`'s shape.
    public func dropout(_ x: Tensor, probability: Float, seed: UInt64) -> Tensor {
        let keep = 1 - probability
        let factor: Float = keep > 0 ? 1 / keep : 0
        var rng = SeededGenerator(seed: seed)
        let threshold = UInt64(Double(probability) * 0x1p53)
        var mask = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count { mask[i] = (rng.next() >> 11) < threshold ? 0 : factor }
        let y = Tensor(uninitializedShape: x.shape)
        for i in 0..<x.count { y.data[i] = x.data[i] * mask[i] }
        guard needsGrad(x) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            let dx = x.ensureGrad()
            for i in 0..<x.count { dx[i] += dy[i] * mask[i] }
        }
        return y
    }

    /// `base + scale * h Bᵀ` as one op (`h: [rows, r]`, `B: [out, r]`, `base: [rows, out]`):
    /// a LoRA branch's up-projection fused with the add onto the frozen layer's output.
    /// - Returns: `[rows, out]`.
    public func addScaledLinear(_ base: Tensor, _ h: Tensor, _ b: Tensor, scale: Float) -> Tensor {
        let rows = h.rows, r = h.columns, outF = b.shape[0]
        precondition(b.shape.count == 2 && b.shape[1] == r && base.count == rows * outF,
                     "addScaledLinear: shapes \(base.shape), \(h.shape), \(b.shape) do not fit")
        let y = Tensor(uninitializedShape: base.shape)
        y.data.initialize(from: base.data, count: max(base.count, 1))
        BLAS.gemm(transA: false, transB: true, m: rows, n: outF, k: r, alpha: scale, a: h.data, lda: r, b: b.data, ldb: r, beta: 1, c: y.data, ldc: outF)
        guard needsGrad(base, h, b) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            // dy stays valid below even when base takes over its buffer.
            if base.requiresGrad { base.addGrad(dy, takingBufferOf: y) }
            if h.requiresGrad {
                BLAS.gemm(transA: false, transB: false, m: rows, n: r, k: outF, alpha: scale, a: dy, lda: outF, b: b.data, ldb: r, beta: 1, c: h.ensureGrad(), ldc: r)
            }
            if b.requiresGrad {
                BLAS.gemm(transA: true, transB: false, m: outF, n: r, k: rows, alpha: scale, a: dy, lda: outF, b: h.data, ldb: r, beta: 1, c: b.ensureGrad(), ldc: r)
            }
        }
        return y
    }
}
