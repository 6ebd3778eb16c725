import Testing
@testable import TallyTensor

/// Compares every op's hand-written backward pass with central finite differences of a
/// random weighted sum of its output.
struct GradientCheckTests {
    /// Checks d(Σ w·f(inputs))/d(input) for the inputs that require gradients, at up to
    /// `samples` elements of each.
    func check(
        _ inputs: [Tensor], samples: Int = 24, step: Float = 1e-2, tolerance: Float = 3e-3, seed: UInt64 = 7,
        sourceLocation: SourceLocation = #_sourceLocation, _ f: (Tape, [Tensor]) -> Tensor
    ) {
        let probe = f(Tape(recording: false), inputs)
        var rng = SeededGenerator(seed: seed)
        let weights = (0..<probe.count).map { _ in rng.nextNormal() }
        let tape = Tape()
        let loss = tape.weightedSum(f(tape, inputs), weights: weights)
        tape.backward(from: loss)
        func objective() -> Double {
            let out = f(Tape(recording: false), inputs)
            var s: Double = 0
            for i in 0..<out.count { s += Double(out.data[i]) * Double(weights[i]) }
            return s
        }
        for (n, t) in inputs.enumerated() where t.requiresGrad {
            guard let g = t.grad else {
                Issue.record("input \(n) got no gradient", sourceLocation: sourceLocation)
                continue
            }
            let picks = t.count <= samples ? Array(0..<t.count) : (0..<samples).map { _ in Int(rng.next() % UInt64(t.count)) }
            for i in picks {
                let saved = t.data[i]
                t.data[i] = saved + step
                let up = objective()
                t.data[i] = saved - step
                let down = objective()
                t.data[i] = saved
                let numeric = Float((up - down) / (2 * Double(step)))
                let analytic = g[i]
                let ok = abs(numeric - analytic) <= tolerance + 2e-2 * abs(numeric)
                #expect(ok, "input \(n) element \(i): analytic \(analytic) vs numeric \(numeric)", sourceLocation: sourceLocation)
            }
        }
    }

    func random(_ shape: [Int], seed: UInt64, std: Float = 1, grad: Bool = true) -> Tensor {
        Tensor.randomNormal(shape, std: std, seed: seed, requiresGrad: grad)
    }

    @Test func linearOutIn() {
        let x = random([5, 7], seed: 1), w = random([4, 7], seed: 2), b = random([4], seed: 3)
        check([x, w, b]) { t, v in t.linear(v[0], v[1], bias: v[2]) }
    }

    @Test func linearInOut() {
        let x = random([5, 7], seed: 1), w = random([7, 4], seed: 2), b = random([4], seed: 3)
        check([x, w, b]) { t, v in t.linear(v[0], v[1], bias: v[2], layout: .inOut) }
    }

    @Test func frozenWeightGetsNoGradient() {
        let x = random([3, 4], seed: 1), w = random([2, 4], seed: 2, grad: false)
        check([x, w]) { t, v in t.linear(v[0], v[1]) }
        #expect(w.grad == nil)
        #expect(x.grad != nil)
    }

    @Test func matmul() {
        check([random([3, 5], seed: 4), random([5, 2], seed: 5)]) { t, v in t.matmul(v[0], v[1]) }
    }

    @Test func embedding() {
        let w = random([10, 6], seed: 6)
        check([w]) { t, v in t.embedding([3, 1, 3, 9, 0], weight: v[0]) }
    }

    @Test func rmsNorm() {
        check([random([4, 16], seed: 7), random([16], seed: 8)]) { t, v in t.rmsNorm(v[0], weight: v[1], eps: 1e-5) }
    }

    @Test func layerNorm() {
        check([random([4, 16], seed: 9), random([16], seed: 10), random([16], seed: 11)]) { t, v in
            t.layerNorm(v[0], weight: v[1], bias: v[2], eps: 1e-5)
        }
    }

    @Test func rope() {
        let r = RotaryEmbedding(headDim: 8, theta: 10_000)
        check([random([6, 16], seed: 12)]) { t, v in t.rope(v[0], r, heads: 2, positions: [0, 1, 2, 5, 7, 100]) }
    }

    @Test func causalAttentionGroupedHeads() {
        let (b, s, h, kvh, d) = (2, 5, 4, 2, 4)
        let q = random([b * s, h * d], seed: 13), k = random([b * s, kvh * d], seed: 14), v = random([b * s, kvh * d], seed: 15)
        check([q, k, v]) { t, x in
            t.causalAttention(q: x[0], k: x[1], v: x[2], batch: b, seq: s, heads: h, kvHeads: kvh, headDim: d)
        }
    }

