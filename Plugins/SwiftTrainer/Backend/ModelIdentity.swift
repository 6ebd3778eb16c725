import Foundation
import TallyCore

/// The identity of a local model: what every ledger cache key and fine-tuning job key of the
/// built-in backend starts with, so an answer is reused only for the same model.
///
/// It is a SHA-256 over the contents of every file that changes the model's answers — the
/// weights (every shard), the tokenizer and chat template, the config, an adapter — named by
/// their role, not their path, plus ``answerCodeVersion``. The same weights under two paths
/// share an identity; two models with the same file name and size do not; a model
/// directory changed in place gets a new one. File digests are remembered by
/// ``FileDigestCache`` so a model is hashed once.
///
/// ```text
/// swift-trainer/a3:sha256:3f0c…               a GGUF file or a Hugging Face directory
/// swift-trainer/a3:sha256:3f0c…+lora:sha256:9ab2…  the base with a fine-tuned adapter
/// swift-trainer/a3:sha256:3f0c…+quantised       a GGUF file run on its quantised weights
/// ```
///
/// Quantised arithmetic (``WeightStorage/quantised``) gives answers that can differ from the
/// Float32 ones, so a GGUF file loaded that way has its own identity.
public enum ModelIdentity {
    /// The version of the code that turns model files into answers: tokenizer, chat template
    /// rendering, model loading and generation, and (through fine-tuning job keys, which start
    /// with the base identity) the trainer's data order.
    ///
    /// Bump it in the same commit as any change that can change an answer for the same files
    /// and request (a tokenizer fix, a template interpreter change, a sampling change, a
    /// numerical change in the forward pass), and say so in CHANGELOG.md: answers cached
    /// under the old version are then no longer reused. Changes that leave every answer
    /// as it was (speed, error messages) keep it.
    ///
    /// History: 2, fine-tuning's data order became Tally's one seeded shuffle
    /// (``DataOrder/permutation(epoch:)``), so a job trained or checkpointed before is neither
    /// reused nor resumed in the new order. 3, decode steps on quantised weights round
    /// their activations to 8 bits (``QuantizedMatrix/multiplyInt8(_:rows:into:accumulate:simd:)``)
    /// and one-query attention sums without BLAS.
    public static let answerCodeVersion = 3

    /// What every identity of the built-in backend starts with.
    public static var prefix: String { "swift-trainer/a\(answerCodeVersion)" }

    /// The identity of the model in a GGUF file or a Hugging Face directory.
    /// - Parameters:
    ///   - url: the `.gguf` file or the model directory.
    ///   - storage: how the weights are kept; `.quantised` marks the identity of a GGUF file
    ///     (a Hugging Face directory always loads as Float32).
    ///   - digests: where file digests are remembered.
    /// - Throws: `TallyError` when a file cannot be read.
    public static func of(model url: URL, storage: WeightStorage = .f32, digests: FileDigestCache) throws -> String {
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        let files = isDirectory.boolValue ? try directoryFiles(url) : [("gguf", url)]
        let arithmetic = storage == .quantised && !isDirectory.boolValue ? "+\(WeightStorage.quantised.rawValue)" : ""
        return "\(prefix):sha256:\(try combined(files, digests: digests))\(arithmetic)"
    }

    /// The identity of a tuned model: the base identity, the method and the digest of the
    /// tuned files (an adapter directory, or a saved model directory for full fine-tuning).
    /// - Parameters:
    ///   - base: the base model's identity.
    ///   - kind: `lora`, `prompt-tuning` or `full`.
    ///   - files: the tuned files, named by role.
    ///   - digests: where file digests are remembered.
    /// - Throws: `TallyError` when a file cannot be read.
    static func tuned(base: String, kind: String, files: [(role: String, url: URL)], digests: FileDigestCache) throws -> String {
        "\(base)+\(kind):sha256:\(try combined(files, digests: digests))"
    }

    /// The files of a Hugging Face model directory that change its answers, each named by
    /// its role (its name inside the directory): `config.json`, the weights or the shard
    /// index and every shard, `tokenizer.json` and `tokenizer_config.json` when present.
    /// - Throws: `ModelFileError` when the weights cannot be found.
    static func directoryFiles(_ directory: URL) throws -> [(role: String, url: URL)] {
        let fm = FileManager.default
        var files: [(role: String, url: URL)] = []
        var names = ["config.json", ModelLoader.shardIndexFile, "tokenizer.json", "tokenizer_config.json"]
        names += try ModelLoader.weightFiles(in: directory).map(\.lastPathComponent)
        for name in Set(names).sorted() {
            let url = directory.appendingPathComponent(name)
            if fm.fileExists(atPath: url.path) { files.append((name, url)) }
        }
        return files
    }

    /// SHA-256 of one `role<TAB>digest` line per file, in role order.
    static func combined(_ files: [(role: String, url: URL)], digests: FileDigestCache) throws -> String {
        var lines = ""
        for file in files.sorted(by: { $0.role < $1.role }) {
            lines += "\(file.role)\t\(try digests.digest(of: file.url))\n"
        }
        return SHA256.hexDigest(of: lines)
    }
}
