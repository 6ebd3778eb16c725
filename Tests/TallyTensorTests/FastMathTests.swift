import Foundation
import Testing
@testable import TallyTensor

/// The vectorised exp/tanh/sigmoid against Foundation's.
struct FastMathTests {
    @Test func expIsAccurateToAFewUlps() {
        var worst: Double = 0
        var x: Float = -80
        while x < 80 {
            let got = Double(FastMath.exp(x))
            let want = Foundation.exp(Double(x))
            worst = max(worst, abs(got - want) / want)
            x += 0.0137
        }
        #expect(worst < 1e-6)
    }

    @Test func tanhAndSigmoidMatch() {
        var worst: Float = 0
        var x: Float = -12
        while x < 12 {
            let v = FastMath.V(repeating: x)
            worst = max(worst, abs(FastMath.tanh(v)[0] - Float(Foundation.tanh(Double(x)))))
            worst = max(worst, abs(FastMath.sigmoid(v)[0] - Float(1 / (1 + Foundation.exp(-Double(x))))))
            x += 0.01
        }
        #expect(worst < 1e-6)
    }

    @Test func reductionsHandleTails() {
        let a: [Float] = (0..<19).map { Float($0) * 0.5 - 3 }
        a.withUnsafeBufferPointer { p in
            guard let base = p.baseAddress else { return }
            #expect(FastMath.max(base, 19) == 6)
            #expect(abs(FastMath.dot(base, base, 19) - a.reduce(0) { $0 + $1 * $1 }) < 1e-4)
            let want = a.reduce(0) { $0 + Foundation.exp($1 - 6) }
            #expect(abs(FastMath.expSum(base, 19, shift: 6) - want) < 1e-5)
        }
    }
}
