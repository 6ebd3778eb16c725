import Testing
@testable import TallyTensor

/// Decoding takes a different path through `Tape.linear` (few rows, no gradient) than
/// training and prefill (`sgemm`); both must give the same products.
@Suite struct LinearFewRowsTests {
    @Test(arguments: [1, 3, 4, 5, 8])
    func fewRowsEqualsSgemm(rows: Int) {
        // 37 inputs: not a multiple of the eight lanes, so the scalar tail is exercised too.
        let x = Tensor.randomNormal([rows, 37], std: 1, seed: 11)
        let w = Tensor.randomNormal([70, 37], std: 0.5, seed: 12)
        let b = Tensor.randomNormal([70], std: 0.5, seed: 13)
        for bias in [nil, b] {
            let fast = Tape(recording: false).linear(x, w, bias: bias)
            // Reference: the same product through sgemm (a larger input, of which these rows are the first).
            let padded = Tensor(zeros: [rows + fewRowsLimit, 37])
            padded.data.update(from: x.data, count: x.count)
            let reference = Tape(recording: false).linear(padded, w, bias: bias)
            for i in 0..<fast.count {
                #expect(abs(fast.data[i] - reference.data[i]) <= 1e-5 * max(1, abs(reference.data[i])), "row \(i / 70), column \(i % 70)")
            }
        }
    }
}
