import CTallyKernels
import TallyTensor

/// A weight matrix `[rows, columns]` (`[out, in]`) kept in a GGML block format, multiplied by
/// dequantising its blocks on the fly.
///
/// Generation streams every weight once per token, so a model whose weights stay in the
/// ~4.5 bits of Q4_1 reads about a seventh of the memory of its Float32 copy. Each row is a
/// whole number of blocks (GGUF requires it), stored one row after the other as in the file.
///
/// Products (``multiply(_:rows:into:accumulate:)``):
/// - up to ``fewRowsLimit`` input rows (decoding): each weight row is dequantised once into a
///   small buffer that stays in the L1 cache and applied to every input row with SIMD
///   arithmetic, in parallel over output features;
/// - more rows (prompt processing): tiles of ``tileRows`` weight rows are dequantised into a
///   scratch tile and multiplied with `sgemm`, tiles in parallel.
///
/// The arithmetic is that of the Float32 path on the dequantised weights (Float32
/// activations), so answers differ from it only by the order of additions.
///
/// Decode steps take ``multiplyInt8(_:rows:into:accumulate:simd:)`` instead (Q8_0, Q4_0 and
/// Q4_1): each input row is rounded to 8-bit blocks of 32 values and the products run as
/// integer multiply-adds (AVX2 where the CPU has it), the arithmetic llama.cpp decodes with.
/// It reads the weights in their stored form without unpacking them to Float32, several
/// times faster, and answers differ from the Float32 path by that rounding (about 1% of
/// each block's largest value); prompt processing keeps Float32 activations.
public final class QuantizedMatrix: @unchecked Sendable {
    /// The block format.
    public let type: GGMLType
    /// Output features (rows of the stored matrix).
    public let rows: Int
    /// Input features (values per row).
    public let columns: Int
    /// Bytes of one row.
    let rowBytes: Int
    /// `rows * rowBytes` bytes, owned.
    let storage: UnsafeMutableRawPointer

    /// The block formats kept quantised (all others are converted to Float32 on loading).
    public static let supportedTypes: Set<GGMLType> = [.q8_0, .q4_0, .q4_1, .q4_K, .q6_K]
    /// Inputs with at most this many rows take the fused few-rows kernel.
    public static let fewRowsLimit = 16
    /// Weight rows dequantised per `sgemm` tile for larger inputs.
    static let tileRows = 128

    /// Copies a matrix out of GGUF tensor data.
    /// - Parameters:
    ///   - type: the block format; one of ``supportedTypes``.
    ///   - rows: output features.
    ///   - columns: input features, a multiple of the format's block size.
    ///   - bytes: the rows one after the other, at least `rows` rows' worth.
    ///   - rowOrder: stored row `i` of the copy is row `rowOrder[i]` of `bytes` (nil: as stored).
    /// - Throws: `GGUFError` (file `<tensor data>`; callers name the file) for an unsupported
    ///   format, a row length that is not a whole number of blocks, too few bytes or a bad row order.
    public init(type: GGMLType, rows: Int, columns: Int, bytes: UnsafeRawBufferPointer, rowOrder: [Int]? = nil) throws {
        guard Self.supportedTypes.contains(type), let geometry = type.blockGeometry else {
            throw GGUFError(.unsupported, file: "<tensor data>", "cannot keep \(type) weights quantised (supported: \(Self.supportedTypes.map(\.description).sorted().joined(separator: ", ")))")
        }
        guard rows > 0, columns > 0, columns % geometry.elements == 0 else {
            throw GGUFError(.malformed, file: "<tensor data>", "a \(rows) x \(columns) matrix cannot be stored as \(type): rows must hold a whole number of \(geometry.elements)-value blocks")
        }
        let rowBytes = columns / geometry.elements * geometry.bytes
        let (total, overflow) = rows.multipliedReportingOverflow(by: rowBytes)
        guard !overflow, bytes.count >= total, let source = bytes.baseAddress else {
            throw GGUFError(.truncated, file: "<tensor data>", "a \(rows) x \(columns) \(type) matrix needs \(overflow ? "more than addressable" : String(total)) bytes, only \(bytes.count) given")
        }
        if let rowOrder {
            guard rowOrder.count == rows, Set(rowOrder).count == rows, rowOrder.allSatisfy({ $0 >= 0 && $0 < rows }) else {
                throw GGUFError(.malformed, file: "<tensor data>", "the row order of a \(rows)-row matrix is not a permutation of its rows")
            }
        }
        self.type = type
        self.rows = rows
        self.columns = columns
        self.rowBytes = rowBytes
        storage = UnsafeMutableRawPointer.allocate(byteCount: total, alignment: 64)
        if let rowOrder {
            for (to, from) in rowOrder.enumerated() {
                (storage + to * rowBytes).copyMemory(from: source + from * rowBytes, byteCount: rowBytes)
            }
        } else {
            storage.copyMemory(from: source, byteCount: total)
        }
    }

