import COpenBLAS
import TallyRandom
import Foundation

/// A dense, row-major Float32 tensor on the CPU that can take part in reverse-mode autograd.
///
/// Tensors are reference types: an op's output refers to its inputs through the ``Tape``
/// that recorded it, and a parameter's ``grad`` accumulates across backward passes until
/// ``zeroGrad()``. A tensor is confined to the task that uses it (it is not `Sendable`).
///
/// ```swift
/// let w = Tensor.randomNormal([4, 3], std: 0.02, seed: 1, requiresGrad: true)
/// ```
public final class Tensor {
    /// The extent of each dimension, outermost first.
    public let shape: [Int]
    /// The number of elements (product of `shape`).
    public let count: Int
    /// The element storage, `count` floats, owned by this tensor.
    public let data: UnsafeMutablePointer<Float>
    /// Whether backward passes compute a gradient for this tensor. Setting it to `false` on
    /// a parameter freezes it: ops then skip the work that only served its gradient.
    public var requiresGrad: Bool
    /// The accumulated gradient (same shape), allocated by the first backward pass that
    /// reaches this tensor; `nil` before.
    public private(set) var grad: UnsafeMutablePointer<Float>?
    /// Whether this tensor is a leaf (a parameter or an input), whose gradient is kept
    /// after backward; intermediate gradients are released as soon as they were used.
    public let isLeaf: Bool

    /// Makes an uninitialised tensor (for ops that write every element).
    init(uninitializedShape shape: [Int], requiresGrad: Bool = false, isLeaf: Bool = false) {
        _ = Tensor.allocatorConfigured
        self.shape = shape
        let n = shape.reduce(1, *)
        self.count = n
        self.data = BufferPool.allocate(n)
        self.requiresGrad = requiresGrad
        self.isLeaf = isLeaf
    }

    /// An uninitialised intermediate tensor (not a leaf), for ops defined outside this module
    /// that write every element before anyone reads it (quantised products, for one).
    /// - Parameter shape: the dimensions.
    public static func uninitialized(_ shape: [Int]) -> Tensor {
        Tensor(uninitializedShape: shape)
    }

    /// Makes a tensor filled with zeros.
    /// - Parameters:
    ///   - shape: the dimensions.
    ///   - requiresGrad: whether it is a trainable leaf.
    public convenience init(zeros shape: [Int], requiresGrad: Bool = false) {
        self.init(uninitializedShape: shape, requiresGrad: requiresGrad, isLeaf: true)
        data.initialize(repeating: 0, count: max(count, 1))
    }

    /// Makes a tensor holding `values` (row-major) with the given shape.
    /// - Parameters:
    ///   - shape: the dimensions; their product must equal `values.count`.
    ///   - values: the elements.
    ///   - requiresGrad: whether it is a trainable leaf.
    /// - Throws: ``TensorError/shapeMismatch(_:)`` if the counts disagree.
    public convenience init(shape: [Int], values: [Float], requiresGrad: Bool = false) throws {
        let n = shape.reduce(1, *)
        guard n == values.count, shape.allSatisfy({ $0 >= 0 }) else {
            throw TensorError.shapeMismatch("shape \(shape) holds \(n) elements but \(values.count) values were given")
        }
        self.init(uninitializedShape: shape, requiresGrad: requiresGrad, isLeaf: true)
        values.withUnsafeBufferPointer { src in
            if n > 0 { data.initialize(from: src.baseAddress!, count: n) }
        }
    }

    /// Makes a tensor of normally distributed values from a seeded generator.
    /// - Parameters:
    ///   - shape: the dimensions.
    ///   - std: the standard deviation (mean 0).
    ///   - seed: the generator's seed; equal seeds give equal tensors.
    ///   - requiresGrad: whether it is a trainable leaf.
    public static func randomNormal(_ shape: [Int], std: Float, seed: UInt64, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(zeros: shape, requiresGrad: requiresGrad)
        var rng = SeededGenerator(seed: seed)
        for i in 0..<t.count { t.data[i] = rng.nextNormal() * std }
        return t
    }

    /// Keeps large freed buffers in the heap instead of returning them to the kernel, so the
    /// same activation sizes are reused every step without page faults (glibc only).
    static let allocatorConfigured: Bool = {
        tally_keep_freed_memory()
        return true
    }()

    deinit {
        BufferPool.release(data, count: count)
        if let grad { BufferPool.release(grad, count: count) }
    }

    /// The elements as an array (a copy).
    public var values: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// The gradient as an array (a copy), or `nil` if none was computed.
    public var gradValues: [Float]? {
        grad.map { Array(UnsafeBufferPointer(start: $0, count: count)) }
    }

