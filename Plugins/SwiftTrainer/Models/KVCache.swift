import TallyTensor

/// Keys and values of earlier tokens, per layer, for incremental decoding.
///
/// Each layer holds `[batch * capacity, kvHeads * headDim]` keys and values (after RoPE);
/// sequence `b`'s token `j` is row `b * capacity + j`. All sequences advance together;
/// padding tokens are kept but masked out.
public final class KVCache {
    /// Sequences.
    public let batch: Int
    /// The most tokens per sequence the cache holds.
    public let capacity: Int
    /// Floats per cached row.
    public let rowWidth: Int
    /// Tokens cached per sequence so far.
    public internal(set) var length: Int = 0
    /// Per layer: keys.
    let keys: [Tensor]
    /// Per layer: values.
    let values: [Tensor]
    /// `batch * capacity` flags: true for real (not padding) tokens.
    var mask: [Bool]
    /// Real tokens seen per sequence (the next position to use).
    var nextPosition: [Int]

    /// Allocates an empty cache.
    /// - Parameters:
    ///   - config: the model's shape.
    ///   - batch: sequences decoded together.
    ///   - capacity: prompt plus generated tokens per sequence.
    public init(config: TransformerConfig, batch: Int, capacity: Int) {
        self.batch = batch
        self.capacity = capacity
        rowWidth = config.numKVHeads * config.headDim
        keys = (0..<config.numLayers).map { _ in Tensor(zeros: [batch * capacity, config.numKVHeads * config.headDim]) }
        values = (0..<config.numLayers).map { _ in Tensor(zeros: [batch * capacity, config.numKVHeads * config.headDim]) }
        mask = [Bool](repeating: false, count: batch * capacity)
        nextPosition = [Int](repeating: 0, count: batch)
    }

    /// Room left per sequence.
    public var remaining: Int { capacity - length }

    /// Drops everything cached (the buffers are kept).
    public func reset() {
        length = 0
        for i in mask.indices { mask[i] = false }
        for i in nextPosition.indices { nextPosition[i] = 0 }
    }

    /// Appends the mask of `count` new tokens per sequence and returns their positions.
    func admit(mask newMask: [Bool], count: Int) -> [Int] {
        var positions = [Int](repeating: 0, count: batch * count)
        for b in 0..<batch {
            for t in 0..<count {
                let real = newMask[b * count + t]
                mask[b * capacity + length + t] = real
                positions[b * count + t] = nextPosition[b]
                if real { nextPosition[b] += 1 }
            }
        }
        return positions
    }

    /// Copies one layer's new keys and values (`[batch * count, rowWidth]`) into the cache.
    func store(layer: Int, keys k: Tensor, values v: Tensor, count: Int) {
        for b in 0..<batch {
            let dst = (b * capacity + length) * rowWidth
            let src = b * count * rowWidth
            (keys[layer].data + dst).update(from: k.data + src, count: count * rowWidth)
            (values[layer].data + dst).update(from: v.data + src, count: count * rowWidth)
        }
    }

    /// Attention of `q` (`[batch * count, heads * headDim]`) over the cache, including the
    /// `count` tokens just stored.
    func attend(layer: Int, q: Tensor, count: Int, heads: Int, headDim: Int) -> Tensor {
        let kvHeads = rowWidth / headDim
        let layout = AttentionLayout(
            batch: batch, queryLength: count, keyLength: length + count, heads: heads, kvHeads: kvHeads,
            headDim: headDim, keyBatchStride: capacity * rowWidth)
        let out = Tensor(zeros: [batch * count, heads * headDim])
        AttentionKernel.forward(
            layout: layout, q: q.data, k: keys[layer].data, v: values[layer].data, out: out.data,
            keyMask: mask, probabilities: nil)
        return out
    }
}