    deinit { storage.deallocate() }

    /// Whether ``multiplyInt8(_:rows:into:accumulate:simd:)`` takes this format.
    public var takesInt8Activations: Bool { type == .q8_0 || type == .q4_0 || type == .q4_1 }

    /// `y = x Wᵀ` (`accumulate`: `y += x Wᵀ`) with each row of `x` rounded to 8-bit blocks
    /// (`tally_kernels_quantize_q8`) and multiplied in integers, on up to
    /// `Threading.threadCount` threads. Each output depends only on its own input row, so a
    /// request's answer does not depend on the other rows in its batch.
    /// - Parameters:
    ///   - x: `[n, columns]`.
    ///   - y: `[n, rows]`.
    ///   - simd: false forces the portable kernel (tests compare the two).
    /// - Precondition: ``takesInt8Activations``.
    public func multiplyInt8(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool, simd: Bool = true) {
        Self.multiplyInt8([(self, y)], x, rows: n, accumulate: accumulate, simd: simd)
    }

    /// ``multiplyInt8(_:rows:into:accumulate:simd:)`` for several matrices with the same
    /// input (a layer's q, k and v projections, or its gate and up projections): `x` is
    /// rounded once and all products share one parallel pass, so a decode step hands work to
    /// another thread once instead of once per matrix.
    /// - Parameters:
    ///   - products: each matrix with its output `[n, matrix.rows]`.
    ///   - x: `[n, columns]`, the same `columns` for every matrix.
    /// - Precondition: every matrix ``takesInt8Activations`` and has `x`'s columns.
    public static func multiplyInt8(
        _ products: [(matrix: QuantizedMatrix, y: UnsafeMutablePointer<Float>)], _ x: UnsafePointer<Float>, rows n: Int,
        accumulate: Bool, simd: Bool = true
    ) {
        guard n > 0, let columns = products.first?.matrix.columns else { return }
        for (m, _) in products {
            precondition(m.takesInt8Activations, "multiplyInt8: \(m.type) weights take Float32 activations")
            precondition(m.columns == columns, "multiplyInt8: matrices with \(m.columns) and \(columns) columns share one input")
        }
        let blocks = columns / 32
        let q = UnsafeMutablePointer<Int8>.allocate(capacity: n * columns)
        let scale = UnsafeMutablePointer<Float>.allocate(capacity: n * blocks)
        let sums = UnsafeMutablePointer<Int32>.allocate(capacity: n * blocks)
        defer {
            q.deallocate()
            scale.deallocate()
            sums.deallocate()
        }
        tally_kernels_quantize_q8(x, n * columns, q, scale, sums, simd ? 1 : 0)
        // The matrices' rows one after the other; a chunk of them may span several matrices.
        var starts = [0]
        for (m, _) in products { starts.append(starts[starts.count - 1] + m.rows) }
        let total = starts[starts.count - 1]
        // At least ~256k multiply-adds per chunk: handing a smaller slice to another thread
        // costs more than it saves (a thread wake-up is ~15 us on the 2-vCPU machine).
        let minChunk = max(16, (1 << 18) / (columns * n))
        Threading.parallelChunks(total, minChunk: minChunk) { g0, g1 in
            for (i, (m, y)) in products.enumerated() where starts[i] < g1 && starts[i + 1] > g0 {
                let o0 = max(g0, starts[i]) - starts[i], o1 = min(g1, starts[i + 1]) - starts[i]
                _ = tally_kernels_gemv_q8(
                    Int32(m.type.rawValue), m.storage.assumingMemoryBound(to: UInt8.self), m.rowBytes, blocks, o0, o1,
                    q, scale, sums, n, y, m.rows, accumulate ? 1 : 0, simd ? 1 : 0)
            }
        }
    }

    /// Bytes held (the matrix's memory).
    public var byteCount: Int { rows * rowBytes }

