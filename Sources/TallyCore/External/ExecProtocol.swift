import Foundation

/// Wire types of the `exec` plugin protocol (docs/plugins.md): JSON lines over an external
/// program's stdin and stdout.
public enum ExecProtocol {
    /// A JSON value, for messages whose shape depends on the method.
    public enum Value: Codable, Sendable, Hashable {
        case null
        case bool(Bool)
        case number(Double)
        case string(String)
        case array([Value])
        case object([String: Value])

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() { self = .null }
            else if let value = try? container.decode(Bool.self) { self = .bool(value) }
            else if let value = try? container.decode(Double.self) { self = .number(value) }
            else if let value = try? container.decode(String.self) { self = .string(value) }
            else if let value = try? container.decode([Value].self) { self = .array(value) }
            else { self = .object(try container.decode([String: Value].self)) }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .null: try container.encodeNil()
            case .bool(let value): try container.encode(value)
            case .number(let value): try container.encode(value)
            case .string(let value): try container.encode(value)
            case .array(let value): try container.encode(value)
            case .object(let value): try container.encode(value)
            }
        }
    }

    /// `{"id": 1, "method": "generate", "params": {...}}`
    public struct Request<Params: Encodable & Sendable>: Encodable, Sendable {
        public let id: Int
        public let method: String
        public let params: Params
    }

    /// A line from the plugin: a result, an error, or a progress notification for a
    /// pending request.
    public struct Response: Decodable, Sendable {
        public struct ErrorBody: Codable, Sendable {
            public let message: String
        }
        public struct Progress: Codable, Sendable {
            public let phase: String?
            public let completed: Int?
            public let total: Int?
            public let detail: String?
        }
        public let id: Int?
        public let result: Value?
        public let error: ErrorBody?
        public let progress: Progress?
    }

    /// `describe` parameters: which model the recipe asked for and its plugin settings.
    public struct DescribeParams: Codable, Sendable {
        public let model: String
        public let settings: [String: String]
    }

    /// `describe` result.
    public struct Description: Codable, Sendable {
        public let name: String
        public let version: String?
        public let dataLeavesMachine: Bool?
        public let fineTuningMethods: [String]?
        public let maxConcurrency: Int?

        enum CodingKeys: String, CodingKey {
            case name, version
            case dataLeavesMachine = "data_leaves_machine"
            case fineTuningMethods = "fine_tuning_methods"
            case maxConcurrency = "max_concurrency"
        }
    }

    /// `generate` parameters: a `GenerationRequest` plus the model and, for fine-tuned
    /// models, the artifact `finetune` returned.
    public struct GenerateParams: Codable, Sendable {
        public let model: String
        public let artifact: String?
        public let messages: [ChatMessage]
        public let maxTokens: Int
        public let temperature: Double
        public let topP: Double
        public let stop: [String]
        public let seed: UInt64

        public init(model: String, artifact: String?, request: GenerationRequest) {
            self.model = model
            self.artifact = artifact
            messages = request.messages
            maxTokens = request.maxTokens
            temperature = request.temperature
            topP = request.topP
            stop = request.stop
            seed = request.seed
        }

        enum CodingKeys: String, CodingKey {
            case model, artifact, messages, temperature, stop, seed
            case maxTokens = "max_tokens"
            case topP = "top_p"
        }
    }

    /// `generate` result.
    public struct Generation: Codable, Sendable {
        public let text: String
        public let usage: TokenUsageWire?
        public let computeS: Double?

        public init(text: String, usage: TokenUsageWire?, computeS: Double?) {
            self.text = text
            self.usage = usage
            self.computeS = computeS
        }

        enum CodingKeys: String, CodingKey {
            case text, usage
            case computeS = "compute_s"
        }
    }

    /// Token usage with every field optional on the wire.
    public struct TokenUsageWire: Codable, Sendable {
        public let promptTokens: Int?
        public let completionTokens: Int?
        public let cachedPromptTokens: Int?

        public init(promptTokens: Int?, completionTokens: Int?, cachedPromptTokens: Int?) {
            self.promptTokens = promptTokens
            self.completionTokens = completionTokens
            self.cachedPromptTokens = cachedPromptTokens
        }

        enum CodingKeys: String, CodingKey {
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
            case cachedPromptTokens = "cached_prompt_tokens"
        }

        var usage: TokenUsage {
            TokenUsage(promptTokens: promptTokens ?? 0, completionTokens: completionTokens ?? 0, cachedPromptTokens: cachedPromptTokens ?? 0)
        }
    }

    /// `finetune` parameters.
    public struct FineTuneParams: Codable, Sendable {
        public let model: String
        /// The training method's name (`FineTuneMethod.name`), e.g. `lora`.
        public let method: String
        /// The method's parameters (for `lora`: rank, alpha, dropout, targets, use_rslora).
        public let parameters: [String: SettingValue]
        public let options: TrainingOptions
        public let train: [TrainingExample]
        public let validation: [TrainingExample]
        public let workDirectory: String
        public let jobKey: String

        enum CodingKeys: String, CodingKey {
            case model, method, parameters, options, train, validation
            case workDirectory = "work_directory"
            case jobKey = "job_key"
        }
    }

    /// `finetune` result: `FineTuneOutcome` with optional fields.
    public struct FineTuneResult: Codable, Sendable {
        public let artifact: String
        public let wallS: Double?
        public let trainedTokens: Int?
        public let steps: Int?
        public let trainLoss: [LossPoint]?
        public let validationLoss: [LossPoint]?
        public let peakMemoryBytes: Int?
        public let billedUSD: Double?
        public let notes: [String]?

        public init(artifact: String, wallS: Double?, trainedTokens: Int?, steps: Int?, trainLoss: [LossPoint]?, validationLoss: [LossPoint]?, peakMemoryBytes: Int?, billedUSD: Double?, notes: [String]?) {
            self.artifact = artifact
            self.wallS = wallS
            self.trainedTokens = trainedTokens
            self.steps = steps
            self.trainLoss = trainLoss
            self.validationLoss = validationLoss
            self.peakMemoryBytes = peakMemoryBytes
            self.billedUSD = billedUSD
            self.notes = notes
        }

        enum CodingKeys: String, CodingKey {
            case artifact, steps, notes
            case wallS = "wall_s"
            case trainedTokens = "trained_tokens"
            case trainLoss = "train_loss"
            case validationLoss = "validation_loss"
            case peakMemoryBytes = "peak_memory_bytes"
            case billedUSD = "billed_usd"
        }
    }

    /// `open_artifact` parameters and result.
    public struct OpenArtifactParams: Codable, Sendable {
        public let model: String
        public let artifact: String
    }
    public struct OpenedArtifact: Codable, Sendable {
        /// A stable identity of the artifact (a content hash); part of cache keys.
        public let identity: String
    }

    /// `score` parameters and result (optional method, used by drift probes).
    public struct ScoreParams: Codable, Sendable {
        public let model: String
        public let artifact: String?
        public let text: String
    }
    public struct Score: Codable, Sendable {
        public let nats: Double
        public let tokens: Int
    }
}
