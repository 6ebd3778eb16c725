import Foundation

/// Rotary position embedding with the rotate-half convention of Hugging Face transformers:
/// dimension `i < d/2` pairs with `i + d/2`, and `inv_freq[i] = 1 / theta^(2i/d)`.
public struct RotaryEmbedding: Sendable {
    /// The rotated width per head.
    public let headDim: Int
    /// `1 / theta^(2i / headDim)` for `i < headDim / 2`, computed in Float32 as transformers does.
    public let inverseFrequencies: [Float]

    /// Makes the frequency table.
    /// - Parameters:
    ///   - headDim: the per-head width (even).
    ///   - theta: the base (`rope_theta`).
    public init(headDim: Int, theta: Double) {
        self.headDim = headDim
        let half = headDim / 2
        let base = Float(theta)
        inverseFrequencies = (0..<half).map { i in 1 / powf(base, Float(2 * i) / Float(headDim)) }
    }

    /// Writes `cos` and `sin` of `position * inv_freq` (length `headDim / 2` each).
    @inlinable
    func angles(position: Int, cos c: UnsafeMutablePointer<Float>, sin s: UnsafeMutablePointer<Float>) {
        let p = Float(position)
        for i in 0..<inverseFrequencies.count {
            let a = p * inverseFrequencies[i]
            c[i] = cosf(a)
            s[i] = sinf(a)
        }
    }

    /// Rotates `heads` consecutive head vectors of one row in place.
    /// - Parameters:
    ///   - row: the first element of the row.
    ///   - heads: the number of heads in the row.
    ///   - inverse: apply the transposed rotation (for gradients).
    @inlinable
    func rotate(
        _ row: UnsafeMutablePointer<Float>, heads: Int, cos c: UnsafePointer<Float>, sin s: UnsafePointer<Float>,
        inverse: Bool
    ) {
        let half = headDim / 2
        for h in 0..<heads {
            let x = row + h * headDim
            for i in 0..<half {
                let a = x[i], b = x[i + half]
                let sn = inverse ? -s[i] : s[i]
                x[i] = a * c[i] - b * sn
                x[i + half] = b * c[i] + a * sn
            }
        }
    }

    /// Rotates a `[rows, heads * headDim]` buffer in place, row `r` at `positions[r]`.
    public func apply(_ data: UnsafeMutablePointer<Float>, rows: Int, heads: Int, positions: [Int], inverse: Bool = false) {
        let half = headDim / 2
        let rowWidth = heads * headDim
        // One cos/sin table per distinct position (batches repeat the same positions), when
        // the rows outnumber the positions below the largest; a decode step's few rows (at
        // late positions) compute their own angles.
        let maxPosition = positions.max() ?? 0
        let table = rows >= 8 && maxPosition < 4 * rows + 64 ? ScratchBox(count: 2 * (maxPosition + 1) * half) : nil
        if let table {
            for p in 0...maxPosition {
                angles(position: p, cos: table.pointer + 2 * p * half, sin: table.pointer + (2 * p + 1) * half)
            }
        }
        Threading.parallelChunks(rows, minChunk: 8) { r0, r1 in
            let c = UnsafeMutablePointer<Float>.allocate(capacity: max(half, 1))
            let s = UnsafeMutablePointer<Float>.allocate(capacity: max(half, 1))
            defer { c.deallocate(); s.deallocate() }
            var last = -1
            for r in r0..<r1 {
                let p = positions[r]
                if let table {
                    rotate(data + r * rowWidth, heads: heads, cos: table.pointer + 2 * p * half, sin: table.pointer + (2 * p + 1) * half, inverse: inverse)
                    continue
                }
                if p != last {
                    angles(position: p, cos: c, sin: s)
                    last = p
                }
                rotate(data + r * rowWidth, heads: heads, cos: c, sin: s, inverse: inverse)
            }
        }
    }
}

extension Tape {
    /// Applies rotary position embeddings to every head of `x`.
    /// - Parameters:
    ///   - x: `[rows, heads * headDim]`.
    ///   - rope: the frequency table.
    ///   - heads: heads per row.
    ///   - positions: one position per row.
    /// - Returns: the rotated tensor (same shape).
    public func rope(_ x: Tensor, _ rope: RotaryEmbedding, heads: Int, positions: [Int]) -> Tensor {
        let rows = x.rows
        precondition(x.columns == heads * rope.headDim, "rope: \(x.columns) columns for \(heads) heads of \(rope.headDim)")
        precondition(positions.count == rows, "rope: \(positions.count) positions for \(rows) rows")
        let y = Tensor(uninitializedShape: x.shape)
        y.data.update(from: x.data, count: x.count)
        rope.apply(y.data, rows: rows, heads: heads, positions: positions)
        guard needsGrad(x) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            let (dx, accumulate) = x.gradForWriting()
            if !accumulate {
                // Rotate dy back straight into the fresh gradient buffer.
                dx.update(from: dy, count: x.count)
                rope.apply(dx, rows: rows, heads: heads, positions: positions, inverse: true)
                return
            }
            let tmp = ScratchBox(count: x.count)
            tmp.pointer.update(from: dy, count: x.count)
            rope.apply(tmp.pointer, rows: rows, heads: heads, positions: positions, inverse: true)
            for i in 0..<x.count { dx[i] += tmp.pointer[i] }
        }
        return y
    }
}