    /// Writes row `r` as `columns` Float32 values to `out`, in order.
    func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        let row = UnsafeRawPointer(storage + r * rowBytes)
        switch type.rawValue {
        case GGMLType.q8_0.rawValue:
            for b in 0..<(columns / 32) { GGUFDequantizer.q8_0(row + b * 34, out + b * 32) }
        case GGMLType.q4_0.rawValue:
            for b in 0..<(columns / 32) { GGUFDequantizer.q4_0(row + b * 18, out + b * 32) }
        case GGMLType.q4_1.rawValue:
            for b in 0..<(columns / 32) { GGUFDequantizer.q4_1(row + b * 20, out + b * 32) }
        case GGMLType.q4_K.rawValue:
            for b in 0..<(columns / 256) { GGUFDequantizer.q4_K(row + b * 144, out + b * 256) }
        case GGMLType.q6_K.rawValue:
            for b in 0..<(columns / 256) { GGUFDequantizer.q6_K(row + b * 210, out + b * 256) }
        default:
            break  // excluded by init
        }
    }

    /// Whether ``kernelRow(_:into:)`` writes each 32-value block in the order
    /// ``permuteBlockColumns(_:count:)`` gives (Q8_0, Q4_0, Q4_1), so the products permute
    /// their input's columns the same way; the K-quants keep their order.
    var permutesColumns: Bool { type == .q8_0 || type == .q4_0 || type == .q4_1 }

    /// Row `r` as the products read it: the values of ``dequantizeRow(_:into:)``, each
    /// 32-value block of Q8_0, Q4_0 and Q4_1 in the permuted order of
    /// ``permuteBlockColumns(_:count:)``, where four SIMD lanes of 32-bit words hold the block's
    /// bytes and each byte position becomes four consecutive values.
    @inline(__always)
    func kernelRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        let row = UnsafeRawPointer(storage + r * rowBytes)
        switch type.rawValue {
        case GGMLType.q8_0.rawValue:
            for b in 0..<(columns / 32) { Self.q8_0(row + b * 34, out + b * 32) }
        case GGMLType.q4_0.rawValue:
            for b in 0..<(columns / 32) { Self.q4(row + b * 18, out + b * 32, offset: false) }
        case GGMLType.q4_1.rawValue:
            for b in 0..<(columns / 32) { Self.q4(row + b * 20, out + b * 32, offset: true) }
        default:
            dequantizeRow(r, into: out)
        }
    }

    /// Reorders each 32-value block of `count` values (a multiple of 32) as ``kernelRow(_:into:)``
    /// lays out weights: position `16h + 4k + i` takes value `16h + 4i + k` (a 4 x 4
    /// transpose within each half-block, its own inverse).
    static func permuteBlockColumns(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        var base = 0
        while base < count {
            for k in 0..<4 {
                for i in 0..<4 { y[base + 4 * k + i] = x[base + 4 * i + k] }
            }
            base += 16
        }
    }

    /// Every value as Float32, row-major `[rows, columns]` (export, merging, tests).
    public func dequantized() -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * columns) { out, initialized in
            guard let base = out.baseAddress else { return }
            for r in 0..<rows { dequantizeRow(r, into: base + r * columns) }
            initialized = rows * columns
        }
    }

    typealias Words = SIMD4<UInt32>

    /// The small unsigned integers in `words` (each below 2^23) as exact Floats: a Float32
    /// with exponent bits `0x4B` and an integer `q` in its mantissa is `2^23 + q`.
    @inline(__always)
    static func floats(_ words: Words) -> SIMD4<Float> {
        unsafeBitCast(words | Words(repeating: 0x4B00_0000), to: SIMD4<Float>.self) - SIMD4<Float>(repeating: 8_388_608)
    }

    /// A Q8_0 block (`x = d·q`) in kernel order: byte `k` of the four words `v` of bytes
    /// `16h ..< 16h + 16` are values `16h + 4i + k`.
    @inline(__always)
    static func q8_0(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = SIMD4<Float>(repeating: GGUFDequantizer.half(block, 0))
        let out = UnsafeMutableRawPointer(y)
        for h in 0..<2 {
            // Flipping the sign bit maps int8 q to q + 128, an unsigned byte.
            let v = (block + 2 + 16 * h).loadUnaligned(as: Words.self) ^ Words(repeating: 0x8080_8080)
            for k in 0..<4 {
                let q = floats((v &>> UInt32(8 * k)) & 0xFF) - 128
                out.storeBytes(of: q * d, toByteOffset: 4 * (16 * h + 4 * k), as: SIMD4<Float>.self)
            }
        }
    }

    /// A Q4_0 (`x = d·(q − 8)`) or, with `offset`, Q4_1 (`x = d·q + m`) block in kernel order:
    /// the low nibbles of byte `4i + k` are values `4i + k`, the high nibbles `16 + 4i + k`.
    @inline(__always)
    static func q4(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, offset: Bool) {
        let d = SIMD4<Float>(repeating: GGUFDequantizer.half(block, 0))
        let v = (block + (offset ? 4 : 2)).loadUnaligned(as: Words.self)
        let out = UnsafeMutableRawPointer(y)
        if offset {
            let m = SIMD4<Float>(repeating: GGUFDequantizer.half(block, 2))
            for k in 0..<4 {
                let low = floats((v &>> UInt32(8 * k)) & 0x0F)
                let high = floats((v &>> UInt32(8 * k + 4)) & 0x0F)
                out.storeBytes(of: d * low + m, toByteOffset: 16 * k, as: SIMD4<Float>.self)
                out.storeBytes(of: d * high + m, toByteOffset: 64 + 16 * k, as: SIMD4<Float>.self)
            }
        } else {
            for k in 0..<4 {
                let low = floats((v &>> UInt32(8 * k)) & 0x0F) - 8
                let high = floats((v &>> UInt32(8 * k + 4)) & 0x0F) - 8
                out.storeBytes(of: d * low, toByteOffset: 16 * k, as: SIMD4<Float>.self)
                out.storeBytes(of: d * high, toByteOffset: 64 + 16 * k, as: SIMD4<Float>.self)
            }
        }
    }

    /// `x` as the kernels read it: a copy with columns permuted (``permutesColumns``), else `x`.
    /// The caller deallocates `owned` when it is not nil.
    func kernelInput(_ x: UnsafePointer<Float>, rows n: Int) -> (input: UnsafePointer<Float>, owned: UnsafeMutablePointer<Float>?) {
        guard permutesColumns else { return (x, nil) }
        let copy = UnsafeMutablePointer<Float>.allocate(capacity: n * columns)
        Self.permuteBlockColumns(x, into: copy, count: n * columns)
        return (UnsafePointer(copy), copy)
    }

    /// `y = x Wᵀ` (`accumulate`: `y += x Wᵀ`) for `x` `[n, columns]` and `y` `[n, rows]`, on
    /// up to `Threading.threadCount` threads.
    public func multiply(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        if n <= 0 { return }
        let (input, owned) = kernelInput(x, rows: n)
        defer { owned?.deallocate() }
        if n <= Self.fewRowsLimit {
            multiplyFewRows(input, rows: n, into: y, accumulate: accumulate)
        } else {
            multiplyTiled(input, rows: n, into: y, accumulate: accumulate)
        }
    }

    /// The decode kernel: each weight row dequantised once, dotted with every input row
    /// (`x` in kernel order, ``kernelInput(_:rows:)``).
    func multiplyFewRows(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        typealias V8 = SIMD8<Float>
        let inF = columns, outF = rows
        let vectorEnd = inF - inF % 8
        Threading.parallelChunks(outF, minChunk: 16) { o0, o1 in
            let w = UnsafeMutablePointer<Float>.allocate(capacity: inF)
            defer { w.deallocate() }
            for o in o0..<o1 {
                kernelRow(o, into: w)
                if n == 1 {
                    // One input row (single-stream decoding): two accumulators, no repeated rows.
                    var a0 = V8(), a1 = V8()
                    var i = 0
                    while i + 16 <= vectorEnd {
                        a0 += UnsafeRawPointer(x + i).loadUnaligned(as: V8.self) * UnsafeRawPointer(w + i).loadUnaligned(as: V8.self)
                        a1 += UnsafeRawPointer(x + i + 8).loadUnaligned(as: V8.self) * UnsafeRawPointer(w + i + 8).loadUnaligned(as: V8.self)
                        i += 16
                    }
                    var sum = (a0 + a1).sum()
                    while i < inF {
                        sum += x[i] * w[i]
                        i += 1
                    }
                    y[o] = accumulate ? y[o] + sum : sum
                } else {
                    fewRowsDot(weightRow: w, x: x, rows: n, inF: inF, y: y + o, yStride: outF, accumulate: accumulate)
                }
            }
        }
    }

    /// The prompt-processing kernel: tiles of weight rows dequantised, then `sgemm` (`x` in
    /// kernel order).
    func multiplyTiled(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let inF = columns, outF = rows, tile = Self.tileRows
        Threading.parallelChunks(outF, minChunk: tile, alignment: tile) { o0, o1 in
            let w = UnsafeMutablePointer<Float>.allocate(capacity: min(tile, o1 - o0) * inF)
            defer { w.deallocate() }
            var t0 = o0
            while t0 < o1 {
                let t1 = min(o1, t0 + tile)
                for o in t0..<t1 { kernelRow(o, into: w + (o - t0) * inF) }
                BLAS.gemm(
                    transA: false, transB: true, m: n, n: t1 - t0, k: inF, a: x, lda: inF, b: w, ldb: inF,
                    beta: accumulate ? 1 : 0, c: y + t0, ldc: outF, serial: true)
                t0 = t1
            }
        }
    }

    /// `dx += dy W` for `dy` `[n, rows]` and `dx` `[n, columns]` (the input gradient of
    /// ``multiply(_:rows:into:accumulate:)``; the weight itself never trains).
    func accumulateInputGradient(_ dy: UnsafePointer<Float>, rows n: Int, into dx: UnsafeMutablePointer<Float>) {
        let inF = columns, outF = rows, tile = Self.tileRows
        let w = UnsafeMutablePointer<Float>.allocate(capacity: min(tile, outF) * inF)
        defer { w.deallocate() }
        var t0 = 0
        while t0 < outF {
            let t1 = min(outF, t0 + tile)
            for o in t0..<t1 { dequantizeRow(o, into: w + (o - t0) * inF) }
            BLAS.gemm(
                transA: false, transB: false, m: n, n: inF, k: t1 - t0, a: dy + t0, lda: outF, b: w, ldb: inF,
                beta: 1, c: dx, ldc: inF)
            t0 = t1
        }
    }

    /// Rows `ids` as Float32, `[ids.count, columns]` (an embedding lookup).
    /// - Precondition: every id is in `0..<rows` (as ``Tape/embedding(_:weight:)`` requires).
    public func gatherRows(_ ids: [Int]) -> Tensor {
        let y = Tensor.uninitialized([ids.count, columns])
        for (i, id) in ids.enumerated() {
            precondition(id >= 0 && id < rows, "embedding: id \(id) outside vocabulary 0..<\(rows)")
            dequantizeRow(id, into: y.data + i * columns)
        }
        return y
    }
}

