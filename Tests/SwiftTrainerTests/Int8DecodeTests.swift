import CTallyKernels
import Foundation
import Testing
import TallyCore
@testable import SwiftTrainer
import TallyTensor

/// Decode steps with 8-bit activations (`QuantizedMatrix.multiplyInt8`): the integer kernels
/// compute exactly the product of the weights with the rounded activations, the rounding
/// stays within its bound of the Float32 product, the AVX2 and portable paths agree, and an
/// answer does not depend on what else is in its batch or on the thread count.
struct Int8DecodeTests {
    static let types: [GGMLType] = [.q8_0, .q4_0, .q4_1]

    /// `x` rounded as the kernels round it: values, and each block's scale.
    static func rounded(_ x: [Float], simd: Bool = false) -> (values: [Int8], scales: [Float], sums: [Int32]) {
        let blocks = x.count / 32
        var q = [Int8](repeating: 0, count: x.count)
        var scales = [Float](repeating: 0, count: blocks)
        var sums = [Int32](repeating: 0, count: blocks)
        tally_kernels_quantize_q8(x, x.count, &q, &scales, &sums, simd ? 1 : 0)
        return (q, scales, sums)
    }

    /// `y = round(x) Wᵀ (+ y0)` in Double from the loader's dequantised weights.
    static func exactReference(_ m: QuantizedMatrix, _ x: [Float], rows n: Int, start: [Float]?) throws -> [Double] {
        let w = m.dequantized()
        let r = rounded(x)
        var y = [Double](repeating: 0, count: n * m.rows)
        for i in 0..<n {
            for o in 0..<m.rows {
                var sum = Double(start?[i * m.rows + o] ?? 0)
                for c in 0..<m.columns {
                    let xi = i * m.columns + c
                    sum += Double(w[o * m.columns + c]) * Double(r.values[xi]) * Double(r.scales[xi / 32])
                }
                y[i * m.rows + o] = sum
            }
        }
        return y
    }

    static func maxDifference(_ a: [Float], _ b: [Double]) -> Double {
        zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0
    }

