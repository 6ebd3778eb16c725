extension Tape {
    /// Looks up rows of an embedding table.
    /// - Parameters:
    ///   - ids: token ids, each in `0..<weight.shape[0]`.
    ///   - weight: `[vocab, d]`.
    /// - Returns: `[ids.count, d]`.
    public func embedding(_ ids: [Int], weight: Tensor) -> Tensor {
        let d = weight.columns
        let vocab = weight.rows
        let y = Tensor(uninitializedShape: [ids.count, d])
        for (i, id) in ids.enumerated() {
            precondition(id >= 0 && id < vocab, "embedding: id \(id) outside vocabulary 0..<\(vocab)")
            (y.data + i * d).update(from: weight.data + id * d, count: d)
        }
        guard needsGrad(weight) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            let dw = weight.ensureGrad()
            for (i, id) in ids.enumerated() {
                let src = dy + i * d, dst = dw + id * d
                for c in 0..<d { dst[c] += src[c] }
            }
        }
        return y
    }
}
