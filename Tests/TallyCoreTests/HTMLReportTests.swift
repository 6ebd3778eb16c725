import Foundation
import Testing
import TallyTesting
@testable import TallyCore

/// The HTML report: structure, self-containment, escaping, charts and their text
/// alternatives, the sensitivity map, and the chart files linked from report.md.
@Suite struct HTMLReportTests {
    static func sample() -> (RunMeasurements, Report) {
        let measurements = SampleMeasurements.make()
        return (measurements, Report.build(from: measurements))
    }

    static func count(_ needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    @Test func pageHasEverySectionChartAndTableRow() throws {
        let (measurements, report) = Self.sample()
        let html = try HTMLRenderer(measurements: measurements).render(report)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        for id in ["summary", "tally", "accuracy-vs-cost", "cost-vs-traffic", "sensitivity", "tornado", "paired-test", "forgetting", "loss-curves", "examples", "notes"] {
            #expect(html.contains("<section id=\"\(id)\""), "missing section \(id)")
        }
        // Seven charts, each an accessible image with a title, a description and a data table.
        #expect(Self.count("<svg role=\"img\"", in: html) == 7)
        #expect(Self.count("<title id=", in: html) == 7)
        #expect(Self.count("<desc id=", in: html) == 7)
        #expect(Self.count("<details class=\"data\">", in: html) == 7)
        // The tally table: one row per strategy, recommended one marked in words.
        let body = try #require(html.range(of: "<table class=\"tally\">").map { html[$0.upperBound...] })
        let rows = try #require(body.range(of: "<tbody>").map { body[$0.upperBound...] })
        let tbody = try #require(rows.range(of: "</tbody>").map { rows[..<$0.lowerBound] })
        #expect(Self.count("<tr", in: String(tbody)) == 3)
        #expect(html.contains("zero-shot<div class=\"badges\"><span class=\"badge\">recommended</span>"))
        #expect(html.contains("Forgetting<br>knowledge") && html.contains("Forgetting<br>refusals"))
        #expect(html.contains("65.0% [")) // zero-shot accuracy with its interval
        // Drill-down: all 40 examples; filters count disagreements.
        #expect(Self.count("<li class=\"example", in: html) == 40)
        #expect(html.contains("id=\"filter-disagree\""))
    }

    @Test func pageIsSelfContained() throws {
        let (measurements, report) = Self.sample()
        let html = try HTMLRenderer(measurements: measurements).render(report)
        #expect(!html.contains("http://") && !html.contains("https://"))
        #expect(!html.contains(" src=") && !html.contains("<link") && !html.contains("@import") && !html.contains("url("))
        #expect(Self.count("<script", in: html) == 1)
    }

    @Test func tagsAreBalanced() throws {
        let (measurements, report) = Self.sample()
        let html = try HTMLRenderer(measurements: measurements).render(report)
        try HTMLStructure.checkBalanced(html)
    }

    @Test func userTextIsEscaped() throws {
        let hostile = "<script>alert('x')</script> & \"quoted\" <img src=x onerror=alert(1)>"
        let base = SampleMeasurements.make()
        let strategies = base.strategies.map { s in
            StrategyMeasurement(
                name: s.name, kind: s.kind, backend: s.backend, model: s.model, dataLeavesMachine: s.dataLeavesMachine,
                adaptsWeights: s.adaptsWeights, pricing: s.pricing,
                predictions: s.predictions.map { p in
                    Prediction(exampleID: p.exampleID, input: p.exampleID == "test-1" ? hostile : p.input, expected: p.expected,
                               output: p.exampleID == "test-2" ? hostile : p.output, answer: p.answer, score: p.score,
                               usage: p.usage, latencySeconds: p.latencySeconds, computeSeconds: p.computeSeconds, cached: p.cached)
                },
                training: s.training, probes: s.probes)
        }
        let measurements = RunMeasurements(
            runID: "run-<b>", recipeName: "reviews </title><script>alert(2)</script>", recipePath: base.recipePath,
            startedAt: base.startedAt, finishedAt: base.finishedAt, costs: base.costs, constraints: base.constraints,
            metric: base.metric, seed: base.seed, bootstrapSamples: 200, strategies: strategies, baseProbes: base.baseProbes)
        let html = try HTMLRenderer(measurements: measurements).render(Report.build(from: measurements))
        #expect(!html.contains("<script>alert"))
        #expect(!html.contains("<img"))
        #expect(!html.contains("<b>"))
        #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"))
        #expect(Self.count("<script", in: html) == 1)
        try HTMLStructure.checkBalanced(html)
    }

    @Test func withoutMeasurementsOnlyTrafficVaries() throws {
        let (_, report) = Self.sample()
        let map = Sensitivity.map(report: report, measurements: nil)
        #expect(map.multipliers == [1])
        #expect(!map.pricesVaried)
        let html = try HTMLRenderer().render(report)
        #expect(html.contains("without the run&#39;s measurements, or with no price set, prices cannot be varied"))
        // The tornado still varies traffic and the horizon, and says what it left out.
        #expect(html.contains("<section id=\"tornado\""))
        #expect(html.contains("Token prices not varied: needs the run&#39;s measurements."))
    }

    @Test func emptyRunStillRenders() throws {
        let base = SampleMeasurements.make()
        let measurements = RunMeasurements(
            runID: "empty", recipeName: "empty", recipePath: "r.yaml", startedAt: base.startedAt, finishedAt: nil,
            costs: base.costs, constraints: base.constraints, metric: "accuracy", seed: 1, bootstrapSamples: 100,
            strategies: [], baseProbes: [])
        let html = try HTMLRenderer(measurements: measurements).render(Report.build(from: measurements))
        #expect(html.contains("Incomplete run"))
        #expect(html.contains("No strategy qualifies"))
        try HTMLStructure.checkBalanced(html)
    }
}

/// The region map reruns the cost model and the decision.
@Suite struct SensitivityTests {
    @Test func recipeCellMatchesTheDecision() throws {
        let (measurements, report) = HTMLReportTests.sample()
        let map = Sensitivity.map(report: report, measurements: measurements)
        #expect(map.pricesVaried && map.axis == .tokenPrices && !map.flatAlongAxis)
        #expect(map.multipliers.count == 25 && map.volumes.count == 41)
        #expect(abs((map.multipliers.first ?? 0) - 0.1) < 1e-12 && abs((map.multipliers.last ?? 0) - 10) < 1e-9)
        #expect(map.currentWinner == report.decision.recommended)
        // At the recipe's prices zero-shot is cheaper both once and per request: it wins everywhere.
        let row = try #require(map.multipliers.firstIndex { abs($0 - 1) < 1e-9 })
        #expect(map.winners[row].allSatisfy { $0 == "zero-shot" })
    }

