import Foundation

extension Tape {
    /// SwiGLU: `silu(gate) * up`, elementwise (the Llama MLP's activation).
    /// - Parameters:
    ///   - gate: `[rows, h]`.
    ///   - up: `[rows, h]`.
    /// - Returns: `[rows, h]`.
    public func swiglu(gate: Tensor, up: Tensor) -> Tensor {
        precondition(gate.count == up.count, "swiglu: shapes \(gate.shape) and \(up.shape) differ")
        let n = gate.count
        let y = Tensor(uninitializedShape: gate.shape)
        Threading.parallelChunks(n, minChunk: 1 << 14) { s, e in
            var i = s
            while i + 8 <= e {
                let g = FastMath.load(gate.data, i)
                FastMath.store(g * FastMath.sigmoid(g) * FastMath.load(up.data, i), y.data, i)
                i += 8
            }
            while i < e {
                let g = gate.data[i]
                y.data[i] = g / (1 + FastMath.exp(-g)) * up.data[i]
                i += 1
            }
        }
        guard needsGrad(gate, up) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            // Fresh gradient buffers (the usual case) are written, not zeroed and accumulated.
            let (dg, accumulateG) = gate.requiresGrad ? gate.gradForWriting() : (nil, false)
            let (du, accumulateU) = up.requiresGrad ? up.gradForWriting() : (nil, false)
            Threading.parallelChunks(n, minChunk: 1 << 14) { s, e in
                typealias V = FastMath.V
                var i = s
                while i + 8 <= e {
                    let g = FastMath.load(gate.data, i)
                    let sg = FastMath.sigmoid(g)
                    let d = FastMath.load(dy, i)
                    if let dg {
                        let dsilu = sg * (V(repeating: 1) + g * (V(repeating: 1) - sg))
                        let v = d * FastMath.load(up.data, i) * dsilu
                        FastMath.store(accumulateG ? FastMath.load(dg, i) + v : v, dg, i)
                    }
                    if let du {
                        let v = d * g * sg
                        FastMath.store(accumulateU ? FastMath.load(du, i) + v : v, du, i)
                    }
                    i += 8
                }
                while i < e {
                    let g = gate.data[i]
                    let sg = 1 / (1 + FastMath.exp(-g))
                    if let dg {
                        let v = dy[i] * up.data[i] * sg * (1 + g * (1 - sg))
                        dg[i] = accumulateG ? dg[i] + v : v
                    }
                    if let du {
                        let v = dy[i] * g * sg
                        du[i] = accumulateU ? du[i] + v : v
                    }
                    i += 1
                }
            }
        }
        return y
    }

    /// SiLU: `x * sigmoid(x)`, elementwise.
    public func silu(_ x: Tensor) -> Tensor {
        let n = x.count
        let y = Tensor(uninitializedShape: x.shape)
        for i in 0..<n { let v = x.data[i]; y.data[i] = v / (1 + expf(-v)) }
        guard needsGrad(x) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            let dx = x.ensureGrad()
            for i in 0..<n {
                let v = x.data[i]
                let s = 1 / (1 + expf(-v))
                dx[i] += dy[i] * s * (1 + v * (1 - s))
            }
        }
        return y
    }

    /// GELU in its tanh form (`gelu_new` / `gelu_pytorch_tanh`):
    /// `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
    public func gelu(_ x: Tensor) -> Tensor {
        let n = x.count
        let y = Tensor(uninitializedShape: x.shape)
        let k: Float = 0.7978845608028654
        Threading.parallelChunks(n, minChunk: 1 << 14) { s, e in
            typealias V = FastMath.V
            var i = s
            while i + 8 <= e {
                let v = FastMath.load(x.data, i)
                let t = FastMath.tanh(V(repeating: k) * (v + V(repeating: 0.044715) * v * v * v))
                FastMath.store(V(repeating: 0.5) * v * (V(repeating: 1) + t), y.data, i)
                i += 8
            }
            while i < e {
                let v = x.data[i]
                y.data[i] = 0.5 * v * (1 + FastMath.tanh(FastMath.V(repeating: k * (v + 0.044715 * v * v * v)))[0])
                i += 1
            }
        }
        guard needsGrad(x) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            let dx = x.ensureGrad()
            Threading.parallelChunks(n, minChunk: 1 << 14) { s, e in
                typealias V = FastMath.V
                var i = s
                while i + 8 <= e {
                    let v = FastMath.load(x.data, i)
                    let t = FastMath.tanh(V(repeating: k) * (v + V(repeating: 0.044715) * v * v * v))
                    let dt = (V(repeating: 1) - t * t) * V(repeating: k) * (V(repeating: 1) + V(repeating: 3 * 0.044715) * v * v)
                    let d = FastMath.load(dy, i) * (V(repeating: 0.5) * (V(repeating: 1) + t) + V(repeating: 0.5) * v * dt)
                    FastMath.store(FastMath.load(dx, i) + d, dx, i)
                    i += 8
                }
                while i < e {
                    let v = x.data[i]
                    let t = FastMath.tanh(V(repeating: k * (v + 0.044715 * v * v * v)))[0]
                    let dt = (1 - t * t) * k * (1 + 3 * 0.044715 * v * v)
                    dx[i] += dy[i] * (0.5 * (1 + t) + 0.5 * v * dt)
                    i += 1
                }
            }
        }
        return y
    }
}