    /// The number of rows when viewed as a matrix `[count / last, last]`.
    public var rows: Int { shape.count <= 1 ? 1 : count / max(shape[shape.count - 1], 1) }
    /// The last dimension (1 for scalars).
    public var columns: Int { shape.last ?? 1 }

    /// Returns the gradient buffer, allocating it zero-filled on first use.
    @discardableResult
    public func ensureGrad() -> UnsafeMutablePointer<Float> {
        if let g = grad { return g }
        let g = BufferPool.allocate(count)
        g.initialize(repeating: 0, count: max(count, 1))
        grad = g
        return g
    }

    /// Returns the gradient buffer for an op that writes it, and whether it must accumulate
    /// (`true`: a gradient is already there) or may overwrite (`false`: freshly allocated,
    /// contents undefined, the caller must write every element).
    public func gradForWriting() -> (pointer: UnsafeMutablePointer<Float>, accumulate: Bool) {
        if let g = grad { return (g, true) }
        let g = BufferPool.allocate(count)
        grad = g
        return (g, false)
    }

    /// Sets the gradient to zero (keeps the buffer) or releases it.
    /// - Parameter release: free the buffer instead of zeroing it.
    public func zeroGrad(release: Bool = false) {
        guard let g = grad else { return }
        if release {
            BufferPool.release(g, count: count)
            grad = nil
        } else {
            g.update(repeating: 0, count: max(count, 1))
        }
    }

    /// Takes over `other`'s gradient buffer when this tensor has none yet, instead of
    /// allocating one and copying: for ops whose input gradient equals their output
    /// gradient (an addition). `other` must be an intermediate tensor of the same size whose
    /// gradient is not needed after this call (it is released after its op's backward).
    /// - Returns: whether the buffer was taken; if not, the caller must accumulate itself.
    func adoptGrad(from other: Tensor) -> Bool {
        guard grad == nil, !other.isLeaf, other.count == count, let g = other.grad else { return false }
        grad = g
        other.grad = nil
        return true
    }

    /// Adds `dy` (this tensor's size) to the gradient, for an op whose input gradient equals
    /// its output gradient. With no gradient yet, this tensor takes over `owner`'s buffer
    /// (when given; `dy` must be `owner.grad`) or copies `dy`; otherwise it accumulates.
    /// - Returns: whether `owner`'s buffer was taken (`dy` stays valid, now owned here).
    @discardableResult
    func addGrad(_ dy: UnsafeMutablePointer<Float>, takingBufferOf owner: Tensor?) -> Bool {
        if let owner, adoptGrad(from: owner) { return true }
        let (g, accumulate) = gradForWriting()
        if !accumulate {
            g.update(from: dy, count: count)
            return false
        }
        Threading.parallelChunks(count, minChunk: 1 << 15) { s, e in
            for i in s..<e { g[i] += dy[i] }
        }
        return false
    }

    /// Releases the gradient buffer of an intermediate tensor.
    func releaseGrad() {
        if !isLeaf { zeroGrad(release: true) }
    }

    /// Copies `values` into the tensor.
    /// - Throws: ``TensorError/shapeMismatch(_:)`` if the count differs.
    public func copy(from values: [Float]) throws {
        guard values.count == count else {
            throw TensorError.shapeMismatch("tensor of shape \(shape) cannot take \(values.count) values")
        }
        values.withUnsafeBufferPointer { src in
            if count > 0 { data.update(from: src.baseAddress!, count: count) }
        }
    }

    /// Makes an independent copy of the values (no gradient, a leaf).
    public func detachedCopy(requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitializedShape: shape, requiresGrad: requiresGrad, isLeaf: true)
        t.data.initialize(from: data, count: max(count, 1))
        return t
    }

    /// The value of a one-element tensor (the first element otherwise).
    public var scalar: Float { data[0] }
}

/// Errors of tensor construction and ops on shapes that do not fit.
public enum TensorError: Error, CustomStringConvertible, Sendable {
    /// Shapes or counts disagree; the message says which.
    case shapeMismatch(String)

    public var description: String {
        switch self {
        case .shapeMismatch(let m): return "tensor shape mismatch: \(m)"
        }
    }
}

/// TallyTensor's seeded generator: TallyRandom's xoshiro256** (seeded by TallyRandom's
/// SplitMix64, the package's one seeded generator), under its historical name.
public typealias SeededGenerator = Xoshiro256StarStar

extension Xoshiro256StarStar {
    /// A uniform value in [0, 1).
    public mutating func nextUniform() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A standard normal value (Box-Muller).
    public mutating func nextNormal() -> Float {
        var u1 = nextUniform()
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = nextUniform()
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }
}