    @Test func tokenPricesMoveTheBreakEven() {
        let (measurements, report) = HTMLReportTests.sample()
        // At 10x token prices zero-shot costs (60 x 1.5 + 2 x 6) / 1e6 = 1.02e-4 USD per request;
        // lora-r8 costs 0.5 s x 0.10 USD/h = 1.389e-5 (compute is not a token price) plus 0.05 once.
        // Over 6 months they break even at 0.05 / ((1.02e-4 - 1.389e-5) x 6) = 94.6 requests/month.
        let map = Sensitivity.map(report: report, measurements: measurements, volumes: [90, 99, 1_000_000], multipliers: [1, 10])
        #expect(map.winners[0] == ["zero-shot", "zero-shot", "zero-shot"])
        #expect(map.winners[1] == ["zero-shot", "lora-r8", "lora-r8"])
        #expect(map.shares.first { $0.name == "zero-shot" }?.share == 4.0 / 6.0)
    }

    @Test func constraintsStillApply() {
        // min_accuracy 0.85 rules out both prompting strategies: lora-r8 or nothing.
        let measurements = SampleMeasurements.make(constraints: Constraints(minAccuracy: 0.85, maxForgetting: 0.05))
        let report = Report.build(from: measurements)
        let map = Sensitivity.map(report: report, measurements: measurements, volumes: [1000], multipliers: [1])
        // lora-r8 forgets 0.1 on refusals > 0.05: nothing qualifies anywhere.
        #expect(map.winners == [[nil]])
        #expect(map.shares.map(\.name) == ["none"])
    }
}

/// Scales, ticks and the chart files that report.md links to.
@Suite struct ChartToolkitTests {
    @Test func linearTicksAreRound() {
        let scale = Scale(domain: (0, 1), range: (0, 100))
        let ticks = scale.ticks(5)
        #expect(ticks.count == 6)
        for (tick, expected) in zip(ticks, [0, 0.2, 0.4, 0.6, 0.8, 1.0]) { #expect(abs(tick - expected) < 1e-9) }
        #expect(Scale(domain: (0.37, 0.93), range: (0, 1)).ticks(5).allSatisfy { abs(($0 * 10).rounded() - $0 * 10) < 1e-9 })
        #expect(scale(0.5) == 50)
        let inverted = Scale(domain: (0, 10), range: (200, 0))
        #expect(inverted(10) == 0 && inverted(0) == 200)
    }

    @Test func logScaleTicksArePowersOfTen() {
        let scale = Scale(domain: (100, 1_000_000), range: (0, 400), logarithmic: true)
        #expect(scale.ticks() == [100, 1000, 10_000, 100_000, 1_000_000])
        #expect(abs(scale(10_000) - 200) < 1e-9)
    }

    @Test func escapingCoversAttributesAndText() {
        #expect(Markup.escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;")
    }

    @Test func markdownLinksTheChartFilesItWrites() throws {
        let (measurements, report) = HTMLReportTests.sample()
        let renderer = MarkdownRenderer(chartsDirectory: "charts", measurements: measurements)
        let markdown = try renderer.render(report)
        let artifacts = try renderer.artifacts(for: report)
        #expect(artifacts.count == 7)
        for artifact in artifacts {
            #expect(markdown.contains("](\(artifact.path))"), "report.md does not link \(artifact.path)")
            #expect(artifact.contents.hasPrefix("<?xml"))
            #expect(artifact.contents.contains("xmlns=\"http://www.w3.org/2000/svg\""))
            try HTMLStructure.checkBalanced(artifact.contents)
        }
        // Without a charts directory the Markdown report is unchanged (no section, no files).
        #expect(try !MarkdownRenderer().render(report).contains("## Charts"))
        #expect(try MarkdownRenderer().artifacts(for: report).isEmpty)
    }

    @Test func reportFilesWritesEveryFile() throws {
        let (measurements, report) = HTMLReportTests.sample()
        let directory = FileManager.default.temporaryDirectory.appending(path: "tally-html-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let written = try ReportFiles.write(
            report, renderers: [MarkdownRenderer(chartsDirectory: "charts", measurements: measurements), JSONRenderer(), HTMLRenderer(measurements: measurements)],
            to: directory)
        let names = Set(written.map { $0.path.replacingOccurrences(of: directory.path + "/", with: "") })
        #expect(names.isSuperset(of: ["report.md", "report.json", "report.html", "charts/accuracy-vs-cost.svg", "charts/sensitivity.svg", "charts/tornado.svg"]))
        for url in written { #expect(FileManager.default.fileExists(atPath: url.path)) }
    }
}

/// A small structural check: every opened element is closed in order (void elements and
/// `<x/>` excepted); script and style contents are skipped.
enum HTMLStructure {
    struct Unbalanced: Error, CustomStringConvertible {
        let description: String
    }

    static let void: Set<String> = ["meta", "input", "br", "img", "hr", "link", "?xml", "!doctype"]

    static func checkBalanced(_ text: String) throws {
        var stack: [String] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "<") {
            guard let close = rest[open...].firstIndex(of: ">") else { throw Unbalanced(description: "unterminated tag near \(rest[open...].prefix(40))") }
            let tag = rest[rest.index(after: open)..<close]
            rest = rest[rest.index(after: close)...]
            if tag.hasPrefix("/") {
                let name = tag.dropFirst().lowercased()
                guard stack.last == name else { throw Unbalanced(description: "</\(name)> closes <\(stack.last ?? "nothing")>") }
                stack.removeLast()
                continue
            }
            let name = String(tag.prefix { !$0.isWhitespace && $0 != "/" }).lowercased()
            if tag.hasSuffix("/") || void.contains(name) { continue }
            if name == "script" || name == "style" {
                guard let end = rest.range(of: "</\(name)>") else { throw Unbalanced(description: "<\(name)> never closed") }
                rest = rest[end.upperBound...]
                continue
            }
            stack.append(name)
        }
        if !stack.isEmpty { throw Unbalanced(description: "unclosed: \(stack.joined(separator: ", "))") }
    }
}