    @Test func causalAttentionWithPaddingAndBlocks() {
        // 70 positions exercise more than one 64-row block; the mask pads the first 3 keys of row 1.
        let (b, s, h, kvh, d) = (2, 70, 2, 1, 4)
        let mask = (0..<b * s).map { !($0 >= s && $0 < s + 3) }
        let q = random([b * s, h * d], seed: 16), k = random([b * s, kvh * d], seed: 17), v = random([b * s, kvh * d], seed: 18)
        check([q, k, v], samples: 40) { t, x in
            t.causalAttention(q: x[0], k: x[1], v: x[2], batch: b, seq: s, heads: h, kvHeads: kvh, headDim: d, keyMask: mask)
        }
    }

    @Test func swiglu() {
        check([random([3, 8], seed: 19), random([3, 8], seed: 20)]) { t, v in t.swiglu(gate: v[0], up: v[1]) }
    }

    @Test func silu() {
        check([random([3, 8], seed: 21)]) { t, v in t.silu(v[0]) }
    }

    @Test func gelu() {
        check([random([3, 8], seed: 22, std: 2)]) { t, v in t.gelu(v[0]) }
    }

    @Test func crossEntropyIgnoresMaskedRows() {
        let logits = random([4, 9], seed: 23)
        check([logits]) { t, v in t.crossEntropy(v[0], targets: [2, -100, 8, 0]) }
        let g = logits.gradValues ?? []
        #expect(g[9..<18].allSatisfy { $0 == 0 })
    }

    @Test func elementwise() {
        check([random([2, 5], seed: 24), random([2, 5], seed: 25)]) { t, v in t.add(v[0], v[1]) }
        check([random([2, 5], seed: 26), random([2, 5], seed: 27)]) { t, v in t.mul(v[0], v[1]) }
        check([random([2, 5], seed: 28)]) { t, v in t.scale(v[0], 0.37) }
    }

    /// Ops write a fresh gradient buffer instead of zeroing and accumulating, and an addition
    /// hands its output gradient to an input without copying; an input that several ops
    /// (or both operands of one op) consume must still receive the sum of their gradients.
    @Test func inputsUsedTwiceAccumulate() {
        check([random([2, 5], seed: 40)]) { t, v in t.add(v[0], v[0]) }
        check([random([3, 8], seed: 41)]) { t, v in t.swiglu(gate: v[0], up: v[0]) }
        check([random([6, 16], seed: 42)]) { t, v in
            // h is an intermediate: the addition adopts dy as h's gradient, then rope adds to it.
            let h = t.scale(v[0], 1.5)
            return t.add(h, t.rope(h, RotaryEmbedding(headDim: 8, theta: 10_000), heads: 2, positions: [0, 1, 2, 3, 4, 5]))
        }
        check([random([4, 9], seed: 43)]) { t, v in
            let logits = t.scale(v[0], 1.0)
            return t.add(t.crossEntropy(logits, targets: [2, -100, 8, 0]), t.crossEntropy(logits, targets: [1, 3, -100, 5]))
        }
        check([random([3, 6], seed: 44), random([3, 2], seed: 45), random([6, 2], seed: 46)]) { t, v in
            // base takes over the LoRA output's gradient, then the second scale adds to it.
            let base = t.scale(v[0], 1.0)
            let other = t.scale(base, 2.0)
            return t.add(t.addScaledLinear(base, v[1], v[2], scale: 0.5), other)
        }
    }

    @Test func gatherAndSlice() {
        check([random([5, 4], seed: 29)]) { t, v in t.gatherRows(v[0], [4, 0, 4, 2]) }
        check([random([3, 9], seed: 30)]) { t, v in t.sliceColumns(v[0], start: 3, width: 4) }
    }

    @Test func prependRows() {
        let prefix = random([2, 5], seed: 11), x = random([6, 5], seed: 12)
        check([prefix, x]) { t, v in t.prependRows(v[0], to: v[1], groups: 3) }
        let y = Tape(recording: false).prependRows(prefix, to: x, groups: 3)
        #expect(y.shape == [12, 5])
        // Group 1: the prefix rows, then x's rows 2 and 3.
        #expect(Array(y.values[20..<30]) == prefix.values)
        #expect(Array(y.values[30..<40]) == Array(x.values[10..<20]))
    }

    @Test func gradientsAccumulateAcrossBackwardPasses() {
        let w = random([3, 4], seed: 31)
        let x = random([2, 4], seed: 32, grad: false)
        for _ in 0..<2 {
            let tape = Tape()
            tape.backward(from: tape.weightedSum(tape.linear(x, w), weights: [1, 1, 1, 1, 1, 1]))
        }
        let twice = w.gradValues ?? []
        w.zeroGrad()
        let tape = Tape()
        tape.backward(from: tape.weightedSum(tape.linear(x, w), weights: [1, 1, 1, 1, 1, 1]))
        let once = w.gradValues ?? []
        #expect(twice.count == 12)
        for i in 0..<12 { #expect(abs(twice[i] - 2 * once[i]) < 1e-5) }
    }
}
