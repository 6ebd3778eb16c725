#!/usr/bin/env python3
"""Opens what `tally export` wrote with the Python ecosystem alone and compares greedy replies
with Tally's own (`tally generate`), side by side, counting exact matches.

Run by hand (not in CI: it needs torch and transformers, and llama-cpp-python if present):

    python3 -m venv .venv-export
    .venv-export/bin/pip install torch transformers peft gguf llama-cpp-python
    .venv-export/bin/python scripts/check_export.py --tally .build/debug/tally \
        --tally-model smollm2-135m-instruct --tally-adapter out/peft --tally-weights f32 \
        --hf out/hf --peft out/peft --peft-base PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf \
        --gguf out/gguf-f16/lora-r8-f16.gguf --gguf out/gguf-q8/lora-r8-q8_0.gguf --markdown

Prompts: three movie reviews in the quickstart recipe's chat format (its instruction and label
list as the system message, `Review: {text}` as the user message) and two general questions
(no system message: the chat template's default applies). Columns:
  * tally: `tally generate --model TALLY_MODEL [--adapter TALLY_ADAPTER] [--weights W]`, the
    reference every other column is counted against;
  * tally on each export: `tally generate --model` the hf directory and each GGUF file
    (`--gguf-weights`, default quantised: a Q8_0 file's matrices stay Q8_0);
  * transformers: AutoTokenizer + AutoModelForCausalLM on the hf directory alone, prompts
    rendered by the directory's own chat template (exit 1 when its replies differ from
    Tally's on the same directory);
  * peft: PeftModel.from_pretrained on the base model (a Hugging Face directory, or a GGUF
    file that transformers dequantises) with the peft export;
  * llama.cpp (when `llama_cpp` imports): greedy replies on each GGUF from the chat-template
    text rendered by transformers (without --hf, from the file's own chat template).
The `gguf` package also reads each file (architecture, tokenizer, chat template, tensor
types) and compares its dequantised token embeddings with the hf export's; with
--source-gguf, max |export - source| per tensor type (see compare_with_source for why a Q8_0
tensor that was Q8_0 in the source comes back exactly).
"""
import argparse
import json
import os
import subprocess
import sys

# The quickstart recipe's system message (task.instruction plus the label list, as Tally's
# PromptBuilder.systemPrompt renders it) and `Review: {text}` for three test-split reviews.
REVIEW_SYSTEM = ("Is this movie review positive or negative? Answer with one word: positive or negative.\n"
                 "Answer with exactly one of: positive, negative.")
PROMPTS = [
    {"system": REVIEW_SYSTEM, "user": "Review: If I could have looked into my future and saw how bad this movie was, "
                                      "I would go back and choose to skip it. Fortunately, you still have that option."},
    {"system": REVIEW_SYSTEM, "user": "Review: Late Marriage is an in your face family drama and black comedy that is "
                                      "filled with raw emotions conveying despair and love."},
    {"system": REVIEW_SYSTEM, "user": "Review: Prurient playthings aside, there's little to love about this English trifle."},
    {"system": None, "user": "What is the capital of France?"},
    {"system": None, "user": "Give me one tip for sleeping better."},
]


def messages(prompt):
    out = [{"role": "system", "content": prompt["system"]}] if prompt["system"] else []
    return out + [{"role": "user", "content": prompt["user"]}]


def tally_replies(args, model, adapter=None, weights=None):
    out = []
    for prompt in PROMPTS:
        cmd = [args.tally, "generate", "--model", model, "--prompt", prompt["user"], "--max-tokens", str(args.max_tokens)]
        if prompt["system"]:
            cmd += ["--system", prompt["system"]]
        if adapter:
            cmd += ["--adapter", adapter]
        if weights:
            cmd += ["--weights", weights]
        result = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out.append(result.stdout.rstrip("\n"))
    return out


def render(tokenizer):
    return [tokenizer.apply_chat_template(messages(p), tokenize=False, add_generation_prompt=True) for p in PROMPTS]


