import TallyTensor

/// Keys and values of earlier tokens, per sequence and layer, for incremental decoding.
///
/// The cache has numbered slots; each open slot holds one sequence with its own length and
/// capacity (`[capacity, kvHeads * headDim]` keys and values per layer, after RoPE), so
/// sequences of different lengths decode together and join or leave between passes
/// (continuous batching). A forward pass reads the rows of ``active`` slots: row `r` of its
/// ``TokenBatch`` continues slot `active[r]`, at that slot's own positions. Passes with a
/// cache take unpadded batches (every row `length` real tokens).
///
/// ```swift
/// let cache = KVCache(config: model.config, batch: 2, capacity: 64)   // slots 0 and 1, both active
/// _ = model.nextTokenLogits(TokenBatch(rows: [a, b]), cache: cache)   // a and b of equal length
/// ```
public final class KVCache {
    /// One cached sequence.
    final class Sequence {
        /// Per layer: `[capacity, rowWidth]` keys.
        let keys: [Tensor]
        /// Per layer: `[capacity, rowWidth]` values.
        let values: [Tensor]
        let capacity: Int
        /// Tokens cached so far (the next position to use).
        var length = 0

        init(layers: Int, capacity: Int, rowWidth: Int) {
            self.capacity = capacity
            keys = (0..<layers).map { _ in Tensor(zeros: [capacity, rowWidth]) }
            values = (0..<layers).map { _ in Tensor(zeros: [capacity, rowWidth]) }
        }
    }

    /// Layers of the model.
    public let layers: Int
    /// Floats per cached row.
    public let rowWidth: Int
    /// Open sequences by slot (nil: free).
    private(set) var slots: [Sequence?]
    /// The slots the rows of the next pass continue, in row order.
    public var active: [Int]

    /// Allocates `batch` empty sequences of `capacity` tokens each, all active.
    /// - Parameters:
    ///   - config: the model's shape.
    ///   - batch: sequences decoded together.
    ///   - capacity: prompt plus generated tokens per sequence.
    public convenience init(config: TransformerConfig, batch: Int, capacity: Int) {
        self.init(config: config, slots: batch)
        for s in 0..<batch { open(slot: s, capacity: capacity) }
        active = Array(0..<batch)
    }

    /// Makes a cache of `slots` free slots and no active ones.
    public init(config: TransformerConfig, slots: Int) {
        layers = config.numLayers
        rowWidth = config.numKVHeads * config.headDim
        self.slots = [Sequence?](repeating: nil, count: max(0, slots))
        active = []
    }

    /// Slots in the cache.
    public var batch: Int { slots.count }

    /// Starts an empty sequence of up to `capacity` tokens in `slot` (replacing what it held).
    public func open(slot: Int, capacity: Int) {
        slots[slot] = Sequence(layers: layers, capacity: max(1, capacity), rowWidth: rowWidth)
    }

    /// Frees `slot` and its memory.
    public func close(slot: Int) {
        slots[slot] = nil
        active.removeAll { $0 == slot }
    }

    /// The first free slot, if any.
    public var freeSlot: Int? { slots.firstIndex { $0 == nil } }

    /// Tokens cached in `slot` (0 when it is free).
    public func length(of slot: Int) -> Int { slots[slot]?.length ?? 0 }

    /// The longest of the active sequences (0 when none is active).
    public var length: Int { active.map { slots[$0]?.length ?? 0 }.max() ?? 0 }

    /// Room left in the fullest active sequence.
    public var remaining: Int { active.map { slot in slots[slot].map { $0.capacity - $0.length } ?? 0 }.min() ?? 0 }

    /// Drops everything cached in every slot (the buffers are kept).
    public func reset() {
        for s in slots { s?.length = 0 }
    }

    /// The open sequence in `slot`.
    func sequence(_ slot: Int) -> Sequence {
        guard let s = slots[slot] else { preconditionFailure("KV cache slot \(slot) is not open") }
        return s
    }

    /// Checks a pass of `count` tokens per active row and returns their positions.
    func admit(mask newMask: [Bool], count: Int) -> [Int] {
        precondition(!newMask.contains(false), "a pass with a KV cache takes unpadded rows")
        precondition(newMask.count == active.count * count, "KV cache: \(newMask.count) tokens for \(active.count) active sequences x \(count)")
        var positions = [Int](repeating: 0, count: newMask.count)
        for (r, slot) in active.enumerated() {
            let s = sequence(slot)
            precondition(s.capacity - s.length >= count, "KV cache slot \(slot) too small for \(count) more tokens")
            for t in 0..<count { positions[r * count + t] = s.length + t }
        }
        return positions
    }

    /// Copies one layer's new keys and values (`[active * count, rowWidth]`) into the cache.
    func store(layer: Int, keys k: Tensor, values v: Tensor, count: Int) {
        for (r, slot) in active.enumerated() {
            let s = sequence(slot)
            let dst = s.length * rowWidth
            let src = r * count * rowWidth
            (s.keys[layer].data + dst).update(from: k.data + src, count: count * rowWidth)
            (s.values[layer].data + dst).update(from: v.data + src, count: count * rowWidth)
        }
    }

    /// Attention of `q` (`[active * count, heads * headDim]`) over each row's own sequence,
    /// including the `count` tokens just stored: parallel over sequences when several are
    /// active, over key/value heads for one.
    func attend(layer: Int, q: Tensor, count: Int, heads: Int, headDim: Int) -> Tensor {
        let kvHeads = rowWidth / headDim
        let out = Tensor(zeros: [active.count * count, heads * headDim])
        let rows = active.map { sequence($0) }
        let qStride = count * heads * headDim
        func one(_ r: Int) {
            let s = rows[r]
            let layout = AttentionLayout(
                batch: 1, queryLength: count, keyLength: s.length + count, heads: heads, kvHeads: kvHeads,
                headDim: headDim, keyBatchStride: s.capacity * rowWidth)
            AttentionKernel.forward(
                layout: layout, q: q.data + r * qStride, k: s.keys[layer].data, v: s.values[layer].data,
                out: out.data + r * qStride, keyMask: nil, probabilities: nil)
        }
        if rows.count == 1 { one(0) } else { Threading.parallelTasks(rows.count, one) }
        return out
    }

    /// Marks the `count` tokens of the pass as cached in every active sequence.
    func advance(by count: Int) {
        for slot in active { sequence(slot).length += count }
    }

    /// Copies `count` rows of every layer of `slot`, starting at row `start`, into `keys` and
    /// `values` (`layers * count * rowWidth` floats each, layer after layer).
    func read(slot: Int, start: Int, count: Int, keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>) {
        let s = sequence(slot)
        let n = count * rowWidth
        for l in 0..<layers {
            (keys + l * n).update(from: s.keys[l].data + start * rowWidth, count: n)
            (values + l * n).update(from: s.values[l].data + start * rowWidth, count: n)
        }
    }

    /// Appends `count` rows per layer (as ``read(slot:start:count:keys:values:)`` lays them
    /// out) to the sequence in `slot`.
    func append(slot: Int, count: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>) {
        let s = sequence(slot)
        precondition(s.capacity - s.length >= count, "KV cache slot \(slot) too small for \(count) more tokens")
        let n = count * rowWidth
        for l in 0..<layers {
            (s.keys[l].data + s.length * rowWidth).update(from: keys + l * n, count: n)
            (s.values[l].data + s.length * rowWidth).update(from: values + l * n, count: n)
        }
        s.length += count
    }
}
