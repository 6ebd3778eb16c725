"""Golden data for Tally's prompt tuning, from PEFT on the tiny-llama reference model.

Writes Tests/SwiftTrainerTests/Resources/tiny-llama-prompt-tuning/ (see the README there and
Tests/SwiftTrainerTests/Resources/README.md). CPU, float32, fixed seeds.

    python3 -m venv .venv-fixtures && .venv-fixtures/bin/pip install torch transformers peft safetensors
    .venv-fixtures/bin/python scripts/reference/prompt_tuning_fixtures.py

Reads the base model (config.json, model.safetensors) from the test fixtures and its tokenizer
from the llama3-style tokenizer fixture (the same file the reference model ships).
"""

import json
import os
import shutil
import sys
import tempfile

import peft
import safetensors.torch
import torch
import transformers
from peft import PeftModel, PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RES = os.path.join(ROOT, "Tests", "SwiftTrainerTests", "Resources")
BASE = os.path.join(RES, "tiny-llama")
TOKENIZER = os.path.join(RES, "tokenizers", "llama3-style", "tokenizer.json")
OUT = os.path.join(RES, "tiny-llama-prompt-tuning")

VIRTUAL = 6
INIT_TEXT = "Classify the sentiment of this review:"
TEXT_VIRTUAL = 24  # more than the text's 19 tokens: PEFT repeats them, then cuts
LR = 1e-2
STEPS = 5


def load_base():
    model = transformers.AutoModelForCausalLM.from_pretrained(BASE, torch_dtype=torch.float32)
    model.eval()
    return model


def loss_of(model, ids, labels):
    # transformers' own shifted mean cross-entropy (labels -100 ignored); PEFT prepends -100
    # labels for the virtual tokens.
    return model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss


def main():
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    forward = safetensors.torch.load_file(os.path.join(BASE, "forward.safetensors"))
    ids, labels = forward["input_ids"], forward["labels"]

    # 1. RANDOM init (standard normal), saved as PEFT saves it.
    torch.manual_seed(1234)
    config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=VIRTUAL, prompt_tuning_init=PromptTuningInit.RANDOM)
    model = get_peft_model(load_base(), config)
    model.eval()
    model.save_pretrained(os.path.join(OUT, "adapter"))
    # Name the base model as a user would (save_pretrained records its local path).
    fix_base_name(os.path.join(OUT, "adapter"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    # Logits with the soft prompt and the gradient of the loss with respect to it.
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
    out.loss.backward()
    grad = model.prompt_encoder["default"].embedding.weight.grad.detach().clone()
    safetensors.torch.save_file(
        {"input_ids": ids, "labels": labels, "logits": out.logits.detach().contiguous()},
        os.path.join(OUT, "forward.safetensors"))
    safetensors.torch.save_file({"prompt_encoder.default.embedding.weight": grad.contiguous()}, os.path.join(OUT, "grads.safetensors"))
    loss_with_prompt = out.loss.item()
    model.zero_grad(set_to_none=True)

    # Greedy generation with the KV cache (one prompt, so no padding).
    prompt_ids = ids[:1, :6]
    with torch.no_grad():
        generated = model.generate(
            input_ids=prompt_ids, attention_mask=torch.ones_like(prompt_ids), max_new_tokens=12,
            do_sample=False, eos_token_id=None, pad_token_id=1)

    # 2. Five AdamW steps with clipping, as the LoRA trajectory.
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    model.train()
    losses, norms = [], []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss = loss_of(model, ids, labels)
        loss.backward()
        losses.append(loss.item())
        norms.append(torch.nn.utils.clip_grad_norm_(params, 1.0).item())
        opt.step()
    model.eval()
    with torch.no_grad():
        final_loss = loss_of(model, ids, labels).item()
    model.save_pretrained(os.path.join(OUT, "trained"))
    fix_base_name(os.path.join(OUT, "trained"))

    # 3. TEXT init: the embeddings of the text's tokens, repeated to TEXT_VIRTUAL.
    with tempfile.TemporaryDirectory() as tok_dir:
        shutil.copy(TOKENIZER, os.path.join(tok_dir, "tokenizer.json"))
        tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=TOKENIZER)
        tokenizer.save_pretrained(tok_dir)
        text_ids = transformers.AutoTokenizer.from_pretrained(tok_dir)(INIT_TEXT)["input_ids"]
        text_config = PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM, num_virtual_tokens=TEXT_VIRTUAL, prompt_tuning_init=PromptTuningInit.TEXT,
            prompt_tuning_init_text=INIT_TEXT, tokenizer_name_or_path=tok_dir)
        text_model = get_peft_model(load_base(), text_config)
        text_model.save_pretrained(os.path.join(OUT, "text-init"))
    fix_base_name(os.path.join(OUT, "text-init"), tokenizer="tiny-llama")

    expected = {
        "num_virtual_tokens": VIRTUAL,
        "trainable_params": trainable,
        "loss_with_prompt": loss_with_prompt,
        "generate": {
            "prompt_ids": prompt_ids[0].tolist(),
            "output_ids": generated[0].tolist(),
            "greedy": True,
            "max_new_tokens": 12,
        },
        "prompt_tuning_training": {
            "optimizer": "AdamW", "lr": LR, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
            "clip_grad_norm": 1.0, "steps": STEPS, "start": "adapter", "end": "trained",
            "loss_before_each_step": losses, "grad_norm_before_clip": norms, "loss_after_last_step": final_loss,
        },
        "text_init": {
            "text": INIT_TEXT, "num_virtual_tokens": TEXT_VIRTUAL, "text_token_ids": text_ids,
        },
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(json.dumps(expected, indent=1))


def fix_base_name(directory, tokenizer=None):
    path = os.path.join(directory, "adapter_config.json")
    with open(path) as f:
        config = json.load(f)
    config["base_model_name_or_path"] = "tiny-llama"
    if tokenizer is not None:
        config["tokenizer_name_or_path"] = tokenizer
    with open(path, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    # PEFT's README.md model card is not needed by either side.
    card = os.path.join(directory, "README.md")
    if os.path.exists(card):
        os.remove(card)


if __name__ == "__main__":
    sys.exit(main())
