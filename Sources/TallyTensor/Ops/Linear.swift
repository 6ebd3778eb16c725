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
        let recording = needsGrad(x, weight, bias)
        if !recording, layout == .outIn, rows <= fewRowsLimit {
            fewRowsLinear(x: x.data, rows: rows, weight: weight.data, outF: outF, inF: inF, y: y.data, accumulate: beta != 0)
            return y
        }
        BLAS.gemm(
            transA: false, transB: layout == .outIn, m: rows, n: outF, k: inF,
            a: x.data, lda: inF, b: weight.data, ldb: layout == .outIn ? inF : outF,
            beta: beta, c: y.data, ldc: outF)
        guard recording else { return y }
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

/// Inputs of at most this many rows (token-by-token decoding of a batch) take
/// ``fewRowsLinear(x:rows:weight:outF:inF:y:accumulate:)`` instead of `sgemm` when no gradient
/// is needed.
let fewRowsLimit = 8

/// `y = x Wᵀ` (`accumulate`: `y += x Wᵀ`) for `W` stored `[out, in]` and a few rows of `x`.
///
/// Decoding multiplies a handful of token vectors by every weight matrix; `sgemm` first copies
/// the whole weight into its packed layout, which costs more than the product itself. Here each
/// weight row is read once, straight from the model, and applied to every input row (which stay
/// in cache), eight lanes at a time, in parallel over output features.
func fewRowsLinear(
    x: UnsafePointer<Float>, rows: Int, weight w: UnsafePointer<Float>, outF: Int, inF: Int,
    y: UnsafeMutablePointer<Float>, accumulate: Bool
) {
    Threading.parallelChunks(outF, minChunk: 32) { o0, o1 in
        for o in o0..<o1 {
            fewRowsDot(weightRow: w + o * inF, x: x, rows: rows, inF: inF, y: y + o, yStride: outF, accumulate: accumulate)
        }
    }
}

/// `y[r * yStride] = x[r] · w` (`accumulate`: `+=`) for every row `r` of `x` (`[rows, inF]`):
/// one weight row applied to a few input rows, four rows at a time with their accumulators in
/// registers, eight lanes per step. The decode kernels of Float32 and quantised weights share it
/// (the quantised one dequantises the weight row first).
public func fewRowsDot(
    weightRow w: UnsafePointer<Float>, x: UnsafePointer<Float>, rows: Int, inF: Int,
    y: UnsafeMutablePointer<Float>, yStride: Int, accumulate: Bool
) {
    typealias V8 = SIMD8<Float>
    let vectorEnd = inF - inF % 8
    // A row past the end repeats the last one and is not written.
    var r0 = 0
    while r0 < rows {
        let x0 = x + r0 * inF
        let x1 = x + min(r0 + 1, rows - 1) * inF
        let x2 = x + min(r0 + 2, rows - 1) * inF
        let x3 = x + min(r0 + 3, rows - 1) * inF
        var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8()
        var i = 0
        while i < vectorEnd {
            let wv = UnsafeRawPointer(w + i).loadUnaligned(as: V8.self)
            a0 += UnsafeRawPointer(x0 + i).loadUnaligned(as: V8.self) * wv
            a1 += UnsafeRawPointer(x1 + i).loadUnaligned(as: V8.self) * wv
            a2 += UnsafeRawPointer(x2 + i).loadUnaligned(as: V8.self) * wv
            a3 += UnsafeRawPointer(x3 + i).loadUnaligned(as: V8.self) * wv
            i += 8
        }
        var sums = (a0.sum(), a1.sum(), a2.sum(), a3.sum())
        for j in vectorEnd..<inF {
            sums.0 += x0[j] * w[j]
            sums.1 += x1[j] * w[j]
            sums.2 += x2[j] * w[j]
            sums.3 += x3[j] * w[j]
        }
        func store(_ k: Int, _ sum: Float) {
            guard r0 + k < rows else { return }
            let out = y + (r0 + k) * yStride
            out.pointee = accumulate ? out.pointee + sum : sum
        }
        store(0, sums.0)
        store(1, sums.1)
        store(2, sums.2)
        store(3, sums.3)
        r0 += 4
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
