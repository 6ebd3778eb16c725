import Foundation
import TallyCore
import TallyTensor

/// A LoRA adapter on one frozen ``Linear`` layer, with PEFT's semantics:
/// `y = base(x) + scaling * B(A(dropout(x)))`, `A: [r, in]`, `B: [out, r]`,
/// `scaling = alpha / r` (or `alpha / sqrt(r)` with rsLoRA).
///
/// A starts as PEFT initialises it (Kaiming-uniform with `a = sqrt(5)`, i.e. uniform in
/// `±1/sqrt(in)`) and B at zero, so a fresh adapter leaves the model unchanged.
public final class LoRAAdapter: LinearAdapter {
    /// `[rank, in]`.
    public let a: Tensor
    /// `[out, rank]`.
    public let b: Tensor
    /// The factor applied to `B A x`.
    public let scaling: Float
    /// The probability of zeroing an input element before `A` while training.
    public let dropout: Float
    /// Whether dropout is active (training) or not (inference).
    public var isTraining = false
    /// Whether `scaling * B A` has been added into the base weight (forward then adds nothing).
    public private(set) var isMerged = false
    /// The seed of this layer's dropout masks; ``dropoutCounter`` advances with each forward.
    public var dropoutSeed: UInt64
    /// How many training forward passes have drawn a dropout mask (part of a checkpoint).
    public var dropoutCounter: UInt64 = 0
    /// Where the base layer stores its weight, for merging.
    let layout: WeightLayout

    /// Makes an adapter for `base`.
    /// - Parameters:
    ///   - base: the layer to adapt (its weight is not modified until ``merge(into:)``).
    ///   - rank: `r`.
    ///   - alpha: `lora_alpha`.
    ///   - dropout: `lora_dropout`.
    ///   - useRSLoRA: scale by `alpha / sqrt(r)` instead of `alpha / r`.
    ///   - seed: seeds A's initialisation and the dropout masks.
    public init(base: Linear, rank: Int, alpha: Double, dropout: Double = 0, useRSLoRA: Bool = false, seed: UInt64) {
        let inF = base.inFeatures, outF = base.outFeatures
        a = Tensor(zeros: [rank, inF], requiresGrad: true)
        b = Tensor(zeros: [outF, rank], requiresGrad: true)
        let bound = 1 / Double(inF).squareRoot()
        var rng = SeededRandom(seed: seed)
        for i in 0..<a.count { a.data[i] = Float((Double(rng.next() >> 11) * 0x1p-53 * 2 - 1) * bound) }
        scaling = Float(useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank))
        self.dropout = Float(dropout)
        self.layout = base.layout
        self.dropoutSeed = seed ^ 0xD50F_A1E5_0000_0001
    }

    /// The rank `r`.
    public var rank: Int { a.shape[0] }

    public func forward(input: Tensor, baseOutput: Tensor, tape: Tape) -> Tensor {
        if isMerged { return baseOutput }
        var x = input
        if isTraining && dropout > 0 {
            dropoutCounter &+= 1
            x = tape.dropout(input, probability: dropout, seed: dropoutSeed &+ dropoutCounter &* 0x9E37_79B9_7F4A_7C15)
        }
        let h = tape.linear(x, a)
        return tape.addScaledLinear(baseOutput, h, b, scale: scaling)
    }

    /// `scaling * B A` laid out like the base weight (`[out, in]`, or `[in, out]` for Conv1D).
    public func delta() -> [Float] {
        let r = rank, inF = a.shape[1], outF = b.shape[0]
        var out = [Float](repeating: 0, count: inF * outF)
        out.withUnsafeMutableBufferPointer { d in
            guard let dst = d.baseAddress else { return }
            if layout == .outIn {
                BLAS.gemm(transA: false, transB: false, m: outF, n: inF, k: r, alpha: scaling, a: b.data, lda: r, b: a.data, ldb: inF, c: dst, ldc: inF)
            } else {
                BLAS.gemm(transA: true, transB: true, m: inF, n: outF, k: r, alpha: scaling, a: a.data, lda: inF, b: b.data, ldb: r, c: dst, ldc: outF)
            }
        }
        return out
    }

    /// Adds `scaling * B A` into the base weight (PEFT's `merge`). Does nothing if merged, or
    /// if the base weight is quantised (it cannot change): the adapter then keeps adding its
    /// product in ``forward(input:baseOutput:tape:)``; ``isMerged`` tells which happened.
    public func merge(into base: Linear) {
        guard !isMerged, let weight = base.weight else { return }
        let d = delta()
        for i in 0..<weight.count { weight.data[i] += d[i] }
        isMerged = true
    }

    /// Subtracts `scaling * B A` from the base weight again (PEFT's `unmerge`).
    public func unmerge(from base: Linear) {
        guard isMerged, let weight = base.weight else { return }
        let d = delta()
        for i in 0..<weight.count { weight.data[i] -= d[i] }
        isMerged = false
    }
}

