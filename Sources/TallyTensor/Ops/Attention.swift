import Foundation

/// Where the queries, keys and values of a causal attention live in memory.
///
/// Rows are tokens; a row holds all heads side by side (`[.., heads * headDim]`), as the
/// q/k/v projections produce them, so every per-head product is a strided BLAS call with no
/// transposes or copies. Keys may live in a longer buffer (a KV cache): batch `b`'s key row
/// `j` starts at `b * keyBatchStride + j * keyRowStride`.
public struct AttentionLayout: Sendable {
    /// Sequences in the batch.
    public var batch: Int
    /// Query rows per sequence.
    public var queryLength: Int
    /// Key rows per sequence that are attended to (`past + queryLength`).
    public var keyLength: Int
    /// Query heads.
    public var heads: Int
    /// Key/value heads (grouped-query attention: `heads` is a multiple of it).
    public var kvHeads: Int
    /// Width of one head.
    public var headDim: Int
    /// Floats between consecutive sequences' first key rows.
    public var keyBatchStride: Int

    /// Makes a layout.
    public init(batch: Int, queryLength: Int, keyLength: Int, heads: Int, kvHeads: Int, headDim: Int, keyBatchStride: Int? = nil) {
        self.batch = batch
        self.queryLength = queryLength
        self.keyLength = keyLength
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.keyBatchStride = keyBatchStride ?? keyLength * kvHeads * headDim
    }

    /// Keys before the first query (`keyLength - queryLength`).
    public var past: Int { keyLength - queryLength }
    /// Floats per query (and output) row.
    public var queryRowStride: Int { heads * headDim }
    /// Floats per key (and value) row.
    public var keyRowStride: Int { kvHeads * headDim }
}

/// Causal scaled-dot-product attention kernels (forward, backward) on BLAS.
public enum AttentionKernel {
    /// Query rows per block; a block only multiplies against the keys it can see.
    static let blockRows = 64

    /// Computes `out = softmax(q kᵀ / √d + mask) v` per head.
    ///
    /// Query `i` of a sequence sees keys `j <= past + i` whose `keyMask[b * keyLength + j]`
    /// is true (all when `keyMask` is nil); `keyMask` holds `keyBatchStride / keyRowStride`
    /// flags per sequence (one per key row of the buffer). A query that sees no key gets zeros.
    /// - Parameters:
    ///   - probabilities: if given, `[batch, heads, queryLength, keyLength]` floats that
    ///     receive the attention weights (for the backward pass).
    public static func forward(
        layout L: AttentionLayout, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, keyMask: [Bool]?, probabilities: UnsafeMutablePointer<Float>?
    ) {
        let tq = L.queryLength, tk = L.keyLength, hd = L.headDim
        let group = L.heads / L.kvHeads
        let qs = L.queryRowStride, ks = L.keyRowStride
        let scale = 1 / Float(hd).squareRoot()
        // A decode step over a short context is a few microseconds of work per head, less
        // than handing it to another thread costs: then the heads run on the calling thread.
        let work = L.batch * L.heads * tq * tk * hd
        let tasks = L.batch * L.kvHeads
        let serial = probabilities == nil && work < 1 << 18
        let run: (Int) -> Void = { task in
            let b = task / L.kvHeads, g = task % L.kvHeads
            let scratch = probabilities == nil ? ScratchBox(count: min(tq, blockRows) * tk) : nil
            let kg = k + b * L.keyBatchStride + g * hd
            let vg = v + b * L.keyBatchStride + g * hd
            for h in g * group..<(g + 1) * group {
                let qh = q + b * tq * qs + h * hd
                let oh = out + b * tq * qs + h * hd
                var i0 = 0
                while i0 < tq {
                    let i1 = min(tq, i0 + blockRows)
                    let kmax = min(tk, L.past + i1)
                    let p: UnsafeMutablePointer<Float>
                    if let probabilities {
                        p = probabilities + ((b * L.heads + h) * tq + i0) * tk
                    } else {
                        p = scratch!.pointer
                    }
                    if i1 - i0 == 1 {
                        // One query row (a decode step): dot products and a weighted sum of
                        // value rows, without the packing a one-row BLAS product pays for.
                        let qi = qh + i0 * qs
                        for j in 0..<kmax { p[j] = scale * FastMath.dot(qi, kg + j * ks, hd) }
                        softmaxRow(p, visible: min(tk, L.past + i0 + 1), total: tk, mask: keyMask, maskOffset: b * (L.keyBatchStride / ks))
                        weightedRowSum(p, rows: vg, stride: ks, count: kmax, width: hd, into: oh + i0 * qs)
                        i0 = i1
                        continue
                    }
                    BLAS.gemm(
                        transA: false, transB: true, m: i1 - i0, n: kmax, k: hd, alpha: scale,
                        a: qh + i0 * qs, lda: qs, b: kg, ldb: ks, c: p, ldc: tk, serial: true)
                    for i in i0..<i1 {
                        let row = p + (i - i0) * tk
                        let visible = min(tk, L.past + i + 1)
                        softmaxRow(row, visible: visible, total: tk, mask: keyMask, maskOffset: b * (L.keyBatchStride / ks))
                    }
                    BLAS.gemm(
                        transA: false, transB: false, m: i1 - i0, n: hd, k: kmax,
                        a: p, lda: tk, b: vg, ldb: ks, c: oh + i0 * qs, ldc: qs, serial: true)
                    i0 = i1
                }
            }
        }
        if serial {
            for task in 0..<tasks { run(task) }
        } else {
            Threading.parallelTasks(tasks, run)
        }
    }

