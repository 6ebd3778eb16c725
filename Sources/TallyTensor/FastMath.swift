/// Vectorised elementwise math on 8 floats at a time (exp, sigmoid, tanh) for the hot loops
/// of activations, softmax and cross-entropy.
///
/// `exp` uses the Cephes single-precision polynomial on a range reduced by ln 2 (relative
/// error about 2e-7, like `expf`); inputs are clamped to [-87.3, 88.3], so very negative
/// inputs give about 1e-38 instead of 0.
public enum FastMath {
    public typealias V = SIMD8<Float>

    /// `e^x` per lane.
    @inlinable @inline(__always)
    public static func exp(_ x: V) -> V {
        var x = x
        x.replace(with: V(repeating: -87.3), where: .!(x .>= V(repeating: -87.3)))
        x.replace(with: V(repeating: 88.3), where: x .> V(repeating: 88.3))
        // n = round(x / ln 2) via the 1.5 * 2^23 trick; the low mantissa bits hold n.
        let magic = V(repeating: 12_582_912)
        let t = x * V(repeating: 1.442_695_040_888_963_4) + magic
        let n = unsafeBitCast(t, to: SIMD8<UInt32>.self) &- unsafeBitCast(magic, to: SIMD8<UInt32>.self)
        let fx = t - magic
        var r = x - fx * V(repeating: 0.693_359_375)
        r = r + fx * V(repeating: 2.121_944_4e-4)
        var p = V(repeating: 1.987_569_150_0e-4)
        p = p * r + V(repeating: 1.398_199_950_7e-3)
        p = p * r + V(repeating: 8.333_451_907_3e-3)
        p = p * r + V(repeating: 4.166_579_589_4e-2)
        p = p * r + V(repeating: 1.666_666_545_9e-1)
        p = p * r + V(repeating: 5.000_000_120_1e-1)
        p = p * (r * r) + r + V(repeating: 1)
        let scale = unsafeBitCast((n &+ 127) &<< 23, to: V.self)
        return p * scale
    }

    /// `1 / (1 + e^-x)` per lane.
    @inlinable @inline(__always)
    public static func sigmoid(_ x: V) -> V {
        V(repeating: 1) / (V(repeating: 1) + exp(-x))
    }

    /// `tanh(x)` per lane, as `1 - 2 / (e^{2x} + 1)`.
    @inlinable @inline(__always)
    public static func tanh(_ x: V) -> V {
        V(repeating: 1) - V(repeating: 2) / (exp(x + x) + V(repeating: 1))
    }

    /// Loads 8 floats from `p + i` (no alignment needed).
    @inlinable @inline(__always)
    public static func load(_ p: UnsafePointer<Float>, _ i: Int) -> V {
        UnsafeRawPointer(p + i).loadUnaligned(as: V.self)
    }

    /// Stores 8 floats at `p + i`.
    @inlinable @inline(__always)
    public static func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
        UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: V.self)
    }

    /// Scalar `e^x` with the same polynomial (for loop tails, so results do not depend on
    /// where a tail starts).
    @inlinable @inline(__always)
    public static func exp(_ x: Float) -> Float {
        exp(V(repeating: x))[0]
    }

    /// `row[j] = e^(row[j] - shift)` for `j < n`; returns the sum.
    @inlinable
    public static func expShiftedSum(_ row: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
        var acc = V(repeating: 0)
        let s = V(repeating: shift)
        var j = 0
        while j + 8 <= n {
            let e = exp(load(row, j) - s)
            store(e, row, j)
            acc += e
            j += 8
        }
        var total = acc.sum()
        while j < n {
            let e = exp(row[j] - shift)
            row[j] = e
            total += e
            j += 1
        }
        return total
    }

    /// `Σ e^(row[j] - shift)` for `j < n` (the row is not modified).
    @inlinable
    public static func expSum(_ row: UnsafePointer<Float>, _ n: Int, shift: Float) -> Float {
        var acc = V(repeating: 0)
        let s = V(repeating: shift)
        var j = 0
        while j + 8 <= n {
            acc += exp(load(row, j) - s)
            j += 8
        }
        var total = acc.sum()
        while j < n {
            total += exp(row[j] - shift)
            j += 1
        }
        return total
    }

    /// The largest of `row[0..<n]` (-infinity when empty).
    @inlinable
    public static func max(_ row: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = V(repeating: -.infinity)
        var j = 0
        while j + 8 <= n {
            let v = load(row, j)
            m.replace(with: v, where: v .> m)
            j += 8
        }
        var best = m.max()
        while j < n {
            best = Swift.max(best, row[j])
            j += 1
        }
        return best
    }

    /// `Σ a[j] * b[j]` for `j < n`.
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = V(repeating: 0)
        var j = 0
        while j + 8 <= n {
            acc += load(a, j) * load(b, j)
            j += 8
        }
        var total = acc.sum()
        while j < n {
            total += a[j] * b[j]
            j += 1
        }
        return total
    }
}
