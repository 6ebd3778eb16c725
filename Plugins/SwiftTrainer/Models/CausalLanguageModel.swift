import Foundation
import TallyCore
import TallyTensor

/// A decoder-only language model whose parameters carry Hugging Face names.
///
/// Implementations: ``LlamaModel`` and ``GPT2Model``. The same forward code serves training
/// (pass a recording ``Tape``) and inference (a non-recording tape, optionally a ``KVCache``).
public protocol CausalLanguageModel: AnyObject {
    /// The model's shape.
    var config: TransformerConfig { get }
    /// Every parameter, by Hugging Face name, in a stable order; a tied embedding is listed once.
    var namedParameters: [(name: String, tensor: Tensor)] { get }
    /// Weight matrices kept quantised (``QuantizedMatrix``), by Hugging Face name; they are not
    /// parameters (they never train) and are not in ``namedParameters``.
    var namedQuantizedWeights: [(name: String, matrix: QuantizedMatrix)] { get }
    /// Every linear layer by Hugging Face module path (`model.layers.0.self_attn.q_proj`),
    /// for adapters such as LoRA.
    var namedLinears: [(name: String, layer: Linear)] { get }
    /// The token embedding table `[vocab, hidden]` (the model's input embeddings).
    var tokenEmbedding: Tensor { get }
    /// Virtual tokens put before every sequence (prompt tuning), or nil.
    var softPrompt: SoftPrompt? { get set }
    /// The final hidden states (after the last norm), `[batch * (prefix + length), hidden]`
    /// where `prefix` is ``prefixLength(cache:)``: with a soft prompt, each sequence's rows
    /// start with those of its virtual tokens on the pass that starts it.
    /// - Parameters:
    ///   - batch: the tokens.
    ///   - tape: records the ops for training, or not.
    ///   - cache: when given, the tokens continue the cached sequences and are added to it.
    func hiddenStates(_ batch: TokenBatch, tape: Tape, cache: KVCache?) -> Tensor
    /// The output layer (language-model head) applied to hidden-state rows.
    /// - Returns: `[rows, vocab]`.
    func outputLogits(_ hidden: Tensor, tape: Tape) -> Tensor
}

extension CausalLanguageModel {
    /// Logits at every position, `[batch * length, vocab]`; with a soft prompt
    /// `[batch * (prompt + length), vocab]`, each sequence's virtual tokens first (as PEFT
    /// returns them).
    /// - Parameters:
    ///   - batch: the tokens.
    ///   - tape: a recording tape for gradients; inference by default.
    public func logits(_ batch: TokenBatch, tape: Tape = Tape(recording: false)) -> Tensor {
        outputLogits(hiddenStates(batch, tape: tape, cache: nil), tape: tape)
    }

    /// Runs `batch` through the model, appending it to `cache`, and returns the logits of
    /// each sequence's last token (`[batch, vocab]`).
    /// - Parameter int8Activations: round activations to 8-bit blocks in the products with
    ///   block-quantised weights (``QuantizedMatrix/multiplyInt8(_:rows:into:accumulate:simd:)``):
    ///   decode steps pass true, prompt processing keeps Float32 so that a prompt's logits do
    ///   not depend on how much of it came from the prefix cache.
    public func nextTokenLogits(_ batch: TokenBatch, cache: KVCache, int8Activations: Bool = false) -> Tensor {
        let tape = Tape(recording: false)
        tape.int8Activations = int8Activations
        let length = prefixLength(cache: cache) + batch.length
        let h = hiddenStates(batch, tape: tape, cache: cache)
        let last = (0..<batch.batch).map { $0 * length + length - 1 }
        return outputLogits(tape.gatherRows(h, last), tape: tape)
    }

