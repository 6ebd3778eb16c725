/// How a linear layer's weight matrix is stored.
public enum WeightLayout: Sendable, Hashable {
    /// `[out, in]` (PyTorch `nn.Linear`, Llama): `y = x Wᵀ + b`.
    case outIn
    /// `[in, out]` (GPT-2 `Conv1D`): `y = x W + b`.
    case inOut
}

extension Tape {
    /// A linear map over the last dimension: `y = x Wᵀ + b` (or `x W + b` for `.inOut`).
    ///
    /// Backward skips the weight-gradient product when `weight` does not require a gradient
    /// (a frozen base under LoRA) and the input-gradient product when `x` does not.
    /// - Parameters:
    ///   - x: input `[rows, in]` (any leading shape; the last dimension is `in`).
    ///   - weight: `[out, in]` or `[in, out]` per `layout`.
    ///   - bias: optional `[out]`.
    ///   - layout: how `weight` is stored.
    /// - Returns: `[rows, out]`.
    public func linear(_ x: Tensor, _ weight: Tensor, bias: Tensor? = nil, layout: WeightLayout = .outIn) -> Tensor {
        precondition(weight.shape.count == 2, "linear: weight must be 2-D, got \(weight.shape)")
        let (outF, inF) = layout == .outIn ? (weight.shape[0], weight.shape[1]) : (weight.shape[1], weight.shape[0])
        precondition(x.columns == inF, "linear: input has \(x.columns) features, weight \(weight.shape) expects \(inF)")
        let rows = x.rows
        let y = Tensor(uninitializedShape: [rows, outF])
        var beta: Float = 0
        if let bias {
            precondition(bias.count == outF, "linear: bias \(bias.shape) does not match \(outF) outputs")
            for r in 0..<rows { (y.data + r * outF).update(from: bias.data, count: outF) }
            beta = 1
        }
        BLAS.gemm(
            transA: false, transB: layout == .outIn, m: rows, n: outF, k: inF,
            a: x.data, lda: inF, b: weight.data, ldb: layout == .outIn ? inF : outF,
            beta: beta, c: y.data, ldc: outF)
        guard needsGrad(x, weight, bias) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            if x.requiresGrad {
                let (dx, accumulate) = x.gradForWriting()
                BLAS.gemm(
                    transA: false, transB: layout == .inOut, m: rows, n: inF, k: outF,
                    a: dy, lda: outF, b: weight.data, ldb: layout == .outIn ? inF : outF,
                    beta: accumulate ? 1 : 0, c: dx, ldc: inF)
            }
            if weight.requiresGrad {
                let dw = weight.ensureGrad()
                if layout == .outIn {
                    BLAS.gemm(
                        transA: true, transB: false, m: outF, n: inF, k: rows,
                        a: dy, lda: outF, b: x.data, ldb: inF, beta: 1, c: dw, ldc: inF)
                } else {
                    BLAS.gemm(
                        transA: true, transB: false, m: inF, n: outF, k: rows,
                        a: x.data, lda: inF, b: dy, ldb: outF, beta: 1, c: dw, ldc: outF)
                }
            }
            if let bias, bias.requiresGrad {
                addColumnSums(dy, rows: rows, columns: outF, into: bias.ensureGrad())
            }
        }
        return y
    }

    /// A matrix product `C = A B` of 2-D tensors (`[m, k] x [k, n]`), with gradients.
    /// - Parameters:
    ///   - a: `[m, k]`.
    ///   - b: `[k, n]`.
    /// - Returns: `[m, n]`.
    public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
        linear(a, b, layout: .inOut)
    }
}

/// `sums[c] += Σ_r m[r, c]`, parallel over column ranges.
func addColumnSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int, into sums: UnsafeMutablePointer<Float>) {
    Threading.parallelChunks(columns, minChunk: 64) { c0, c1 in
        for r in 0..<rows {
            let row = m + r * columns
            for c in c0..<c1 { sums[c] += row[c] }
        }
    }
}
