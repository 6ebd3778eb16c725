import Foundation
import TallyCore
import Testing

@testable import SwiftTrainer

/// The reference chat prompts: messages, the rendered text and its ids.
struct ReferenceChat {
    let messages: [ChatMessage]
    let promptText: String
    let promptIDs: [Int]
    let greedyIDs: [Int]
    let greedyText: String

    static func load() throws -> [ReferenceChat] {
        let chats = try #require(try SmolLM2Expected.root()["chat"] as? [[String: Any]])
        return try chats.map { chat in
            let messages = try #require(chat["messages"] as? [[String: String]]).map { m in
                ChatMessage(role: try #require(ChatMessage.Role(rawValue: m["role"] ?? "")), content: m["content"] ?? "")
            }
            return ReferenceChat(
                messages: messages, promptText: try #require(chat["prompt_text"] as? String),
                promptIDs: try #require(chat["prompt_ids"] as? [Int]),
                greedyIDs: try #require(chat["greedy_ids"] as? [Int]),
                greedyText: try #require(chat["greedy_text"] as? String))
        }
    }

    static func smolLM2Template() throws -> String {
        try #require(try SmolLM2Expected.root()["chat_template"] as? String)
    }
}

@Suite("Chat templates")
struct ChatTemplateTests {
    @Test("SmolLM2's template renders both reference chats exactly as transformers does")
    func smolLM2Template() throws {
        let template = ChatTemplate(source: try ReferenceChat.smolLM2Template())
        #expect(!template.isFallback)
        let chats = try ReferenceChat.load()
        #expect(chats.count == 2)
        for chat in chats {
            #expect(try template.render(messages: chat.messages, addGenerationPrompt: true) == chat.promptText)
        }
        // Without the generation prompt the assistant header is left out.
        let first = try #require(chats.first)
        let bare = try template.render(messages: first.messages, addGenerationPrompt: false)
        #expect(bare + "<|im_start|>assistant\n" == first.promptText)
    }

    @Test("A model without a template falls back to ChatML")
    func chatMLFallback() throws {
        let template = ChatTemplate(source: nil)
        #expect(template.isFallback)
        let text = try template.render(messages: [.system("S"), .user("Q"), .assistant("A")], addGenerationPrompt: true)
        #expect(text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|im_start|>assistant\n")
        #expect(ChatTemplate(source: "").isFallback)
    }

    @Test("A Llama-3-style template: bos_token, filters inside concatenation, trailing header")
    func llama3Style() throws {
        let source = """
            {{- bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}
            """
        let text = try ChatTemplate.render(source: source, messages: [.user("  hi  ")], addGenerationPrompt: true, bosToken: "<|begin_of_text|>")
        #expect(text == "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    }

    @Test("trim_blocks and lstrip_blocks remove lines that hold only block tags")
    func blockWhitespace() throws {
        let source = """
            {% for m in messages %}
              {% if m.role == 'user' %}
            U:{{ m.content }}
              {% elif m.role == "assistant" %}
            A:{{ m.content }}
              {% endif %}
            {% endfor %}
            """
        let text = try ChatTemplate.render(source: source, messages: [.user("hi"), .system("x"), .assistant("yo")], addGenerationPrompt: false)
        #expect(text == "U:hi\nA:yo\n")
        let dashes = try ChatTemplate.render(source: "a  {{- ' b ' -}}  c {#- note -#} d", messages: [], addGenerationPrompt: false)
        #expect(dashes == "a b cd")
    }

    @Test("Loop variables, namespaces, tests, filters and methods")
    func expressions() throws {
        let source = """
            {%- set ns = namespace(system='') -%}
            {%- for m in messages -%}
            {%- if m.role == 'system' -%}{%- set ns.system = m.content | upper -%}{%- continue -%}{%- endif -%}
            [{{ loop.index0 }}/{{ loop.length }}{{ '*' if loop.last else '' }}]{{ m['content'].strip().replace('o', '0') }}
            {%- endfor -%}
            |{{ ns.system }}|{{ messages | length }}|{{ (messages | selectattr('role', 'equalto', 'user') | list | length) }}
            |{{ tools is defined }}|{{ tools is not defined and 'x' in 'xyz' }}|{{ [1, 2, 3][1:] }}|{{ {'a': 'é'} | tojson }}|{{ 7 // 2 }},{{ 7 % 3 }},{{ 'ab' ~ 1 }}
            """
        let text = try ChatTemplate.render(source: source, messages: [.system("be brief"), .user(" foo "), .assistant("boo")], addGenerationPrompt: false)
        #expect(text == "[1/3]f00[2/3*]b00|BE BRIEF|3|1\n|False|True|[2, 3]|{\"a\": \"\\u00e9\"}|3,1,ab1")
    }

    @Test("Unsupported syntax and template errors name the line and column")
    func errors() throws {
        let macro = #expect(throws: ChatTemplateError.self) {
            try ChatTemplate.render(source: "hello\n  {% macro m() %}x{% endmacro %}", messages: [], addGenerationPrompt: false)
        }
        #expect(macro?.line == 2)
        #expect(macro?.column == 3)
        #expect(macro?.message.contains("macro") == true)

        let raised = #expect(throws: ChatTemplateError.self) {
            try ChatTemplate.render(source: "{% if messages | length == 0 %}{{ raise_exception('Conversation is empty') }}{% endif %}", messages: [], addGenerationPrompt: false)
        }
        #expect(raised?.message.contains("Conversation is empty") == true)

        let unclosed = #expect(throws: ChatTemplateError.self) {
            try ChatTemplate.render(source: "{% for m in messages %}{{ m.content }}", messages: [], addGenerationPrompt: false)
        }
        #expect(unclosed?.message.contains("endfor") == true)

        let tag = #expect(throws: ChatTemplateError.self) {
            try ChatTemplate.render(source: "ok {{ 'x' ", messages: [], addGenerationPrompt: false)
        }
        #expect(tag?.line == 1 && tag?.column == 4)
        #expect(throws: ChatTemplateError.self) {
            try ChatTemplate.render(source: "{{ messages | frobnicate }}", messages: [], addGenerationPrompt: false)
        }
    }

    @Test(
        "SmolLM2 GGUF: the file's template renders the reference prompts and they encode to the reference ids",
        .enabled(if: FormatsFixtures.hasSmolLM2, "needs the model: run `tally models fetch smollm2-135m-instruct`"))
    func smolLM2Prompts() throws {
        let tokenizer = try BPETokenizer(gguf: try GGUFFile(url: FormatsFixtures.smolLM2))
        #expect(tokenizer.chatTemplate == (try ReferenceChat.smolLM2Template()))
        let template = ChatTemplate(tokenizer: tokenizer)
        #expect(template.bosToken == "<|im_start|>" && template.eosToken == "<|im_end|>")
        for chat in try ReferenceChat.load() {
            let text = try template.render(messages: chat.messages, addGenerationPrompt: true)
            #expect(text == chat.promptText)
            #expect(tokenizer.encode(text, addSpecialTokens: false) == chat.promptIDs)
            #expect(tokenizer.decode(chat.greedyIDs, skipSpecialTokens: false) == chat.greedyText)
        }
    }
}
