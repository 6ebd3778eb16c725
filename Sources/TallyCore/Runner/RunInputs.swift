import Foundation

extension Recipe {
    /// The fields every example must have: the input template's, the context template's and
    /// the target.
    public var requiredFields: [String] {
        var needed = PromptTemplate(task.input).fields
        if let context = task.context { needed += PromptTemplate(context).fields }
        needed.append(task.target)
        return needed
    }

    /// The examples of one split that a run uses: at most `run.max_examples` (test),
    /// `run.max_train_examples` or `run.max_validation_examples`, a balanced random sample
    /// drawn with `run.seed`.
    /// - Parameter split: `train`, `validation` or `test`.
    public func sampled(_ dataset: Dataset, split: String) -> Dataset {
        let limit = switch split {
        case "train": run.maxTrainExamples
        case "validation": run.maxValidationExamples
        default: run.maxExamples
        }
        return dataset.sample(limit, seed: run.seed, label: split)
    }

    /// What a strategy of this recipe was built from in a run: the sampled training and
    /// validation examples and `seed`. Lets a command rebuild a run's strategy (the prompts
    /// `tally export --format prompt` writes) exactly as the run built it.
    /// - Throws: `TallyError` when a data file cannot be read.
    public func strategyContext(seed: UInt64) throws -> StrategyContext {
        let fields = requiredFields
        let train = sampled(try DatasetLoader.load(data.train).requiring(fields), split: "train")
        let validation = try data.validation.map { sampled(try DatasetLoader.load($0).requiring(fields), split: "validation") }
        return StrategyContext(task: task, train: train.examples, validation: validation?.examples ?? [], seed: seed)
    }
}
