import Foundation
import Testing
@testable import SwiftTrainer
import TallyTensor

/// Access to the reference fixtures copied from the Python ecosystem into Resources/.
enum Fixtures {
    static func directory(_ name: String) throws -> URL {
        // The copied folder is the resource directory itself on Linux, a subfolder of it elsewhere.
        let url = Bundle.module.url(forResource: name, withExtension: nil)
            ?? Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Resources")
        return try #require(url, "fixture \(name) missing from the test bundle")
    }

    static func expected(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: directory(name).appendingPathComponent("expected.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The largest absolute difference, or infinity when the counts differ.
    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        guard a.count == b.count else { return .infinity }
        var worst: Float = 0
        for i in a.indices { worst = max(worst, abs(a[i] - b[i])) }
        return worst
    }
}