extension Tape {
    /// `y = x Wᵀ + b` with a quantised `W` (`[out, in]`); like ``linear(_:_:bias:layout:)``
    /// the gradient reaches `x` (and a trainable bias) but never the frozen weight.
    /// - Parameters:
    ///   - x: `[rows, in]`.
    ///   - weight: the quantised matrix.
    ///   - bias: optional `[out]`.
    /// - Returns: `[rows, out]`.
    public func linear(_ x: Tensor, _ weight: QuantizedMatrix, bias: Tensor? = nil) -> Tensor {
        let outF = weight.rows, inF = weight.columns
        precondition(x.columns == inF, "linear: input has \(x.columns) features, quantised weight [\(outF), \(inF)] expects \(inF)")
        let rows = x.rows
        let y = Tensor.uninitialized([rows, outF])
        if let bias {
            precondition(bias.count == outF, "linear: bias \(bias.shape) does not match \(outF) outputs")
            for r in 0..<rows { (y.data + r * outF).update(from: bias.data, count: outF) }
        }
        if int8Activations, !isRecording, weight.takesInt8Activations {
            weight.multiplyInt8(x.data, rows: rows, into: y.data, accumulate: bias != nil)
            return y
        }
        weight.multiply(x.data, rows: rows, into: y.data, accumulate: bias != nil)
        guard needsGrad(x, bias) else { return y }
        record(y) {
            guard let dy = y.grad else { return }
            if x.requiresGrad {
                let (dx, accumulate) = x.gradForWriting()
                if !accumulate { dx.update(repeating: 0, count: rows * inF) }
                weight.accumulateInputGradient(dy, rows: rows, into: dx)
            }
            if let bias, bias.requiresGrad {
                let db = bias.ensureGrad()
                for r in 0..<rows {
                    for c in 0..<outF { db[c] += dy[r * outF + c] }
                }
            }
        }
        return y
    }
}
