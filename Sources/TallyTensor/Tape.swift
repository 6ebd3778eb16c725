/// Records the ops of a forward pass so that ``backward(from:)`` can run their hand-written
/// backward passes in reverse order.
///
/// A tape made with `recording: false` records nothing: the same model code then runs as
/// plain inference without keeping activations alive.
///
/// ```swift
/// let tape = Tape()
/// let loss = tape.crossEntropy(logits, targets: labels)
/// tape.backward(from: loss)   // parameters' .grad now hold d(loss)/d(parameter)
/// ```
public final class Tape {
    /// One recorded op: the output it produced and how to push its gradient to its inputs.
    struct Node {
        let output: Tensor
        let backward: () -> Void
    }

    /// Whether ops are recorded.
    public let isRecording: Bool
    /// Whether products with block-quantised weights may round each input row to 8-bit
    /// blocks and multiply in integers (decode steps; SwiftTrainer's `QuantizedMatrix`).
    /// Ignored by a recording tape. Off by default: Float32 activations.
    public var int8Activations = false
    var nodes: [Node] = []

    /// Makes a tape.
    /// - Parameter recording: `false` for inference (nothing is recorded, no gradients).
    public init(recording: Bool = true) {
        self.isRecording = recording
    }

    /// The number of recorded ops.
    public var count: Int { nodes.count }

    /// Whether an op on `inputs` must be recorded.
    @inlinable
    public func needsGrad(_ inputs: Tensor?...) -> Bool {
        guard isRecording else { return false }
        for t in inputs where t?.requiresGrad == true { return true }
        return false
    }

    /// Records a custom op. `backward` reads `output.grad` (allocated, possibly zero) and
    /// accumulates into the gradients of the inputs that require one.
    /// - Parameters:
    ///   - output: the op's result; it is marked as requiring a gradient.
    ///   - backward: the op's backward pass.
    public func record(_ output: Tensor, backward: @escaping () -> Void) {
        guard isRecording else { return }
        output.requiresGrad = true
        nodes.append(Node(output: output, backward: backward))
    }

    /// Runs the backward pass from a scalar `loss` (seeded with gradient 1, or `seed`), then
    /// clears the tape. Gradients accumulate into leaves that require them; intermediate
    /// gradients are freed as soon as they have been propagated.
    /// - Parameters:
    ///   - loss: a tensor produced by ops on this tape.
    ///   - seed: the gradient of the final objective with respect to `loss` (default 1).
    public func backward(from loss: Tensor, seed: Float = 1) {
        guard isRecording, loss.requiresGrad else {
            nodes.removeAll()
            return
        }
        let g = loss.ensureGrad()
        for i in 0..<loss.count { g[i] += seed }
        while let node = nodes.popLast() {
            if node.output.grad != nil {
                node.backward()
            }
            node.output.releaseGrad()
        }
    }

    /// Drops all recorded ops without running them.
    public func reset() {
        nodes.removeAll()
    }
}
