import Foundation
import TallyCore

/// Ships a loaded model (a fine-tuned one with its LoRA merged) in the formats serving
/// stacks open: a self-contained Hugging Face directory, or a GGUF file for llama.cpp and
/// Ollama.
///
/// ```swift
/// let local = try SwiftTrainerFineTuner(baseModel: base, baseIdentity: id).loadTuned(outcome)
/// try ModelExport.writeHuggingFace(local, to: URL(fileURLWithPath: "out/hf"))
/// try ModelExport.writeGGUF(local, to: URL(fileURLWithPath: "out/model-q8_0.gguf"), type: .q8_0, name: "lora-r8")
/// ```
public enum ModelExport {
    /// GGUF tensor encodings `writeGGUF` offers, by the name users type.
    public static let ggufTypes: [(name: String, type: GGMLType, fileType: UInt32)] = [
        ("f32", .f32, 0), ("f16", .f16, 1), ("q8_0", .q8_0, 7),
    ]

    /// Writes `config.json`, `model.safetensors`, `tokenizer.json`, `tokenizer_config.json`
    /// (with the chat template) and `generation_config.json`: a directory that transformers'
    /// `AutoTokenizer` and `AutoModelForCausalLM` open with no other file. Tokenizer files
    /// next to a Hugging Face source model are copied; a GGUF source's tokenizer is written
    /// from its metadata.
    /// - Throws: `TallyError` when a soft prompt is attached (it has no place in the
    ///   format) or a file cannot be written.
    public static func writeHuggingFace(_ local: LocalModel, to directory: URL) throws {
        try requireNoSoftPrompt(local, format: "hf")
        try HuggingFaceExport.save(
            local.model, to: directory, tokenizerFiles: SwiftTrainerFineTuner.tokenizerFiles(of: local.source),
            tokenizer: ExportTokenizer(local))
    }

    /// Writes a GGUF file llama.cpp opens: the `llama` (or `qwen2`) architecture's metadata,
    /// the tokenizer and chat template, and every weight under its llama.cpp name (Q and K
    /// rows in llama.cpp's interleaved RoPE order). One-dimensional weights stay F32, as
    /// llama.cpp's converter keeps them; with Q8_0, a matrix whose rows are not a multiple of
    /// 32 is written as F16.
    /// - Parameters:
    ///   - type: `.f32`, `.f16` or `.q8_0`.
    ///   - name: `general.name`.
    /// - Throws: `TallyError` (`invalid-model`) for an architecture or tokenizer GGUF cannot
    ///   carry, (`io`) when the file cannot be written.
    public static func writeGGUF(_ local: LocalModel, to url: URL, type: GGMLType, name: String) throws {
        try requireNoSoftPrompt(local, format: "gguf")
        guard let fileType = ggufTypes.first(where: { $0.type == type })?.fileType else {
            throw TallyError(code: .invalidModel, message: "GGUF export writes \(ggufTypes.map(\.name).joined(separator: ", ")), not \(type)")
        }
        let c = local.model.config
        guard c.architecture == .llama, !c.mlpBias else {
            throw TallyError(code: .invalidModel, message: "\(local.source.lastPathComponent) is not a llama-architecture model without MLP biases; GGUF export supports llama and qwen2 models (use --format hf)")
        }
        let qwen2 = c.attentionBias && !c.attentionOutputBias
        let arch = qwen2 ? "qwen2" : "llama"
        var writer = GGUFWriter()
        writer.metadata = [
            ("general.architecture", .string(arch)),
            ("general.name", .string(name)),
            ("general.file_type", .uint32(fileType)),
            ("general.quantization_version", .uint32(2)),
            ("general.alignment", .uint32(UInt32(GGUFWriter.alignment))),
            ("\(arch).vocab_size", .uint32(UInt32(c.vocabSize))),
            ("\(arch).context_length", .uint32(UInt32(c.maxPositions))),
            ("\(arch).embedding_length", .uint32(UInt32(c.hiddenSize))),
            ("\(arch).block_count", .uint32(UInt32(c.numLayers))),
            ("\(arch).feed_forward_length", .uint32(UInt32(c.intermediateSize))),
            ("\(arch).attention.head_count", .uint32(UInt32(c.numHeads))),
            ("\(arch).attention.head_count_kv", .uint32(UInt32(c.numKVHeads))),
            ("\(arch).attention.key_length", .uint32(UInt32(c.headDim))),
            ("\(arch).attention.value_length", .uint32(UInt32(c.headDim))),
            ("\(arch).rope.dimension_count", .uint32(UInt32(c.headDim))),
            ("\(arch).rope.freq_base", .float32(Float(c.ropeTheta))),
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(Float(c.normEps))),
        ]
        do {
            writer.metadata += try ExportTokenizer(local).tokenizer.ggufMetadata(vocabularySize: c.vocabSize)
        } catch let error as TokenizerError {
            throw error.tallyError
        }
        let weights = local.model.stateDict()
        do {
            for hfName in weights.keys.sorted(by: ggufOrder) {
                guard let weight = weights[hfName] else { continue }
                guard GGUFLlama.expectedShape(of: hfName, config: c) != nil else {
                    throw TallyError(code: .invalidModel, message: "weight '\(hfName)' has no llama.cpp name; GGUF export supports plain llama and qwen2 models (use --format hf)")
                }
                var values = weight.values
                if arch == "llama", weight.shape.count <= 2 {
                    let columns = weight.shape.count == 2 ? weight.shape[1] : 1
                    if hfName.contains("q_proj.") {
                        values = GGUFLlama.permuteRows(values, rows: weight.shape[0], columns: columns, heads: c.numHeads)
                    } else if hfName.contains("k_proj.") {
                        values = GGUFLlama.permuteRows(values, rows: weight.shape[0], columns: columns, heads: c.numKVHeads)
                    }
                }
                var tensorType = weight.shape.count == 1 ? GGMLType.f32 : type
                if tensorType == .q8_0, (weight.shape.last ?? 0) % 32 != 0 { tensorType = .f16 }
                try writer.add(GGUFLlama.ggufName(for: hfName), shape: weight.shape, values: values, as: tensorType)
            }
            try writer.write(to: url)
        } catch let error as GGUFError {
            throw error.tallyError
        }
    }

    /// Embeddings first, then the blocks in layer order, then the output (llama.cpp's order).
    static func ggufOrder(_ a: String, _ b: String) -> Bool {
        func key(_ name: String) -> (Int, Int, String) {
            if name == "model.embed_tokens.weight" { return (0, 0, name) }
            let parts = name.split(separator: ".")
            if parts.count > 3, parts[1] == "layers", let layer = Int(parts[2]) { return (1, layer, name) }
            return (2, 0, name)
        }
        return key(a) < key(b)
    }

    static func requireNoSoftPrompt(_ local: LocalModel, format: String) throws {
        if local.model.softPrompt != nil {
            throw TallyError(code: .invalidModel, message: "a prompt-tuned model keeps its soft prompt outside the weights, which the \(format) format cannot hold; export it with --format peft")
        }
    }
}
