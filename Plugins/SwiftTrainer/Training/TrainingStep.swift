import Foundation
import TallyTensor

/// The update that ends every optimiser step: global-norm clipping, then AdamW.
public enum TrainingStep {
    /// Clips the optimiser's gradients to `maxGradNorm` (when positive) and applies AdamW
    /// with `learningRate`.
    /// - Returns: the gradient norm before clipping.
    @discardableResult
    public static func apply(optimizer: AdamWOptimizer, learningRate: Double, maxGradNorm: Double) -> Double {
        let tensors = optimizer.slots.map(\.tensor)
        let norm = GradientNorm.clip(tensors, maxNorm: maxGradNorm)
        optimizer.step(lr: Float(learningRate))
        return norm
    }
}
