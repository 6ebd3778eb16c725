import Foundation

/// AdamW with PyTorch's semantics (`torch.optim.AdamW`, non-amsgrad): decoupled weight
/// decay `p -= lr * wd * p`, then the bias-corrected Adam step
/// `p -= lr / (1 - β1ᵗ) * m / (sqrt(v) / sqrt(1 - β2ᵗ) + eps)`.
///
/// Parameters without a gradient (never reached by backward) are skipped, as PyTorch does.
public final class AdamW {
    /// Learning rate (may be changed between steps by a schedule).
    public var learningRate: Float
    public let beta1: Float, beta2: Float, eps: Float
    /// Decoupled weight decay coefficient.
    public var weightDecay: Float
    /// The parameters updated, in order.
    public let parameters: [Tensor]
    /// Steps taken.
    public private(set) var step: Int = 0
    /// First and second moments per parameter (exposed for checkpoints).
    public private(set) var firstMoments: [[Float]]
    public private(set) var secondMoments: [[Float]]

    /// Makes an optimizer over `parameters` (only those that require gradients are updated).
    public init(parameters: [Tensor], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01) {
        self.parameters = parameters.filter(\.requiresGrad)
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        firstMoments = self.parameters.map { [Float](repeating: 0, count: $0.count) }
        secondMoments = self.parameters.map { [Float](repeating: 0, count: $0.count) }
    }

    /// Restores moments and step count (from a checkpoint).
    /// - Throws: ``TensorError/shapeMismatch(_:)`` if the sizes do not match the parameters.
    public func restore(step: Int, firstMoments m: [[Float]], secondMoments v: [[Float]]) throws {
        guard m.count == parameters.count, v.count == parameters.count,
            zip(parameters, zip(m, v)).allSatisfy({ $0.count == $1.0.count && $0.count == $1.1.count })
        else { throw TensorError.shapeMismatch("optimizer state does not match the \(parameters.count) parameters") }
        self.step = step
        firstMoments = m
        secondMoments = v
    }

    /// Applies one update from the parameters' accumulated gradients (it does not zero them).
    public func update() {
        step += 1
        let bc1 = 1 - powf(beta1, Float(step))
        let bc2 = 1 - powf(beta2, Float(step))
        let stepSize = learningRate / bc1
        let bc2Root = bc2.squareRoot()
        let decay = 1 - learningRate * weightDecay
        let (b1, b2, eps) = (beta1, beta2, eps)
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            let n = p.count
            let w = p.data
            firstMoments[i].withUnsafeMutableBufferPointer { mb in
                secondMoments[i].withUnsafeMutableBufferPointer { vb in
                    guard let m = mb.baseAddress, let v = vb.baseAddress else { return }
                    Threading.parallelChunks(n, minChunk: 1 << 15) { s, e in
                        for j in s..<e {
                            w[j] *= decay
                            m[j] = b1 * m[j] + (1 - b1) * g[j]
                            v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j]
                            w[j] -= stepSize * m[j] / (v[j].squareRoot() / bc2Root + eps)
                        }
                    }
                }
            }
        }
    }
}

/// Gradient utilities over a set of parameters.
public enum Gradients {
    /// The global L2 norm of the parameters' gradients (missing gradients count as zero).
    public static func globalNorm(_ parameters: [Tensor]) -> Float {
        var total: Double = 0
        for p in parameters {
            guard let g = p.grad else { continue }
            var s: Double = 0
            for i in 0..<p.count { s += Double(g[i]) * Double(g[i]) }
            total += s
        }
        return Float(total.squareRoot())
    }

    /// Scales gradients so their global norm is at most `maxNorm`, as
    /// `torch.nn.utils.clip_grad_norm_` does (coefficient `maxNorm / (norm + 1e-6)`, applied
    /// only when below 1).
    /// - Returns: the norm before clipping.
    @discardableResult
    public static func clipGlobalNorm(_ parameters: [Tensor], maxNorm: Float) -> Float {
        let norm = globalNorm(parameters)
        let coefficient = maxNorm / (norm + 1e-6)
        if coefficient < 1 {
            for p in parameters {
                guard let g = p.grad else { continue }
                for i in 0..<p.count { g[i] *= coefficient }
            }
        }
        return norm
    }
}
