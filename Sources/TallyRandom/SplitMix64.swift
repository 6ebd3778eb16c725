/// Tally's seeded random number generator (SplitMix64; Steele, Lea and Flood, 2014) and its
/// shuffle: the one implementation of both in the package. The same seed gives the same
/// sequence on every platform and every Swift version, so subsets, demonstration choices, data
/// splits, bootstrap intervals and the trainer's data order are reproducible.
///
/// TallyCore names it ``SeededRandom`` (and `Statistics.SplitMix64`); TallyTensor's
/// ``Xoshiro256StarStar`` (`SeededGenerator` there) takes its state from it.
///
/// Seeded orders use ``shuffle(_:)``, Tally's own Fisher-Yates, never the standard library's
/// `shuffled(using:)`, whose algorithm may change between Swift versions and would silently
/// change which rows a recipe evaluates (and so its cache keys).
///
/// ```swift
/// var rng = SplitMix64.derived(seed: 42, label: "test")
/// let order = rng.shuffled(Array(0..<10))
/// ```
public struct SplitMix64: RandomNumberGenerator, Sendable {
    @usableFromInline var state: UInt64

    /// - Parameter seed: any value; equal seeds give equal sequences.
    @inlinable public init(seed: UInt64) { state = seed }

    @inlinable public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A generator whose seed mixes `seed` with a label (FNV-1a of its UTF-8 bytes), so
    /// different uses of one run seed (subsampling, per-example shuffles, epochs) draw
    /// independent sequences.
    public static func derived(seed: UInt64, label: String) -> SplitMix64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in label.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return SplitMix64(seed: seed ^ hash)
    }

    /// A uniform index in `0..<bound` (bound > 0), without modulo bias (for resampling).
    @inlinable public mutating func index(below bound: Int) -> Int {
        Int(next(upperBound: UInt64(bound)))
    }

    /// Shuffles `items` in place: Fisher-Yates from the last position down, each position
    /// swapped with one drawn as the high word of `next() × (position + 1)`.
    /// - Parameter items: the array to shuffle.
    public mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for position in stride(from: items.count - 1, to: 0, by: -1) {
            let other = Int(next().multipliedFullWidth(by: UInt64(position + 1)).high)
            items.swapAt(position, other)
        }
    }

    /// `items` in a seeded order (``shuffle(_:)`` on a copy).
    /// - Parameter items: the elements to order.
    public mutating func shuffled<T>(_ items: [T]) -> [T] {
        var copy = items
        shuffle(&copy)
        return copy
    }

    /// The indices of at most `count` of `total` items, chosen by a seeded shuffle, in
    /// ascending order: how Tally draws every seeded subset.
    /// - Parameters:
    ///   - count: how many to keep (all when `total` or fewer).
    ///   - total: how many items there are.
    public mutating func subset(_ count: Int, of total: Int) -> [Int] {
        shuffled(Array(0..<max(0, total))).prefix(max(0, count)).sorted()
    }
}
