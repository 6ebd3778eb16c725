/// Hugging Face chat templates render training prompts.
extension ChatTemplate: ChatPromptFormatter {}