    /// `out = Σ_j weights[j] · rows[j]` over `count` rows of `width` floats, `stride` apart.
    @inline(__always)
    static func weightedRowSum(
        _ weights: UnsafePointer<Float>, rows: UnsafePointer<Float>, stride: Int, count: Int, width: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        typealias V8 = SIMD8<Float>
        out.update(repeating: 0, count: width)
        let vectorEnd = width - width % 8
        for j in 0..<count {
            let w = weights[j], row = rows + j * stride
            var c = 0
            while c < vectorEnd {
                let acc = UnsafeRawPointer(out + c).loadUnaligned(as: V8.self)
                let v = UnsafeRawPointer(row + c).loadUnaligned(as: V8.self)
                UnsafeMutableRawPointer(out + c).storeBytes(of: acc + w * v, as: V8.self)
                c += 8
            }
            while c < width {
                out[c] += w * row[c]
                c += 1
            }
        }
    }

    /// In-place masked softmax of one score row: entries `>= visible` or masked out become 0.
    @inline(__always)
    static func softmaxRow(_ row: UnsafeMutablePointer<Float>, visible: Int, total: Int, mask: [Bool]?, maskOffset: Int) {
        if let mask {
            var any = false
            for j in 0..<visible {
                if mask[maskOffset + j] { any = true } else { row[j] = -.infinity }
            }
            if !any {
                row.update(repeating: 0, count: total)
                return
            }
        }
        let m = FastMath.max(row, visible)
        let s = FastMath.expShiftedSum(row, visible, shift: m)
        let inv = 1 / s
        for j in 0..<visible { row[j] *= inv }
        if let mask {
            for j in 0..<visible where !mask[maskOffset + j] { row[j] = 0 }
        }
        if visible < total { (row + visible).update(repeating: 0, count: total - visible) }
    }