def greedy(model, tokenizer, texts, max_tokens):
    import torch

    replies = []
    for text in texts:
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            output = model.generate(**ids, max_new_tokens=max_tokens, do_sample=False)
        replies.append(tokenizer.decode(output[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
    return replies


def hf_replies(directory, max_tokens):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    model.eval()
    texts = render(tokenizer)
    return greedy(model, tokenizer, texts, max_tokens), texts


def peft_replies(adapter, base, tokenizer_directory, max_tokens):
    """PEFT's reply: the base model opened by transformers (a GGUF file is dequantised to
    Float32 by transformers' own GGUF loader), the exported adapter applied unmerged."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if base.endswith(".gguf"):
        where, extra = os.path.dirname(os.path.abspath(base)), {"gguf_file": os.path.basename(base)}
    else:
        where, extra = base, {}
    model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **extra)
    model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_directory) if tokenizer_directory else AutoTokenizer.from_pretrained(where, **extra)
    return greedy(model, tokenizer, render(tokenizer), max_tokens)


def gguf_summary(path, hf_directory, source_gguf=None):
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(path)

    def field(name):
        f = reader.fields.get(name)
        if f is None:
            return None
        return f.contents()

    types = {}
    for t in reader.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    summary = {
        "architecture": field("general.architecture"),
        "tokens": len(field("tokenizer.ggml.tokens") or []),
        "pre": field("tokenizer.ggml.pre"),
        "has_chat_template": bool(field("tokenizer.chat_template")),
        "tensors": len(reader.tensors),
        "tensor_types": types,
    }
    if source_gguf:
        summary["vs_source_gguf"] = compare_with_source(reader, source_gguf)
    if hf_directory:
        from safetensors.numpy import load_file

        weights = load_file(f"{hf_directory}/model.safetensors")
        embd = next(t for t in reader.tensors if t.name == "token_embd.weight")
        values = dequantize(embd.data, embd.tensor_type).reshape(weights["model.embed_tokens.weight"].shape)
        summary["token_embd_max_abs_diff_vs_hf"] = float(np.abs(values - weights["model.embed_tokens.weight"]).max())
    return summary


def compare_with_source(reader, source_path):
    """Max |export - source| per tensor, grouped by the tensor's type in the source GGUF.

    Why a Q8_0 export of a GGUF model can differ by exactly 0: in SmolLM2's Q4_1 file the token
    embedding is already Q8_0. Requantising Q8_0 values to Q8_0 is lossless: a block's largest
    |value| is exactly 127 x its scale, so the new scale equals the old one (already an F16) and
    every 8-bit value comes back. Tensors stored as Q4_1 in the source do change (by up to half
    a Q8_0 step). Comparing an export with Tally's own reading of the same file is 0 for every
    tensor by construction: both decode the same bytes; only a comparison with the source
    weights measures the rounding.
    """
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize

    source = {t.name: t for t in GGUFReader(source_path).tensors}
    groups = {}
    for tensor in reader.tensors:
        original = source.get(tensor.name)
        if original is None:
            continue
        a = np.asarray(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32).reshape(-1)
        b = np.asarray(dequantize(original.data, original.tensor_type), dtype=np.float32).reshape(-1)
        if a.shape != b.shape:
            continue
        key = f"{original.tensor_type.name} -> {tensor.tensor_type.name}"
        entry = groups.setdefault(key, {"tensors": 0, "max_abs_diff": 0.0})
        entry["tensors"] += 1
        entry["max_abs_diff"] = max(entry["max_abs_diff"], float(np.abs(a - b).max()))
    return groups


def llama_cpp_replies(path, texts, max_tokens):
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=1024, n_threads=2, verbose=False)
    replies = []
    if texts is None:
        # No transformers: llama.cpp renders the prompt with the file's own chat template.
        for prompt in PROMPTS:
            out = llm.create_chat_completion(messages=messages(prompt), temperature=0.0, top_k=1,
                                             top_p=1.0, repeat_penalty=1.0, max_tokens=max_tokens)
            replies.append(out["choices"][0]["message"]["content"])
        return replies
    for text in texts:
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        out = []
        for token in llm.generate(tokens, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0):
            if token == llm.token_eos() or llm.detokenize([token], special=True).decode("utf-8", "replace") in ("<|im_end|>", "<|endoftext|>"):
                break
            out.append(token)
            if len(out) >= max_tokens:
                break
        replies.append(llm.detokenize(out).decode("utf-8", "replace"))
    return replies


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tally", required=True, help="the tally binary")
    parser.add_argument("--tally-model", required=True, help="what `tally generate --model` runs")
    parser.add_argument("--tally-adapter", help="`tally generate --adapter` (a LoRA strategy's PEFT export)")
    parser.add_argument("--tally-weights", choices=["quantised", "f32"], help="`tally generate --weights` for the reference column")
    parser.add_argument("--hf", help="the hf export directory (needs torch and transformers; without it llama.cpp renders prompts itself)")
    parser.add_argument("--peft", help="the peft export directory (needs peft; with --peft-base)")
    parser.add_argument("--peft-base", help="the base model for --peft: a Hugging Face directory or a GGUF file")
    parser.add_argument("--gguf", action="append", default=[], help="a gguf export (repeatable)")
    parser.add_argument("--gguf-weights", choices=["quantised", "f32"], default="quantised",
                        help="`tally generate --weights` on the gguf exports (default quantised)")
    parser.add_argument("--source-gguf", help="the GGUF the model came from: export vs source differences per tensor type")
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--markdown", action="store_true", help="also print the replies as a Markdown table")
    args = parser.parse_args()
    if bool(args.peft) != bool(args.peft_base):
        parser.error("--peft and --peft-base go together")

    tally = tally_replies(args, args.tally_model, args.tally_adapter, args.tally_weights)
    columns = {"tally": tally}
    # Which column each one is also compared with (the same file run by Tally), besides "tally".
    pairs = {}
    hf, texts = None, None
    if args.hf:
        columns["tally hf"] = tally_replies(args, args.hf)
        hf, texts = hf_replies(args.hf, args.max_tokens)
        columns["transformers hf"] = hf
        pairs["transformers hf"] = "tally hf"
    if args.peft:
        columns["peft base+adapter"] = peft_replies(args.peft, args.peft_base, args.hf, args.max_tokens)
    report = {"gguf": {}}
    for path in args.gguf:
        name = os.path.basename(path)
        report["gguf"][path] = gguf_summary(path, args.hf, args.source_gguf)
        columns[f"tally {name}"] = tally_replies(args, path, weights=args.gguf_weights)
        try:
            columns[f"llama.cpp {name}"] = llama_cpp_replies(path, texts, args.max_tokens)
            pairs[f"llama.cpp {name}"] = f"tally {name}"
        except ImportError:
            report["gguf"][path]["llama_cpp"] = "llama_cpp not installed"
    for i, prompt in enumerate(PROMPTS):
        print(f"prompt {i + 1}: {messages(prompt)!r}")
        for name, replies in columns.items():
            same = "" if name == "tally" else ("  (= tally)" if replies[i] == tally[i] else "  (DIFFERS)")
            print(f"  {name:>34}: {replies[i]!r}{same}")
    print("exact matches:")
    for name, replies in columns.items():
        if name == "tally":
            continue
        line = f"  {name:>34}: {sum(a == b for a, b in zip(replies, tally))}/{len(PROMPTS)} equal to tally"
        if name in pairs:
            other = columns[pairs[name]]
            line += f", {sum(a == b for a, b in zip(replies, other))}/{len(PROMPTS)} equal to {pairs[name]}"
        print(line)
    if args.markdown:
        print()
        print("| prompt | " + " | ".join(columns) + " |")
        print("| --- " * (len(columns) + 1) + "|")
        for i, prompt in enumerate(PROMPTS):
            cells = [prompt["user"][:40] + ("…" if len(prompt["user"]) > 40 else "")]
            for name, replies in columns.items():
                mark = "" if name == "tally" or replies[i] == tally[i] else " ≠"
                cells.append(replies[i].replace("\n", " ").replace("|", "\\|") + mark)
            print("| " + " | ".join(cells) + " |")
    print(json.dumps(report["gguf"], indent=2))
    if hf is None:
        return 0
    if hf != columns["tally hf"]:
        print("FAIL: transformers' greedy replies on the hf export differ from Tally's on it", file=sys.stderr)
        return 1
    print("OK: transformers' greedy replies on the hf export equal Tally's on it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
