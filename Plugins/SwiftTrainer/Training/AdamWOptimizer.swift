import Foundation
import TallyCore
import TallyTensor

/// AdamW as `torch.optim.AdamW` computes it (non-fused, non-amsgrad): decoupled weight
/// decay `p -= lr * wd * p` first, then the bias-corrected Adam update with `eps` added
/// outside the square root:
///
///     m = β1 m + (1 - β1) g;  v = β2 v + (1 - β2) g²
///     p -= lr / (1 - β1ᵗ) * m / (sqrt(v) / sqrt(1 - β2ᵗ) + eps)
public final class AdamWOptimizer {
    /// One parameter and its moment estimates.
    public final class Slot {
        /// The parameter's name (used in checkpoints).
        public let name: String
        /// The parameter.
        public let tensor: Tensor
        /// Whether weight decay applies to it.
        public let decays: Bool
        /// First moment.
        public var m: [Float]
        /// Second moment.
        public var v: [Float]

        init(name: String, tensor: Tensor, decays: Bool) {
            self.name = name
            self.tensor = tensor
            self.decays = decays
            m = [Float](repeating: 0, count: tensor.count)
            v = [Float](repeating: 0, count: tensor.count)
        }
    }

    /// The parameters in a stable order.
    public let slots: [Slot]
    /// β1, β2.
    public var betas: (Float, Float)
    /// Added to the denominator.
    public var eps: Float
    /// Decoupled weight decay.
    public var weightDecay: Float
    /// Updates taken so far (`t`).
    public private(set) var stepCount = 0

    /// Makes an optimiser over named parameters.
    /// - Parameters:
    ///   - parameters: the trainable tensors, by name.
    ///   - weightDecay: decoupled weight decay.
    ///   - betas: moment decay rates.
    ///   - eps: added to the denominator.
    ///   - noDecay: names excluded from weight decay (Hugging Face's Trainer excludes biases
    ///     and norm weights); by default every parameter decays, as `torch.optim.AdamW` does.
    public init(parameters: [(name: String, tensor: Tensor)], weightDecay: Float = 0.01, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8, noDecay: Set<String> = []) {
        slots = parameters.map { Slot(name: $0.name, tensor: $0.tensor, decays: !noDecay.contains($0.name)) }
        self.weightDecay = weightDecay
        self.betas = betas
        self.eps = eps
    }

    /// Applies one update with learning rate `lr` using each parameter's `grad`.
    public func step(lr: Float) {
        stepCount += 1
        let (b1, b2) = betas
        let bc1 = 1 - Float(pow(Double(b1), Double(stepCount)))
        let bc2 = 1 - Float(pow(Double(b2), Double(stepCount)))
        let stepSize = lr / bc1
        let bc2Sqrt = bc2.squareRoot()
        let decay = 1 - lr * weightDecay
        let epsilon = eps
        for slot in slots {
            let p = slot.tensor.data
            // Parameters no backward pass reached are skipped, as PyTorch skips grad None.
            guard let g = slot.tensor.grad else { continue }
            let n = slot.tensor.count
            let shrink = slot.decays ? decay : 1
            slot.m.withUnsafeMutableBufferPointer { mb in
                slot.v.withUnsafeMutableBufferPointer { vb in
                    guard let m = mb.baseAddress, let v = vb.baseAddress else { return }
                    Threading.parallelChunks(n, minChunk: 1 << 14) { s, e in
                        Self.update(p: p, g: g, m: m, v: v, range: s..<e, shrink: shrink, b1: b1, b2: b2,
                                    stepSize: stepSize, bc2Sqrt: bc2Sqrt, eps: epsilon)
                    }
                }
            }
        }
    }

    /// The element-wise update over `range`, eight lanes at a time (the same operations in the
    /// same order as the scalar tail, so every element gets the value the scalar loop gives).
    @inline(__always)
    static func update(
        p: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>,
        v: UnsafeMutablePointer<Float>, range: Range<Int>, shrink: Float, b1: Float, b2: Float,
        stepSize: Float, bc2Sqrt: Float, eps: Float
    ) {
        typealias V8 = SIMD8<Float>
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            let gi = UnsafeRawPointer(g + i).loadUnaligned(as: V8.self)
            var pi = UnsafeRawPointer(p + i).loadUnaligned(as: V8.self)
            var mi = UnsafeRawPointer(m + i).loadUnaligned(as: V8.self)
            var vi = UnsafeRawPointer(v + i).loadUnaligned(as: V8.self)
            pi *= shrink
            mi = b1 * mi + (1 - b1) * gi
            vi = b2 * vi + (1 - b2) * gi * gi
            let denom = vi.squareRoot() / bc2Sqrt + eps
            pi -= stepSize * mi / denom
            UnsafeMutableRawPointer(p + i).storeBytes(of: pi, as: V8.self)
            UnsafeMutableRawPointer(m + i).storeBytes(of: mi, as: V8.self)
            UnsafeMutableRawPointer(v + i).storeBytes(of: vi, as: V8.self)
            i += 8
        }
        while i < range.upperBound {
            let gi = g[i]
            p[i] *= shrink
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            let denom = v[i].squareRoot() / bc2Sqrt + eps
            p[i] -= stepSize * m[i] / denom
            i += 1
        }
    }

    /// Restores the step count (from a checkpoint).
    public func restore(stepCount: Int) {
        self.stepCount = stepCount
    }
}

