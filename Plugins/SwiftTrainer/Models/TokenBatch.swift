/// Token ids of several sequences padded to one length, with the attention mask and the
/// positions the model uses.
///
/// Rows are stored one after another (`ids[b * length + t]`). Positions count only real
/// tokens (`cumsum(mask) - 1`, 0 for padding), as transformers computes them for padded
/// batches, so left- and right-padded rows behave like unpadded ones.
public struct TokenBatch: Sendable, Hashable {
    /// Which side padding goes.
    public enum Padding: Sendable {
        /// Pad after the tokens (training).
        case right
        /// Pad before the tokens (generation, so every row ends at the last column).
        case left
    }

    /// The number of sequences.
    public let batch: Int
    /// The padded length.
    public let length: Int
    /// `batch * length` ids (padding positions hold `padID`).
    public let ids: [Int]
    /// `batch * length` flags: true for real tokens.
    public let mask: [Bool]
    /// `batch * length` positions.
    public let positions: [Int]

    /// Pads `rows` to the longest one.
    /// - Parameters:
    ///   - rows: the sequences (each at least one token).
    ///   - padding: the side padding goes.
    ///   - padID: the id stored at padded positions (never attended to).
    public init(rows: [[Int]], padding: Padding = .right, padID: Int = 0) {
        let length = rows.map(\.count).max() ?? 0
        var ids = [Int](repeating: padID, count: rows.count * length)
        var mask = [Bool](repeating: false, count: rows.count * length)
        for (b, row) in rows.enumerated() {
            let start = padding == .right ? 0 : length - row.count
            for (t, id) in row.enumerated() {
                ids[b * length + start + t] = id
                mask[b * length + start + t] = true
            }
        }
        self.init(ids: ids, mask: mask, batch: rows.count, length: length)
    }

    /// Makes a batch from flat ids and an optional mask (all real when nil).
    public init(ids: [Int], mask: [Bool]? = nil, batch: Int, length: Int) {
        precondition(ids.count == batch * length, "TokenBatch: \(ids.count) ids for \(batch) x \(length)")
        self.batch = batch
        self.length = length
        self.ids = ids
        let mask = mask ?? [Bool](repeating: true, count: ids.count)
        self.mask = mask
        var positions = [Int](repeating: 0, count: ids.count)
        for b in 0..<batch {
            var p = 0
            for t in 0..<length where mask[b * length + t] {
                positions[b * length + t] = p
                p += 1
            }
        }
        self.positions = positions
    }

    /// Whether any position is padding.
    public var isPadded: Bool { mask.contains(false) }
}
