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
/// The weight is Float32 (``weight``), or kept in a GGML block format (``quantized``) when a
/// GGUF model is loaded for generation only: the product then dequantises blocks on the fly
/// and the weight cannot train or take a merged adapter (an adapter still applies on top).
///
/// Freeze the base with `weight.requiresGrad = false` (and the bias): the backward pass then
/// skips the weight-gradient product entirely.
public final class Linear {
    enum Storage {
        case dense(Tensor)
        case quantized(QuantizedMatrix)
    }
    let storage: Storage
    /// `[out, in]` (`.outIn`) or `[in, out]` (`.inOut`, GPT-2 Conv1D); nil when ``quantized``.
    public var weight: Tensor? {
        if case .dense(let t) = storage { return t }
        return nil
    }
    /// The weight `[out, in]` in a block format, or nil when it is Float32 (``weight``).
    public var quantized: QuantizedMatrix? {
        if case .quantized(let q) = storage { return q }
        return nil
    }
    /// `[out]` or nil.
    public let bias: Tensor?
    /// How `weight` is stored (a quantised weight is always `.outIn`).
    public let layout: WeightLayout
    /// An adapter applied after the base product (LoRA), or nil.
    public var adapter: (any LinearAdapter)?

    /// Makes a layer around existing tensors.
    public init(weight: Tensor, bias: Tensor?, layout: WeightLayout = .outIn) {
        storage = .dense(weight)
        self.bias = bias
        self.layout = layout
    }

    /// Makes a layer around a quantised weight `[out, in]`.
    public init(quantized: QuantizedMatrix, bias: Tensor?) {
        storage = .quantized(quantized)
        self.bias = bias
        self.layout = .outIn
    }

    /// Input features.
    public var inFeatures: Int {
        switch storage {
        case .quantized(let q): return q.columns
        case .dense(let w): return layout == .outIn ? w.shape[1] : w.shape[0]
        }
    }
    /// Output features.
    public var outFeatures: Int {
        switch storage {
        case .quantized(let q): return q.rows
        case .dense(let w): return layout == .outIn ? w.shape[0] : w.shape[1]
        }
    }

    /// The weight as Float32 in its layout's shape: ``weight`` itself, or a dequantised copy.
    public func floatWeight() -> WeightTensor {
        switch storage {
        case .dense(let w): return WeightTensor(shape: w.shape, values: w.values)
        case .quantized(let q): return WeightTensor(shape: [q.rows, q.columns], values: q.dequantized())
        }
    }

    /// Applies the layer (and its adapter).
    /// - Parameters:
    ///   - x: `[rows, in]`.
    ///   - tape: the tape of the current pass.
    /// - Returns: `[rows, out]`.
    public func callAsFunction(_ x: Tensor, tape: Tape) -> Tensor {
        let y = base(x, tape: tape)
        if let adapter { return adapter.forward(input: x, baseOutput: y, tape: tape) }
        return y
    }

    /// `layers` applied to the same input, `[layer(x) for layer in layers]`. In a decode step
    /// (``Tape/int8Activations``) where every layer keeps an int8-taking quantised weight,
    /// the products share one rounding of `x` and one parallel pass
    /// (``QuantizedMatrix/multiplyInt8(_:_:rows:accumulate:simd:)``); the results are those
    /// of applying each layer alone.
    static func apply(_ layers: [Linear], to x: Tensor, tape: Tape) -> [Tensor] {
        let matrices = layers.compactMap { $0.quantized?.takesInt8Activations == true ? $0.quantized : nil }
        guard tape.int8Activations, !tape.isRecording, layers.count > 1, matrices.count == layers.count else {
            return layers.map { $0(x, tape: tape) }
        }
        let n = x.rows
        let outputs = layers.map { Tensor.uninitialized([n, $0.outFeatures]) }
        let withBias = layers.contains { $0.bias != nil }
        if withBias {
            // Outputs start at the bias (or zero) and the products accumulate onto them.
            for (layer, y) in zip(layers, outputs) {
                let outF = layer.outFeatures
                for r in 0..<n {
                    if let bias = layer.bias {
                        (y.data + r * outF).update(from: bias.data, count: outF)
                    } else {
                        (y.data + r * outF).update(repeating: 0, count: outF)
                    }
                }
            }
        }
        QuantizedMatrix.multiplyInt8(Array(zip(matrices, outputs.map(\.data))), x.data, rows: n, accumulate: withBias)
        return zip(layers, outputs).map { layer, y in
            if let adapter = layer.adapter { return adapter.forward(input: x, baseOutput: y, tape: tape) }
            return y
        }
    }

    /// `x Wᵀ + b` without the adapter.
    func base(_ x: Tensor, tape: Tape) -> Tensor {
        switch storage {
        case .quantized(let q): return tape.linear(x, q, bias: bias)
        case .dense(let w): return tape.linear(x, w, bias: bias, layout: layout)
        }
    }

    /// Rows `ids` of the weight `[vocab, d]` (an embedding table that doubles as the tied
    /// output layer): only the looked-up rows of a quantised table are dequantised.
    func embeddingRows(_ ids: [Int], tape: Tape) -> Tensor {
        switch storage {
        case .quantized(let q): return q.gatherRows(ids)
        case .dense(let w): return tape.embedding(ids, weight: w)
        }
    }
}
