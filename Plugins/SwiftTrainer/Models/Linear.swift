import TallyTensor

/// Something added to a ``Linear`` layer's output, such as a LoRA adapter.
///
/// The adapter receives the layer's input and the frozen base output and returns the
/// layer's final output (typically `base + Δ(x)`), recording its own ops on `tape`.
public protocol LinearAdapter: AnyObject {
    /// Combines the base output with the adapter's contribution.
    /// - Parameters:
    ///   - input: the layer's input `[rows, in]`.
    ///   - baseOutput: `x Wᵀ + b` of the base layer, `[rows, out]`.
    ///   - tape: the tape of the current pass.
    /// - Returns: the layer's output `[rows, out]`.
    func forward(input: Tensor, baseOutput: Tensor, tape: Tape) -> Tensor
}

/// A linear layer with a Hugging Face weight (and optional bias) and an optional adapter.
///
/// Freeze the base with `weight.requiresGrad = false` (and the bias): the backward pass then
/// skips the weight-gradient product entirely.
public final class Linear {
    /// `[out, in]` (`.outIn`) or `[in, out]` (`.inOut`, GPT-2 Conv1D).
    public let weight: Tensor
    /// `[out]` or nil.
    public let bias: Tensor?
    /// How `weight` is stored.
    public let layout: WeightLayout
    /// An adapter applied after the base product (LoRA), or nil.
    public var adapter: (any LinearAdapter)?

    /// Makes a layer around existing tensors.
    public init(weight: Tensor, bias: Tensor?, layout: WeightLayout = .outIn) {
        self.weight = weight
        self.bias = bias
        self.layout = layout
    }

    /// Input features.
    public var inFeatures: Int { layout == .outIn ? weight.shape[1] : weight.shape[0] }
    /// Output features.
    public var outFeatures: Int { layout == .outIn ? weight.shape[0] : weight.shape[1] }

    /// Applies the layer (and its adapter).
    /// - Parameters:
    ///   - x: `[rows, in]`.
    ///   - tape: the tape of the current pass.
    /// - Returns: `[rows, out]`.
    public func callAsFunction(_ x: Tensor, tape: Tape) -> Tensor {
        let y = tape.linear(x, weight, bias: bias, layout: layout)
        if let adapter { return adapter.forward(input: x, baseOutput: y, tape: tape) }
        return y
    }
}
