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
/// activations, no quantised dot products), so answers differ from it only by the order of
/// additions.
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

    /// Bytes held (the matrix's memory).
    public var byteCount: Int { rows * rowBytes }

    /// Writes row `r` as `columns` Float32 values to `out`.
    @inline(__always)
    func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        let row = UnsafeRawPointer(storage + r * rowBytes)
        switch type.rawValue {
        case GGMLType.q8_0.rawValue:
            for b in 0..<(columns / 32) { Self.q8_0(row + b * 34, out + b * 32) }
        case GGMLType.q4_0.rawValue:
            for b in 0..<(columns / 32) { Self.q4(row + b * 18, out + b * 32, offset: false) }
        case GGMLType.q4_1.rawValue:
            for b in 0..<(columns / 32) { Self.q4(row + b * 20, out + b * 32, offset: true) }
        case GGMLType.q4_K.rawValue:
            for b in 0..<(columns / 256) { GGUFDequantizer.q4_K(row + b * 144, out + b * 256) }
        case GGMLType.q6_K.rawValue:
            for b in 0..<(columns / 256) { GGUFDequantizer.q6_K(row + b * 210, out + b * 256) }
        default:
            break  // excluded by init
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

    /// A Q8_0 block with SIMD: `x = d·q`.
    @inline(__always)
    static func q8_0(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = GGUFDequantizer.half(block, 0)
        let q = (block + 2).loadUnaligned(as: SIMD32<Int8>.self)
        let out = UnsafeMutableRawPointer(y)
        out.storeBytes(of: SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: q.lowHalf)) * d, as: SIMD16<Float>.self)
        out.storeBytes(of: SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: q.highHalf)) * d, toByteOffset: 64, as: SIMD16<Float>.self)
    }

    /// A Q4_0 (`x = d·(q − 8)`) or, with `offset`, Q4_1 (`x = d·q + m`) block with SIMD.
    @inline(__always)
    static func q4(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, offset: Bool) {
        let d = GGUFDequantizer.half(block, 0)
        let raw = (block + (offset ? 4 : 2)).loadUnaligned(as: SIMD16<UInt8>.self)
        let low = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: raw & 0x0F))
        let high = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: raw &>> 4))
        let out = UnsafeMutableRawPointer(y)
        if offset {
            let m = GGUFDequantizer.half(block, 2)
            out.storeBytes(of: low * d + m, as: SIMD16<Float>.self)
            out.storeBytes(of: high * d + m, toByteOffset: 64, as: SIMD16<Float>.self)
        } else {
            out.storeBytes(of: (low - 8) * d, as: SIMD16<Float>.self)
            out.storeBytes(of: (high - 8) * d, toByteOffset: 64, as: SIMD16<Float>.self)
        }
    }

    /// `y = x Wᵀ` (`accumulate`: `y += x Wᵀ`) for `x` `[n, columns]` and `y` `[n, rows]`, on
    /// up to `Threading.threadCount` threads.
    public func multiply(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        if n <= 0 { return }
        if n <= Self.fewRowsLimit {
            multiplyFewRows(x, rows: n, into: y, accumulate: accumulate)
        } else {
            multiplyTiled(x, rows: n, into: y, accumulate: accumulate)
        }
    }

    /// The decode kernel: each weight row dequantised once, dotted with every input row.
    func multiplyFewRows(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        typealias V8 = SIMD8<Float>
        let inF = columns, outF = rows
        let vectorEnd = inF - inF % 8
        Threading.parallelChunks(outF, minChunk: 16) { o0, o1 in
            let w = UnsafeMutablePointer<Float>.allocate(capacity: inF)
            defer { w.deallocate() }
            for o in o0..<o1 {
                dequantizeRow(o, into: w)
                var r0 = 0
                while r0 < n {
                    let x0 = x + r0 * inF
                    let x1 = x + min(r0 + 1, n - 1) * inF
                    let x2 = x + min(r0 + 2, n - 1) * inF
                    let x3 = x + min(r0 + 3, n - 1) * inF
                    var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8()
                    var i = 0
                    while i < vectorEnd {
                        let wv = UnsafeRawPointer(w + i).loadUnaligned(as: V8.self)
                        a0 += UnsafeRawPointer(x0 + i).loadUnaligned(as: V8.self) * wv
                        a1 += UnsafeRawPointer(x1 + i).loadUnaligned(as: V8.self) * wv
                        a2 += UnsafeRawPointer(x2 + i).loadUnaligned(as: V8.self) * wv
                        a3 += UnsafeRawPointer(x3 + i).loadUnaligned(as: V8.self) * wv
                        i += 8
                    }
                    var sums = (a0.sum(), a1.sum(), a2.sum(), a3.sum())
                    for j in vectorEnd..<inF {
                        sums.0 += x0[j] * w[j]
                        sums.1 += x1[j] * w[j]
                        sums.2 += x2[j] * w[j]
                        sums.3 += x3[j] * w[j]
                    }
                    func store(_ k: Int, _ sum: Float) {
                        guard r0 + k < n else { return }
                        let out = y + (r0 + k) * outF + o
                        out.pointee = accumulate ? out.pointee + sum : sum
                    }
                    store(0, sums.0)
                    store(1, sums.1)
                    store(2, sums.2)
                    store(3, sums.3)
                    r0 += 4
                }
            }
        }
    }

    /// The prompt-processing kernel: tiles of weight rows dequantised, then `sgemm`.
    func multiplyTiled(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let inF = columns, outF = rows, tile = Self.tileRows
        Threading.parallelChunks(outF, minChunk: tile, alignment: tile) { o0, o1 in
            let w = UnsafeMutablePointer<Float>.allocate(capacity: min(tile, o1 - o0) * inF)
            defer { w.deallocate() }
            var t0 = o0
            while t0 < o1 {
                let t1 = min(o1, t0 + tile)
                for o in t0..<t1 { dequantizeRow(o, into: w + (o - t0) * inF) }
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
