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
            for i in s..<e {
                let g = gate.data[i]
                y.data[i] = g / (1 + expf(-g)) * up.data[i]
            }
        }
        guard needsGrad(gate, up) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            let dg = gate.requiresGrad ? gate.ensureGrad() : nil
            let du = up.requiresGrad ? up.ensureGrad() : nil
            Threading.parallelChunks(n, minChunk: 1 << 14) { s, e in
                for i in s..<e {
                    let g = gate.data[i]
                    let sg = 1 / (1 + expf(-g))
                    if let dg { dg[i] += dy[i] * up.data[i] * sg * (1 + g * (1 - sg)) }
                    if let du { du[i] += dy[i] * g * sg }
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
            for i in s..<e {
                let v = x.data[i]
                y.data[i] = 0.5 * v * (1 + tanhf(k * (v + 0.044715 * v * v * v)))
            }
        }
        guard needsGrad(x) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            let dx = x.ensureGrad()
            Threading.parallelChunks(n, minChunk: 1 << 14) { s, e in
                for i in s..<e {
                    let v = x.data[i]
                    let t = tanhf(k * (v + 0.044715 * v * v * v))
                    let dt = (1 - t * t) * k * (1 + 3 * 0.044715 * v * v)
                    dx[i] += dy[i] * (0.5 * (1 + t) + 0.5 * v * dt)
                }
            }
        }
        return y
    }
}
