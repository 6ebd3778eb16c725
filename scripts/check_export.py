#!/usr/bin/env python3
"""Opens what `tally export` wrote with the Python ecosystem alone and compares greedy replies
with Tally's own (`tally generate`), side by side.

Run by hand (not in CI: it needs torch and transformers, and llama-cpp-python if present):

    python3 -m venv .venv-export && .venv-export/bin/pip install torch transformers gguf
    .venv-export/bin/pip install llama-cpp-python     # optional; builds llama.cpp from source
    .venv-export/bin/python scripts/check_export.py --tally .build/debug/tally \
        --tally-model smollm2-135m-instruct --tally-adapter out/peft \
        --hf out/hf --gguf out/gguf-f16/lora-r8-f16.gguf --gguf out/gguf-q8/lora-r8-q8_0.gguf

--tally-model/--tally-adapter say what `tally generate` runs (the source model, with the
exported PEFT adapter applied for a LoRA strategy). Checks:
  * hf: AutoTokenizer + AutoModelForCausalLM open the directory with no other file; greedy
    replies through the directory's own chat template equal Tally's (exit 1 otherwise);
  * gguf: the `gguf` package reads the file (architecture, tokenizer, chat template, tensor
    types); its dequantised token embeddings match the hf export's (same weights);
  * llama.cpp (when `llama_cpp` imports): greedy replies on the same prompts, from the
    chat-template text rendered by transformers (reported; quantised files may differ);
  * with --source-gguf: max |export - source| per tensor type (see compare_with_source for why
    a Q8_0 tensor that was Q8_0 in the source comes back exactly).
"""
import argparse
import json
import subprocess
import sys

PROMPTS = [
    "Is this movie review positive or negative? Answer with one word: positive or negative.\n\nReview: a gorgeous, moving film with a wonderful cast.",
    "Is this movie review positive or negative? Answer with one word: positive or negative.\n\nReview: dull, overlong and badly acted.",
    "What is the capital of France?",
]


def tally_replies(args):
    out = []
    for prompt in PROMPTS:
        cmd = [args.tally, "generate", "--model", args.tally_model, "--prompt", prompt, "--max-tokens", str(args.max_tokens)]
        if args.tally_adapter:
            cmd += ["--adapter", args.tally_adapter]
        result = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out.append(result.stdout.rstrip("\n"))
    return out


def hf_replies(directory, max_tokens):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    model.eval()
    replies, texts = [], []
    for prompt in PROMPTS:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        texts.append(text)
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            output = model.generate(**ids, max_new_tokens=max_tokens, do_sample=False)
        replies.append(tokenizer.decode(output[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
    return replies, texts


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
            out = llm.create_chat_completion(messages=[{"role": "user", "content": prompt}], temperature=0.0, top_k=1,
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
    parser.add_argument("--hf", help="the hf export directory (needs torch and transformers; without it llama.cpp renders prompts itself)")
    parser.add_argument("--gguf", action="append", default=[], help="a gguf export (repeatable)")
    parser.add_argument("--source-gguf", help="the GGUF the model came from: export vs source differences per tensor type")
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()

    tally = tally_replies(args)
    columns = {"tally": tally}
    hf, texts = None, None
    if args.hf:
        hf, texts = hf_replies(args.hf, args.max_tokens)
        columns["transformers"] = hf
    report = {"prompts": PROMPTS, "gguf": {}}
    for path in args.gguf:
        report["gguf"][path] = gguf_summary(path, args.hf, args.source_gguf)
        try:
            columns[f"llama.cpp {path.rsplit('/', 1)[-1]}"] = llama_cpp_replies(path, texts, args.max_tokens)
        except ImportError:
            report["gguf"][path]["llama_cpp"] = "llama_cpp not installed"
    report["replies"] = columns
    for i, prompt in enumerate(PROMPTS):
        print(f"prompt {i + 1}: {prompt!r}")
        for name, replies in columns.items():
            same = "" if name == "tally" else ("  (= tally)" if replies[i] == tally[i] else "  (DIFFERS)")
            print(f"  {name:>34}: {replies[i]!r}{same}")
    print(json.dumps(report["gguf"], indent=2))
    if hf is None:
        return 0
    if hf != tally:
        print("FAIL: transformers' greedy replies differ from Tally's", file=sys.stderr)
        return 1
    print("OK: transformers' greedy replies equal Tally's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
