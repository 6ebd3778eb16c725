import Foundation
import Testing
@testable import TallyCore

/// The report says when a recipe named a moving alias, with the snapshots the provider served.
struct ReportServedModelTests {
    static func strategy(_ name: String, model: String, served: [String?]) -> StrategyMeasurement {
        let predictions = served.enumerated().map { index, snapshot in
            Prediction(exampleID: "t\(index)", input: "q", expected: "a", output: "a", answer: "a", score: 1, usage: TokenUsage(promptTokens: 5, completionTokens: 1), latencySeconds: 0.1, computeSeconds: nil, cached: false, servedModel: snapshot)
        }
        return StrategyMeasurement(name: name, kind: "zero-shot", backend: "hosted", model: model, dataLeavesMachine: true, adaptsWeights: false, pricing: Pricing(inputPerMTok: 1, outputPerMTok: 2), predictions: predictions, training: nil, probes: [])
    }

    @Test("a moving alias gets a note naming the snapshots served; a pinned snapshot gets none")
    func notes() {
        let notes = Report.servedModels([
            Self.strategy("aliased", model: "openai|https://api.openai.com/v1|gpt-4o-latest", served: ["gpt-4o-2024-11-20", "gpt-4o-2024-11-20"]),
            Self.strategy("pinned", model: "openai|https://api.openai.com/v1|gpt-4o-2024-08-06", served: ["gpt-4o-2024-08-06"]),
            Self.strategy("drifted", model: "openai|http://localhost:8000/v1|served", served: ["model-a", "model-b"]),
        ])
        #expect(notes.count == 2)
        #expect(notes[0].contains("aliased") && notes[0].contains("'gpt-4o-latest'") && notes[0].contains("gpt-4o-2024-11-20"))
        #expect(notes[1].contains("drifted") && notes[1].contains("model-a, model-b"))
    }

    @Test("predictions keep the served snapshot through JSON (the ledger's measurements)")
    func codable() throws {
        let strategy = Self.strategy("aliased", model: "m", served: ["snap-1"])
        let data = try JSONEncoder().encode(strategy.predictions[0])
        #expect(try JSONDecoder().decode(Prediction.self, from: data).servedModel == "snap-1")
        // Measurements written before the field existed still read.
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        object.removeValue(forKey: "servedModel")
        let old = try JSONSerialization.data(withJSONObject: object)
        #expect(try JSONDecoder().decode(Prediction.self, from: old).servedModel == nil)
    }
}