    /// Accumulates the gradients of q, k and v given the output's gradient and the
    /// probabilities saved by ``forward(layout:q:k:v:out:keyMask:probabilities:)``.
    /// Any of `dq`, `dk`, `dv` may be nil (not needed).
    public static func backward(
        layout L: AttentionLayout, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        probabilities: UnsafePointer<Float>, dOut: UnsafePointer<Float>,
        dq: UnsafeMutablePointer<Float>?, dk: UnsafeMutablePointer<Float>?, dv: UnsafeMutablePointer<Float>?
    ) {
        let tq = L.queryLength, tk = L.keyLength, hd = L.headDim
        let group = L.heads / L.kvHeads
        let qs = L.queryRowStride, ks = L.keyRowStride
        let scale = 1 / Float(hd).squareRoot()
        Threading.parallelTasks(L.batch * L.kvHeads) { task in
            let b = task / L.kvHeads, g = task % L.kvHeads
            let dp = ScratchBox(count: min(tq, blockRows) * tk)
            let kg = k + b * L.keyBatchStride + g * hd
            let vg = v + b * L.keyBatchStride + g * hd
            for h in g * group..<(g + 1) * group {
                let qh = q + b * tq * qs + h * hd
                let doh = dOut + b * tq * qs + h * hd
                var i0 = 0
                while i0 < tq {
                    let i1 = min(tq, i0 + blockRows)
                    let rows = i1 - i0
                    let kmax = min(tk, L.past + i1)
                    let p = probabilities + ((b * L.heads + h) * tq + i0) * tk
                    if let dv {
                        BLAS.gemm(
                            transA: true, transB: false, m: kmax, n: hd, k: rows,
                            a: p, lda: tk, b: doh + i0 * qs, ldb: qs, beta: 1,
                            c: dv + b * L.keyBatchStride + g * hd, ldc: ks, serial: true)
                    }
                    if dq != nil || dk != nil {
                        let ds = dp.pointer
                        BLAS.gemm(
                            transA: false, transB: true, m: rows, n: kmax, k: hd,
                            a: doh + i0 * qs, lda: qs, b: vg, ldb: ks, c: ds, ldc: tk, serial: true)
                        for r in 0..<rows {
                            let pr = p + r * tk, dr = ds + r * tk
                            let dot = FastMath.dot(pr, dr, kmax)
                            for j in 0..<kmax { dr[j] = pr[j] * (dr[j] - dot) * scale }
                        }
                        if let dq {
                            BLAS.gemm(
                                transA: false, transB: false, m: rows, n: hd, k: kmax,
                                a: ds, lda: tk, b: kg, ldb: ks, beta: 1,
                                c: dq + b * tq * qs + h * hd + i0 * qs, ldc: qs, serial: true)
                        }
                        if let dk {
                            BLAS.gemm(
                                transA: true, transB: false, m: kmax, n: hd, k: rows,
                                a: ds, lda: tk, b: qh + i0 * qs, ldb: qs, beta: 1,
                                c: dk + b * L.keyBatchStride + g * hd, ldc: ks, serial: true)
                        }
                    }
                    i0 = i1
                }
            }
        }
    }
}

extension Tape {
    /// Causal multi-head attention with grouped key/value heads over `batch` sequences of
    /// `seq` tokens each (rows `b * seq + t`), as `LlamaAttention`/`GPT2Attention` compute it
    /// after their projections (scale `1/√headDim`).
    /// - Parameters:
    ///   - q: `[batch * seq, heads * headDim]`.
    ///   - k: `[batch * seq, kvHeads * headDim]`.
    ///   - v: `[batch * seq, kvHeads * headDim]`.
    ///   - keyMask: optional `batch * seq` flags; false marks padding that no query sees.
    /// - Returns: `[batch * seq, heads * headDim]`.
    public func causalAttention(
        q: Tensor, k: Tensor, v: Tensor, batch: Int, seq: Int, heads: Int, kvHeads: Int, headDim: Int,
        keyMask: [Bool]? = nil
    ) -> Tensor {
        precondition(heads % max(kvHeads, 1) == 0, "attention: \(heads) heads not a multiple of \(kvHeads) KV heads")
        precondition(q.count == batch * seq * heads * headDim, "attention: q has shape \(q.shape)")
        precondition(k.count == batch * seq * kvHeads * headDim && v.count == k.count, "attention: k/v have shape \(k.shape)/\(v.shape)")
        if let keyMask { precondition(keyMask.count == batch * seq, "attention: key mask has \(keyMask.count) flags for \(batch * seq) tokens") }
        let layout = AttentionLayout(batch: batch, queryLength: seq, keyLength: seq, heads: heads, kvHeads: kvHeads, headDim: headDim)
        let out = Tensor(uninitializedShape: [batch * seq, heads * headDim])
        let grad = needsGrad(q, k, v)
        let probs = grad ? ScratchBox(count: batch * heads * seq * seq) : nil
        AttentionKernel.forward(
            layout: layout, q: q.data, k: k.data, v: v.data, out: out.data, keyMask: keyMask,
            probabilities: probs?.pointer)
        guard grad, let probs else { return out }
        record(out) {
            guard let dOut = out.grad else { return }
            AttentionKernel.backward(
                layout: layout, q: q.data, k: k.data, v: v.data, probabilities: probs.pointer, dOut: dOut,
                dq: q.requiresGrad ? q.ensureGrad() : nil,
                dk: k.requiresGrad ? k.ensureGrad() : nil,
                dv: v.requiresGrad ? v.ensureGrad() : nil)
        }
        return out
    }
}