    /// Mean next-token cross-entropy as transformers computes it: position `t` predicts
    /// `labels[t + 1]` of the same row; targets equal to -100 are not scored. The output
    /// layer runs only at scored positions. With a soft prompt, each row's labels are
    /// preceded by -100 for its virtual tokens (as PEFT does), so the last virtual token
    /// predicts the row's first label.
    /// - Parameters:
    ///   - batch: the input tokens.
    ///   - labels: `batch * length` labels (usually the ids, with -100 on prompt and padding).
    ///   - tape: the tape to record on (call `tape.backward(from:)` on the result).
    /// - Returns: a one-element tensor (0 when nothing is scored).
    public func loss(_ batch: TokenBatch, labels: [Int], tape: Tape) -> Tensor {
        precondition(labels.count == batch.ids.count, "loss: \(labels.count) labels for \(batch.ids.count) tokens")
        let h = hiddenStates(batch, tape: tape, cache: nil)
        var rows: [Int] = []
        var targets: [Int] = []
        let P = prefixLength(cache: nil)
        let T = P + batch.length
        for b in 0..<batch.batch {
            for t in 0..<max(T - 1, 0) {
                let next = t + 1 - P
                let y = next < 0 ? Tape.ignoreIndex : labels[b * batch.length + next]
                if y != Tape.ignoreIndex {
                    rows.append(b * T + t)
                    targets.append(y)
                }
            }
        }
        let logits = outputLogits(tape.gatherRows(h, rows), tape: tape)
        return tape.crossEntropy(logits, targets: targets)
    }

    /// None by default (models whose weights are all Float32).
    public var namedQuantizedWeights: [(name: String, matrix: QuantizedMatrix)] { [] }

    /// The parameter with a Hugging Face name, if any.
    public func parameter(named name: String) -> Tensor? {
        namedParameters.first { $0.name == name }?.tensor
    }

    /// Copies of every parameter's values by name (to save as safetensors), quantised
    /// matrices dequantised.
    public func stateDict() -> [String: WeightTensor] {
        var out: [String: WeightTensor] = [:]
        for (name, t) in namedParameters { out[name] = WeightTensor(shape: t.shape, values: t.values) }
        for (name, q) in namedQuantizedWeights { out[name] = WeightTensor(shape: [q.rows, q.columns], values: q.dequantized()) }
        return out
    }

    /// Sets `requiresGrad` on every parameter.
    public func setTrainable(_ trainable: Bool) {
        for (_, t) in namedParameters { t.requiresGrad = trainable }
    }

    /// Zeroes the accumulated gradients of all parameters.
    public func zeroGrad() {
        for (_, t) in namedParameters { t.zeroGrad() }
    }

    /// The number of parameters (tied weights counted once).
    public var parameterCount: Int {
        namedParameters.reduce(0) { $0 + $1.tensor.count } + namedQuantizedWeights.reduce(0) { $0 + $1.matrix.rows * $1.matrix.columns }
    }

    /// Whether any weight matrix is kept quantised.
    public var hasQuantizedWeights: Bool { !namedQuantizedWeights.isEmpty }
}

/// Hands out model weights by Hugging Face name, checking shapes.
struct WeightReader {
    let weights: [String: WeightTensor]
    /// Named in errors (the checkpoint file or directory).
    let source: String
    let trainable: Bool
    /// Matrices kept quantised, by Hugging Face name.
    var quantized: [String: QuantizedMatrix] = [:]

    /// The matrix `name` `[out, in]` as a layer: quantised when it was kept so, else Float32.
    /// - Throws: `TallyError` (`invalid-model`) when it is missing or has another shape.
    func matrix(_ name: String, _ shape: [Int], bias: Tensor? = nil) throws -> Linear {
        if let q = quantized[name] {
            guard [q.rows, q.columns] == shape else {
                throw TallyError(
                    code: .invalidModel, message: "tensor '\(name)' has shape [\(q.rows), \(q.columns)] but the config implies \(shape)",
                    location: SourceLocation(file: source))
            }
            return Linear(quantized: q, bias: bias)
        }
        return Linear(weight: try tensor(name, shape), bias: bias)
    }

    func tensor(_ name: String, _ shape: [Int]) throws -> Tensor {
        guard let w = weights[name] else {
            throw TallyError(
                code: .invalidModel,
                message: "missing tensor '\(name)' (expected shape \(shape)); the checkpoint does not match its config.json",
                location: SourceLocation(file: source))
        }
        guard w.shape == shape, w.values.count == w.count else {
            throw TallyError(
                code: .invalidModel,
                message: "tensor '\(name)' has shape \(w.shape) but the config implies \(shape)",
                location: SourceLocation(file: source))
        }
        do {
            return try Tensor(shape: shape, values: w.values, requiresGrad: trainable)
        } catch {
            throw TallyError(code: .invalidModel, message: "tensor '\(name)': \(error)", location: SourceLocation(file: source))
        }
    }

    func optional(_ name: String, _ shape: [Int], present: Bool) throws -> Tensor? {
        present ? try tensor(name, shape) : nil
    }
}