    @Test(arguments: types)
    func kernelComputesTheProductWithTheRoundedActivations(_ type: GGMLType) throws {
        for columns in [64, 96, 1536] {
            for outputs in [1, 37, 300] {
                let m = try QuantizedWeightsTests.matrix(type, rows: outputs, columns: columns, seed: UInt64(columns * 7 + outputs))
                #expect(m.takesInt8Activations)
                for n in [1, 3, 17] {
                    var rng = SeededGenerator(seed: UInt64(n * 31 + columns))
                    var x = (0..<(n * columns)).map { _ in rng.nextNormal() }
                    for c in 0..<32 { x[c] = 0 }  // an all-zero block
                    let start = (0..<(n * outputs)).map { _ in rng.nextNormal() }
                    for accumulate in [false, true] {
                        let want = try Self.exactReference(m, x, rows: n, start: accumulate ? start : nil)
                        let magnitude = want.map(abs).max() ?? 1
                        for simd in [true, false] {
                            for threads in [1, 2] {
                                var y = accumulate ? start : [Float](repeating: .nan, count: n * outputs)
                                Threading.withThreadCount(threads) {
                                    x.withUnsafeBufferPointer { xp in
                                        y.withUnsafeMutableBufferPointer { yp in
                                            m.multiplyInt8(xp.baseAddress!, rows: n, into: yp.baseAddress!, accumulate: accumulate, simd: simd)
                                        }
                                    }
                                }
                                #expect(Self.maxDifference(y, want) <= 1e-5 * max(magnitude, 1),
                                    "\(type) \(n)x\(columns) -> \(outputs), accumulate \(accumulate), simd \(simd), \(threads) threads")
                            }
                        }
                    }
                }
            }
        }
    }

    /// Rounding moves each activation by at most half its block's step (`max|x| / 254`), so
    /// each output moves by at most `Σ |w| · step / 2` over the row.
    @Test(arguments: types)
    func roundingStaysWithinItsBoundOfTheFloat32Product(_ type: GGMLType) throws {
        let columns = 576, outputs = 64, n = 4
        let m = try QuantizedWeightsTests.matrix(type, rows: outputs, columns: columns, seed: 5)
        var rng = SeededGenerator(seed: 9)
        let x = (0..<(n * columns)).map { _ in rng.nextNormal() * (1 + Float(rng.next() % 8)) }
        let exact = try QuantizedWeightsTests.reference(m, x, rows: n, bias: nil)
        var y = [Float](repeating: 0, count: n * outputs)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { m.multiplyInt8(xp.baseAddress!, rows: n, into: $0.baseAddress!, accumulate: false) }
        }
        let w = m.dequantized()
        let r = Self.rounded(x)
        var moved = 0
        for i in 0..<n {
            for o in 0..<outputs {
                var bound: Float = 0
                for c in 0..<columns { bound += abs(w[o * columns + c]) * r.scales[(i * columns + c) / 32] / 2 }
                let difference = abs(y[i * outputs + o] - exact[i * outputs + o])
                #expect(difference <= bound * 1.001 + 1e-5, "\(type) row \(i) output \(o): \(difference) > \(bound)")
                if difference > 0 { moved += 1 }
            }
        }
        #expect(moved > 0, "the rounding changes the products (the test would pass for a Float32 kernel otherwise)")
    }

    @Test func avx2AndPortableRoundingAreIdentical() {
        var rng = SeededGenerator(seed: 77)
        var x = (0..<(32 * 500)).map { _ in rng.nextNormal() * Float(1 << (rng.next() % 16)) / 100 }
        for c in 0..<32 { x[c] = 0 }
        x[40] = .nan
        x[70] = .infinity
        for c in 96..<128 { x[c] = c % 2 == 0 ? 0.5 : -0.5 }  // ties at the block's edge
        let simd = Self.rounded(x, simd: true), portable = Self.rounded(x)
        #expect(simd.values == portable.values)
        #expect(simd.scales.map(\.bitPattern) == portable.scales.map(\.bitPattern))
        #expect(simd.sums == portable.sums)
        #expect(portable.values[0..<32].allSatisfy { $0 == 0 } && portable.scales[0] == 0)
        #expect(portable.values[96..<128].allSatisfy { abs($0) == 127 })
    }

    @Test func layersAppliedTogetherGiveWhatEachGivesAlone() throws {
        let layers = try [(Int(96), GGMLType.q4_1), (40, .q4_1), (40, .q8_0)].enumerated().map { i, spec in
            Linear(quantized: try QuantizedWeightsTests.matrix(spec.1, rows: spec.0, columns: 128, seed: UInt64(i + 1)), bias: nil)
        }
        var rng = SeededGenerator(seed: 3)
        let x = try Tensor(shape: [2, 128], values: (0..<256).map { _ in rng.nextNormal() })
        for threads in [1, 2] {
            Threading.withThreadCount(threads) {
                let tape = Tape(recording: false)
                tape.int8Activations = true
                let together = Linear.apply(layers, to: x, tape: tape).map(\.values)
                let alone = layers.map { $0(x, tape: tape).values }
                #expect(together == alone, "\(threads) threads")
                let float32 = layers.map { $0(x, tape: Tape(recording: false)).values }
                #expect(together != float32, "decode steps round the activations")
            }
        }
    }

    /// A request decodes to the same tokens alone, beside another one, and on 1 or 2 threads:
    /// each activation row is rounded on its own.
    @Test(arguments: types)
    func eachRequestGetsItsOwnAnswerWhateverElseIsInTheBatch(_ type: GGMLType) throws {
        let (quantised, _) = try QuantizedWeightsTests.models(type)
        let prompts = [[5, 17, 30, 2, 9, 41, 7, 25, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71], [3, 9], [44, 45, 46]]
        let options = GenerationOptions(maxNewTokens: 12)
        var alone: [[Int]] = []
        for p in prompts { alone.append(try Generator(model: quantised).generate(prompts: [p], options: options)[0].tokens) }
        for threads in [1, 2] {
            try Threading.withThreadCount(threads) {
                let together = try Generator(model: quantised).generate(prompts: prompts, options: options)
                #expect(together.map(\.tokens) == alone, "\(type), \(threads) threads")
            }
        }
    }
}
