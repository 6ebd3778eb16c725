import Foundation

/// A sparse vector of doubles: strictly increasing indices and their non-zero values. The
/// rows of a TF-IDF matrix; plain Swift arrays, no tensor library.
///
/// ```swift
/// let x = SparseVector(indices: [0, 3], values: [0.6, 0.8])
/// x.dot([1, 0, 0, 2])   // 2.2
/// ```
public struct SparseVector: Sendable, Hashable {
    /// Feature indices, strictly increasing.
    public let indices: [Int]
    /// The value at each index, in the same order.
    public let values: [Double]

    /// - Precondition: `indices` and `values` have the same length and `indices` increase.
    public init(indices: [Int], values: [Double]) {
        precondition(indices.count == values.count, "a sparse vector needs one value per index")
        self.indices = indices
        self.values = values
    }

    /// The empty (all-zero) vector.
    public static let zero = SparseVector(indices: [], values: [])

    /// Builds a vector from unordered (index, value) pairs; equal indices are summed and zero
    /// values dropped.
    public init(pairs: [(index: Int, value: Double)]) {
        var sums: [Int: Double] = [:]
        for pair in pairs { sums[pair.index, default: 0] += pair.value }
        let sorted = sums.filter { $0.value != 0 }.sorted { $0.key < $1.key }
        self.init(indices: sorted.map(\.key), values: sorted.map(\.value))
    }

    /// Number of stored (non-zero) entries.
    public var nonZeroCount: Int { indices.count }

    /// The Euclidean norm.
    public var norm: Double { values.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    /// The vector scaled to unit Euclidean norm; the zero vector stays zero.
    public var normalized: SparseVector {
        let n = norm
        guard n > 0 else { return self }
        return SparseVector(indices: indices, values: values.map { $0 / n })
    }

    // The two loops below run millions of times per training; they read through buffer
    // pointers so that unoptimised (debug) builds stay fast too. Indices are checked once.

    /// The dot product with a dense vector, reading `dense` at `offset + index`.
    /// - Precondition: every `offset + index` is inside `dense`.
    public func dot(_ dense: [Double], offset: Int = 0) -> Double {
        guard let last = indices.last else { return 0 }
        precondition(offset >= 0 && offset + last < dense.count, "sparse index outside the dense vector")
        return indices.withUnsafeBufferPointer { index in
            values.withUnsafeBufferPointer { value in
                dense.withUnsafeBufferPointer { target in
                    var sum = 0.0
                    for k in 0..<index.count { sum += value[k] * target[offset + index[k]] }
                    return sum
                }
            }
        }
    }

    /// Adds `scale` times this vector to `dense` at `offset + index`.
    /// - Precondition: every `offset + index` is inside `dense`.
    public func add(scaledBy scale: Double, to dense: inout [Double], offset: Int = 0) {
        guard let last = indices.last else { return }
        precondition(offset >= 0 && offset + last < dense.count, "sparse index outside the dense vector")
        indices.withUnsafeBufferPointer { index in
            values.withUnsafeBufferPointer { value in
                dense.withUnsafeMutableBufferPointer { target in
                    for k in 0..<index.count { target[offset + index[k]] += scale * value[k] }
                }
            }
        }
    }

    /// This vector followed by `other`, whose indices are shifted by `width` (the number of
    /// features of this vector's space): the concatenation of two feature blocks.
    public func concatenated(with other: SparseVector, width: Int) -> SparseVector {
        SparseVector(indices: indices + other.indices.map { $0 + width }, values: values + other.values)
    }

    /// The dense form, `count` long.
    public func dense(count: Int) -> [Double] {
        var out = [Double](repeating: 0, count: count)
        for (index, value) in zip(indices, values) where index < count { out[index] = value }
        return out
    }
}
