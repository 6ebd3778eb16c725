/// Keys and values of token prefixes that prompts share (a system prompt, instructions,
/// few-shot demonstrations), kept between requests so a prompt that starts the same way
/// reuses them instead of recomputing them.
///
/// Prompts are cut into blocks of ``blockTokens`` tokens; the cache is a trie whose edges are
/// whole blocks (compared token by token, so no two prefixes share an entry by accident) and
/// whose nodes hold that block's keys and values for every layer. Memory is bounded by
/// ``byteLimit``: storing past it evicts the least recently used leaves first.
///
/// Entries live under a namespace (the model's identity, which names its adapter): rows
/// computed with one set of weights are never handed to another. The ``GenerationEngine``
/// does not use the cache for a model with a soft prompt (prompt tuning), whose virtual
/// tokens come before every prompt.
///
/// ```swift
/// let prefixes = PrefixCache(byteLimit: 64 << 20)
/// let engine = GenerationEngine(model: model, maxBatch: 8, prefixCache: prefixes, namespace: identity)
/// ```
public final class PrefixCache {
    /// Tokens per cached block.
    public let blockTokens: Int
    /// Most bytes of keys and values kept.
    public let byteLimit: Int
    /// Bytes of keys and values held now.
    public private(set) var bytes = 0
    /// Prompt tokens whose keys and values were reused, since the cache was made.
    public private(set) var reusedTokens = 0
    /// Blocks evicted to stay within ``byteLimit``, since the cache was made.
    public private(set) var evictions = 0

    private final class Node {
        let parent: Int?
        let namespace: String
        let block: [Int]
        var children: [[Int]: Int] = [:]
        var lastUse: UInt64
        /// `layers * blockTokens * rowWidth` floats, layer after layer.
        let keys: [Float]
        let values: [Float]

        init(parent: Int?, namespace: String, block: [Int], lastUse: UInt64, keys: [Float], values: [Float]) {
            self.parent = parent
            self.namespace = namespace
            self.block = block
            self.lastUse = lastUse
            self.keys = keys
            self.values = values
        }

        var bytes: Int { (keys.count + values.count) * MemoryLayout<Float>.size }
    }

    private var nodes: [Int: Node] = [:]
    /// Per namespace: the first blocks of prompts.
    private var roots: [String: [[Int]: Int]] = [:]
    private var clock: UInt64 = 0
    private var nextID = 0

    /// Makes an empty cache.
    /// - Parameters:
    ///   - byteLimit: most bytes of keys and values to keep (0 keeps nothing).
    ///   - blockTokens: tokens per block (at least 1).
    public init(byteLimit: Int, blockTokens: Int = 16) {
        self.byteLimit = max(0, byteLimit)
        self.blockTokens = max(1, blockTokens)
    }

    /// Blocks held now.
    public var blockCount: Int { nodes.count }

    /// The cached blocks that start `prompt`, at most `limit` tokens' worth, most recent use
    /// marked.
    private func match(_ prompt: [Int], namespace: String, limit: Int) -> [Int] {
        clock &+= 1
        var path: [Int] = []
        var children = roots[namespace] ?? [:]
        var start = 0
        while start + blockTokens <= min(limit, prompt.count) {
            guard let id = children[Array(prompt[start..<start + blockTokens])], let node = nodes[id] else { break }
            node.lastUse = clock
            path.append(id)
            children = node.children
            start += blockTokens
        }
        return path
    }

    /// Fills the empty sequence in `slot` with the longest cached prefix of `prompt` that
    /// leaves at least one token to compute.
    /// - Returns: the tokens restored.
    func restore(_ prompt: [Int], namespace: String, into cache: KVCache, slot: Int) -> Int {
        let path = match(prompt, namespace: namespace, limit: prompt.count - 1)
        for id in path {
            guard let node = nodes[id] else { break }
            node.keys.withUnsafeBufferPointer { k in
                node.values.withUnsafeBufferPointer { v in
                    if let k = k.baseAddress, let v = v.baseAddress {
                        cache.append(slot: slot, count: blockTokens, keys: k, values: v)
                    }
                }
            }
        }
        let restored = path.count * blockTokens
        reusedTokens += restored
        return restored
    }

    /// Keeps the whole blocks of `prompt` that the sequence in `slot` holds (its first
    /// `prompt.count` rows are the prompt's) and the cache lacks, evicting old ones to stay
    /// within ``byteLimit``.
    func store(_ prompt: [Int], namespace: String, from cache: KVCache, slot: Int) {
        let held = min(prompt.count, cache.length(of: slot))
        var path = match(prompt, namespace: namespace, limit: held)
        var start = path.count * blockTokens
        let floats = cache.layers * blockTokens * cache.rowWidth
        let size = 2 * floats * MemoryLayout<Float>.size
        guard size <= byteLimit else { return }
        while start + blockTokens <= held {
            while bytes + size > byteLimit {
                guard evictOne() else { return }
            }
            var keys = [Float](repeating: 0, count: floats)
            var values = [Float](repeating: 0, count: floats)
            keys.withUnsafeMutableBufferPointer { k in
                values.withUnsafeMutableBufferPointer { v in
                    if let k = k.baseAddress, let v = v.baseAddress {
                        cache.read(slot: slot, start: start, count: blockTokens, keys: k, values: v)
                    }
                }
            }
            let block = Array(prompt[start..<start + blockTokens])
            let id = nextID
            nextID += 1
            nodes[id] = Node(parent: path.last, namespace: namespace, block: block, lastUse: clock, keys: keys, values: values)
            if let parent = path.last, let p = nodes[parent] {
                p.children[block] = id
            } else {
                roots[namespace, default: [:]][block] = id
            }
            bytes += size
            path.append(id)
            start += blockTokens
        }
    }

    /// Drops the least recently used block that no other block extends and that the current
    /// lookup did not touch.
    /// - Returns: false when nothing can be dropped.
    private func evictOne() -> Bool {
        var victim: (id: Int, use: UInt64)?
        for (id, node) in nodes where node.children.isEmpty && node.lastUse != clock {
            if victim.map({ node.lastUse < $0.use || (node.lastUse == $0.use && id < $0.id) }) ?? true {
                victim = (id, node.lastUse)
            }
        }
        guard let victim, let node = nodes[victim.id] else { return false }
        nodes[victim.id] = nil
        if let parent = node.parent {
            nodes[parent]?.children[node.block] = nil
        } else {
            roots[node.namespace]?[node.block] = nil
        }
        bytes -= node.bytes
        evictions += 1
        return true
    }

    /// Drops every block.
    public func removeAll() {
        nodes = [:]
        roots = [:]
        bytes = 0
    }
}
