extension Tape {
    /// Elementwise sum of two tensors of the same shape.
    /// - Returns: a tensor with `a`'s shape.
    public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.count == b.count, "add: shapes \(a.shape) and \(b.shape) differ")
        let y = Tensor(uninitializedShape: a.shape)
        let n = a.count
        Threading.parallelChunks(n, minChunk: 1 << 15) { s, e in
            for i in s..<e { y.data[i] = a.data[i] + b.data[i] }
        }
        guard needsGrad(a, b) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            // The first input without a gradient yet takes over dy's buffer; the other copies
            // or accumulates it.
            var owner: Tensor? = y
            for t in [a, b] where t.requiresGrad {
                if t.addGrad(dy, takingBufferOf: owner) { owner = nil }
            }
        }
        return y
    }

    /// Adds `b` into `a` in place when neither needs a gradient (inference); otherwise
    /// behaves as ``add(_:_:)``.
    /// - Returns: `a` (updated) or a new tensor.
    public func addInPlaceIfPossible(_ a: Tensor, _ b: Tensor) -> Tensor {
        if needsGrad(a, b) { return add(a, b) }
        precondition(a.count == b.count, "add: shapes \(a.shape) and \(b.shape) differ")
        let n = a.count
        Threading.parallelChunks(n, minChunk: 1 << 15) { s, e in
            for i in s..<e { a.data[i] += b.data[i] }
        }
        return a
    }

    /// Elementwise product of two tensors of the same shape.
    public func mul(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.count == b.count, "mul: shapes \(a.shape) and \(b.shape) differ")
        let y = Tensor(uninitializedShape: a.shape)
        let n = a.count
        for i in 0..<n { y.data[i] = a.data[i] * b.data[i] }
        guard needsGrad(a, b) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            if a.requiresGrad {
                let da = a.ensureGrad()
                for i in 0..<n { da[i] += dy[i] * b.data[i] }
            }
            if b.requiresGrad {
                let db = b.ensureGrad()
                for i in 0..<n { db[i] += dy[i] * a.data[i] }
            }
        }
        return y
    }

    /// Multiplies every element by a constant.
    public func scale(_ x: Tensor, _ factor: Float) -> Tensor {
        let y = Tensor(uninitializedShape: x.shape)
        let n = x.count
        for i in 0..<n { y.data[i] = x.data[i] * factor }
        guard needsGrad(x) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            let dx = x.ensureGrad()
            for i in 0..<n { dx[i] += dy[i] * factor }
        }
        return y
    }

    /// `Σ x[i] * weights[i]`: a scalar that weighs every element (for gradient checks and
    /// custom objectives).
    /// - Returns: a one-element tensor.
    public func weightedSum(_ x: Tensor, weights: [Float]) -> Tensor {
        precondition(weights.count == x.count, "weightedSum: \(weights.count) weights for \(x.count) elements")
        let y = Tensor(uninitializedShape: [1])
        var s: Double = 0
        for i in 0..<x.count { s += Double(x.data[i]) * Double(weights[i]) }
        y.data[0] = Float(s)
        guard needsGrad(x) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            let dx = x.ensureGrad()
            let g = dy[0]
            for i in 0..<x.count { dx[i] += g * weights[i] }
        }
        return y
    }

    /// Selects rows of a matrix: `y[i] = x[rows[i]]`.
    /// - Parameters:
    ///   - x: `[n, d]`.
    ///   - rows: indices into the first dimension.
    /// - Returns: `[rows.count, d]`.
    public func gatherRows(_ x: Tensor, _ rows: [Int]) -> Tensor {
        let d = x.columns
        let n = x.rows
        let y = Tensor(uninitializedShape: [rows.count, d])
        for (i, r) in rows.enumerated() {
            precondition(r >= 0 && r < n, "gatherRows: row \(r) out of range 0..<\(n)")
            (y.data + i * d).update(from: x.data + r * d, count: d)
        }
        guard needsGrad(x) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            let dx = x.ensureGrad()
            for (i, r) in rows.enumerated() {
                let src = dy + i * d
                let dst = dx + r * d
                for c in 0..<d { dst[c] += src[c] }
            }
        }
        return y
    }

    /// Puts the same `prefix` rows before each of `groups` equal groups of rows of `x` (soft
    /// prompts: trainable embeddings before every sequence of a batch).
    /// - Parameters:
    ///   - prefix: `[p, d]`.
    ///   - x: `[groups * n, d]`: `groups` sequences of `n` rows each.
    ///   - groups: the number of sequences in `x`.
    /// - Returns: `[groups * (p + n), d]`: group `g` is `prefix` then `x`'s rows `g*n..<(g+1)*n`.
    ///   The prefix's gradient is the sum over groups.
    public func prependRows(_ prefix: Tensor, to x: Tensor, groups: Int) -> Tensor {
        let d = x.columns
        precondition(prefix.columns == d, "prependRows: prefix has \(prefix.columns) columns, x has \(d)")
        precondition(groups >= 1 && x.rows % groups == 0, "prependRows: \(x.rows) rows do not split into \(groups) groups")
        let p = prefix.rows
        let n = x.rows / groups
        let y = Tensor(uninitializedShape: [groups * (p + n), d])
        for g in 0..<groups {
            let base = y.data + g * (p + n) * d
            base.update(from: prefix.data, count: p * d)
            (base + p * d).update(from: x.data + g * n * d, count: n * d)
        }
        guard needsGrad(prefix, x) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            if prefix.requiresGrad {
                let dp = prefix.ensureGrad()
                for g in 0..<groups {
                    let src = dy + g * (p + n) * d
                    for i in 0..<(p * d) { dp[i] += src[i] }
                }
            }
            if x.requiresGrad {
                let dx = x.ensureGrad()
                for g in 0..<groups {
                    let src = dy + (g * (p + n) + p) * d
                    let dst = dx + g * n * d
                    for i in 0..<(n * d) { dst[i] += src[i] }
                }
            }
        }
        return y
    }

    /// Takes columns `start..<start+width` of a matrix (e.g. the q, k or v part of a fused
    /// projection).
    /// - Returns: `[rows, width]`.
    public func sliceColumns(_ x: Tensor, start: Int, width: Int) -> Tensor {
        let d = x.columns
        let n = x.rows
        precondition(start >= 0 && start + width <= d, "sliceColumns: \(start)..<\(start + width) outside \(d) columns")
        let y = Tensor(uninitializedShape: [n, width])
        for r in 0..<n { (y.data + r * width).update(from: x.data + r * d + start, count: width) }
        guard needsGrad(x) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            let dx = x.ensureGrad()
            for r in 0..<n {
                let src = dy + r * width
                let dst = dx + r * d + start
                for c in 0..<width { dst[c] += src[c] }
            }
        }
        return y
    }
}
