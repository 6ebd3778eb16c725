/// A small, fast, seedable random number generator (xoshiro256**; Blackman and Vigna, 2018)
/// for weight initialisation, dropout-free sampling and benchmarks. Its 256-bit state is the
/// first four outputs of ``SplitMix64`` seeded with `seed`, so the package has one SplitMix64
/// step. TallyTensor names it `SeededGenerator`.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    @usableFromInline var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// Makes a generator whose sequence depends only on `seed`.
    @inlinable public init(seed: UInt64) {
        var seeder = SplitMix64(seed: seed)
        s0 = seeder.next(); s1 = seeder.next(); s2 = seeder.next(); s3 = seeder.next()
    }

    @inlinable public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }
}
