import Foundation
import TallyCore
import TallyTensor

/// How a model loaded for generation keeps its weight matrices: `quantised` keeps those a
/// GGUF file stores in a block format (``QuantizedMatrix/supportedTypes``) in that format and
/// multiplies with them directly; `f32` converts every weight to Float32 (training always does).
public enum WeightStorage: String, Sendable, CaseIterable {
    case quantised
    case f32
}

/// Builds models from Hugging Face directories or from weights any loader produced (the GGUF
/// loader hands over `[String: WeightTensor]` with Hugging Face names plus a config).
public enum ModelLoader {
    /// Makes the model a config describes from named weights.
    /// - Parameters:
    ///   - config: the model's shape.
    ///   - weights: tensors by Hugging Face name.
    ///   - source: the checkpoint, named in errors.
    ///   - trainable: whether parameters start with `requiresGrad`.
    ///   - quantized: matrices kept quantised, by Hugging Face name (Llama only; they never train).
    /// - Throws: `TallyError` (`invalid-model`) for a missing tensor or a shape mismatch.
    public static func model(
        config: TransformerConfig, weights: [String: WeightTensor], quantized: [String: QuantizedMatrix] = [:],
        source: String = "weights", trainable: Bool = true
    ) throws -> any CausalLanguageModel {
        switch config.architecture {
        case .llama: return try LlamaModel(config: config, weights: weights, quantized: quantized, source: source, trainable: trainable)
        case .gpt2:
            if let name = quantized.keys.sorted().first {
                throw TallyError(code: .invalidModel, message: "GPT-2 models take Float32 weights only, but '\(name)' is quantised; load with weights: f32", location: SourceLocation(file: source))
            }
            return try GPT2Model(config: config, weights: weights, source: source, trainable: trainable)
        }
    }

    /// Reads `config.json` and the weights (`model.safetensors`, or the shards listed in
    /// `model.safetensors.index.json`) of a Hugging Face model directory.
    /// - Parameter directory: the model directory.
    /// - Throws: `TallyError` naming the file that is missing or malformed.
    public static func huggingFaceDirectory(_ directory: URL) throws -> (config: TransformerConfig, weights: [String: WeightTensor]) {
        let config = try TransformerConfig.huggingFace(contentsOf: directory.appendingPathComponent("config.json"))
        let files = try weightFiles(in: directory)
        var weights: [String: WeightTensor] = [:]
        for file in files {
            for (name, t) in try SafeTensorsFile(contentsOf: file).floatTensors() { weights[name] = t }
        }
        return (config, weights)
    }

    /// The weight files of a Hugging Face model directory: `model.safetensors`, else every
    /// shard that `model.safetensors.index.json` names (sorted, each once).
    /// - Throws: `ModelFileError` when the directory has neither or the index cannot be read.
    public static func weightFiles(in directory: URL) throws -> [URL] {
        let fm = FileManager.default
        let single = directory.appendingPathComponent("model.safetensors")
        let index = directory.appendingPathComponent(shardIndexFile)
        if fm.fileExists(atPath: single.path) { return [single] }
        guard fm.fileExists(atPath: index.path) else {
            throw ModelFileError.io(directory, "no model.safetensors or \(shardIndexFile) in the model directory")
        }
        struct Index: Decodable { let weight_map: [String: String] }
        do {
            let parsed = try JSONDecoder().decode(Index.self, from: Data(contentsOf: index))
            return Set(parsed.weight_map.values).sorted().map { directory.appendingPathComponent($0) }
        } catch {
            throw ModelFileError.invalid(index, "cannot read the shard index: \(error)")
        }
    }

    /// The index of a sharded Hugging Face checkpoint.
    public static let shardIndexFile = "model.safetensors.index.json"

    /// Loads a Hugging Face model directory into a model.
    /// - Throws: `TallyError` for missing or malformed files.
    public static func load(huggingFaceDirectory directory: URL, trainable: Bool = true) throws -> any CausalLanguageModel {
        let (config, weights) = try huggingFaceDirectory(directory)
        return try model(config: config, weights: weights, source: directory.path, trainable: trainable)
    }

    /// Random weights of the right shapes (normal, `std`; norm weights 1, biases 0), for
    /// benchmarks and tests.
    /// - Parameters:
    ///   - config: the model's shape.
    ///   - seed: the generator's seed.
    ///   - std: the standard deviation of matrices and embeddings.
    public static func randomWeights(config: TransformerConfig, seed: UInt64, std: Float = 0.02) -> [String: WeightTensor] {
        let shapes = config.architecture == .llama ? LlamaModel.parameterShapes(config) : GPT2Model.parameterShapes(config)
        var rng = SeededGenerator(seed: seed)
        var out: [String: WeightTensor] = [:]
        for (name, shape) in shapes {
            let n = shape.reduce(1, *)
            let values: [Float]
            if shape.count == 1 {
                values = [Float](repeating: name.hasSuffix(".bias") ? 0 : 1, count: n)
            } else {
                values = (0..<n).map { _ in rng.nextNormal() * std }
            }
            out[name] = WeightTensor(shape: shape, values: values)
        }
        return out
    }
}