/// Gradient utilities shared by every training loop.
public enum GradientNorm {
    /// Elements per block of the norm's partial sums. Fixed, so the sum (and so training) does
    /// not depend on the thread count.
    static let block = 1 << 16

    /// The global L2 norm of the gradients (computed in double precision). Blocks of
    /// ``block`` elements are summed in parallel and combined in order, so the result is the
    /// same for any thread count.
    public static func globalNorm(_ tensors: [Tensor]) -> Double {
        var total = 0.0
        for t in tensors {
            guard let g = t.grad else { continue }
            let n = t.count
            let blocks = (n + block - 1) / block
            var partial = [Double](repeating: 0, count: blocks)
            partial.withUnsafeMutableBufferPointer { pb in
                guard let out = pb.baseAddress else { return }
                Threading.parallelChunks(blocks, minChunk: 4) { b0, b1 in
                    for b in b0..<b1 {
                        var lanes = SIMD4<Double>()
                        var i = b * block
                        let end = min(n, i + block)
                        while i + 4 <= end {
                            let x = SIMD4<Double>(Double(g[i]), Double(g[i + 1]), Double(g[i + 2]), Double(g[i + 3]))
                            lanes += x * x
                            i += 4
                        }
                        var s = lanes.sum()
                        while i < end { s += Double(g[i]) * Double(g[i]); i += 1 }
                        out[b] = s
                    }
                }
            }
            for s in partial { total += s }
        }
        return total.squareRoot()
    }

    /// `torch.nn.utils.clip_grad_norm_`: scales all gradients by
    /// `min(1, maxNorm / (norm + 1e-6))`.
    /// - Returns: the norm before clipping.
    @discardableResult
    public static func clip(_ tensors: [Tensor], maxNorm: Double) -> Double {
        let norm = globalNorm(tensors)
        guard maxNorm > 0 else { return norm }
        let coef = Float(min(1, maxNorm / (norm + 1e-6)))
        if coef < 1 { scale(tensors, by: coef) }
        return norm
    }

    /// Multiplies every gradient by `factor`.
    public static func scale(_ tensors: [Tensor], by factor: Float) {
        for t in tensors {
            guard let g = t.grad else { continue }
            Threading.parallelChunks(t.count, minChunk: 1 << 15) { s, e in
                for i in s..<e { g[i] *= factor }
            }
        }
    }
}

/// A learning-rate schedule with Hugging Face's `get_scheduler` semantics: the factor for
/// optimiser step `s` (0-based) is `s / warmup` during warm-up, then constant, linear decay
/// to zero at `total`, or half a cosine down to zero.
public struct LearningRateSchedule: Sendable, Hashable {
    /// The kinds of schedule.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case constant, linear, cosine
    }

    /// The shape after warm-up.
    public let kind: Kind
    /// The peak learning rate.
    public let peak: Double
    /// Steps of linear warm-up from 0.
    public let warmupSteps: Int
    /// Total optimiser steps.
    public let totalSteps: Int

    /// Makes a schedule.
    /// - Parameters:
    ///   - kind: `constant`, `linear` or `cosine`.
    ///   - peak: the learning rate after warm-up.
    ///   - warmupSteps: warm-up steps.
    ///   - totalSteps: the run's optimiser steps.
    public init(kind: Kind, peak: Double, warmupSteps: Int, totalSteps: Int) {
        self.kind = kind
        self.peak = peak
        self.warmupSteps = max(0, warmupSteps)
        self.totalSteps = max(1, totalSteps)
    }

    /// Parses a recipe's schedule name.
    /// - Throws: `TallyError` (`invalid-recipe`) listing the known names.
    public init(name: String, peak: Double, warmupSteps: Int, totalSteps: Int) throws {
        guard let kind = Kind(rawValue: name.lowercased()) else {
            throw TallyError(code: .invalidRecipe, message: "unknown learning-rate schedule '\(name)'; use constant, linear or cosine")
        }
        self.init(kind: kind, peak: peak, warmupSteps: warmupSteps, totalSteps: totalSteps)
    }

    /// The learning rate for the update that follows `step` completed updates.
    public func learningRate(at step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step) / Double(max(1, warmupSteps)) }
        switch kind {
        case .constant:
            return peak
        case .linear:
            return peak * max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps)))
        case .cosine:
            let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
            return peak * max(0, 0.5 * (1 + cos(Double.pi * progress)))
        }
    }
}
