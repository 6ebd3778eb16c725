import TallyRandom

/// Tally's seeded random number generator and its shuffle (``SeededRandom/shuffle(_:)``,
/// ``SeededRandom/subset(_:of:)``): TallyRandom's `SplitMix64`, the package's one seeded
/// generator, under the name TallyCore has always given it. Every seeded subset,
/// demonstration choice, data split, bootstrap interval and the trainer's data order draw
/// from it, so the same seed gives the same rows on every platform and Swift version.
///
/// ```swift
/// var rng = SeededRandom.derived(seed: 42, label: "test")
/// let order = rng.shuffled(Array(0..<10))
/// ```
public typealias SeededRandom = SplitMix64
