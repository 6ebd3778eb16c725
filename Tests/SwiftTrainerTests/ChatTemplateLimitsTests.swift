import Foundation
import TallyCore
import Testing

@testable import SwiftTrainer

/// Chat templates come from model files: hostile or broken ones end in a clear error naming the
/// model file and the limit, never a hang, a crash or an exhausted memory.
@Suite("Chat template limits")
struct ChatTemplateLimitsTests {
    /// Renders `source` as a template from `model.gguf` and returns the error it throws.
    func failure(_ source: String, limits: ChatTemplate.Limits = .standard) throws -> ChatTemplateError {
        let template = ChatTemplate(source: source, origin: "hostile/model.gguf", limits: limits)
        let error = try #require(throws: ChatTemplateError.self) {
            _ = try template.render(messages: [.user("hi")], addGenerationPrompt: true)
        }
        #expect(error.description.contains("hostile/model.gguf"), "the error names the model file: \(error)")
        return error
    }

    func limits(iterations: Int = 1_000_000, depth: Int = 100, bytes: Int = 8 << 20, duration: Duration = .seconds(600)) -> ChatTemplate.Limits {
        ChatTemplate.Limits(loopIterations: iterations, depth: depth, outputBytes: bytes, duration: duration)
    }

    @Test("Loop iterations are bounded, nested loops included")
    func loopIterations() throws {
        let source = "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}"
        let error = try failure(source, limits: limits(iterations: 10_000))
        #expect(error.message.contains("loop iterations"))
        // Under the limit the same loops run.
        let small = "{% for a in range(10) %}{% for b in range(10) %}.{% endfor %}{% endfor %}"
        let text = try ChatTemplate(source: small, limits: limits(iterations: 110)).render(messages: [], addGenerationPrompt: false)
        #expect(text == String(repeating: ".", count: 100))
    }

    @Test("Rendering is bounded in time")
    func time() throws {
        let source = "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}{% endfor %}{% endfor %}{% endfor %}"
        let error = try failure(source, limits: limits(iterations: .max, duration: .milliseconds(50)))
        #expect(error.message.contains("time limit"))
    }

    @Test("Deep expressions, blocks and values are refused before they can overflow the stack",
          arguments: [
              "{{ " + String(repeating: "(", count: 20_000) + "1" + String(repeating: ")", count: 20_000) + " }}",
              "{{ 1" + String(repeating: " + 1", count: 20_000) + " }}",
              "{{ x" + String(repeating: ".a", count: 20_000) + " }}",
              "{{ x" + String(repeating: "|trim", count: 20_000) + " }}",
              "{{ " + String(repeating: "not ", count: 20_000) + "x }}",
              "{{ " + String(repeating: "-", count: 20_000) + "1 }}",
              "{{ " + String(repeating: "[", count: 20_000) + String(repeating: "]", count: 20_000) + " }}",
              "{{ 1 if x else" + String(repeating: " 1 if x else", count: 20_000) + " 2 }}",
              String(repeating: "{% if true %}", count: 20_000) + String(repeating: "{% endif %}", count: 20_000),
              "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}",
          ])
    func depth(source: String) throws {
        let error = try failure(source)
        #expect(error.message.contains("nesting depth"), "\(error)")
    }

    @Test("Output and the values a template builds are bounded in size",
          arguments: [
              "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
              "{{ 'x' * 9223372036854775807 }}",
              "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
              "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
              "{% set ns = namespace(x=['ab']) %}{% for i in range(90) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}",
              "{% set ns = namespace(x=['ab']) %}{% for i in range(40) %}{% set ns.x = ns.x + ns.x %}{% endfor %}",
              "{% set s = 'a' * 1000000 %}{{ s | replace('a', s) }}",
              "{% set s = 'a' * 1000000 %}{{ s.replace('', s) }}",
              "{% set s = 'a' * 1000000 %}{{ range(100000) | join(s) }}",
          ])
    func size(source: String) throws {
        let error = try failure(source)
        #expect(error.message.contains("output size"), "\(error)")
    }

    @Test("A template error from a loaded model names the model file")
    func originInSyntaxErrors() throws {
        let error = try failure("{% macro m() %}{% endmacro %}")
        #expect(error.description.hasPrefix("chat template of hostile/model.gguf, line 1, column 1:"))
    }
}
