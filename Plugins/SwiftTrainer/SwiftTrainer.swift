import TallyCore
import TallyTensor

/// SwiftTrainer: the built-in local backend (models, tokenizers, generation, fine-tuning).
public enum SwiftTrainer {}
