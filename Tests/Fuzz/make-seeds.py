#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (Tests/Fuzz/Corpus/<target>/) from the test
fixtures and a few small crafted files. Run from anywhere; it overwrites the seed-* files only,
so regression inputs (crash-*, named after the bug they found) stay."""
import json, os, struct, glob

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.path.join(ROOT, "Tests", "Fuzz", "Corpus")


def put(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


# GGUF: a tiny model with a byte-level BPE tokenizer, a chat template and tensors of several types.
def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_value(kind, value):
    if kind == "str":
        return struct.pack("<I", 8) + gguf_string(value)
    if kind == "u32":
        return struct.pack("<II", 4, value)
    if kind == "f32":
        return struct.pack("<If", 6, value)
    if kind == "bool":
        return struct.pack("<IB", 7, 1 if value else 0)
    if kind == "strs":
        return struct.pack("<IIQ", 9, 8, len(value)) + b"".join(gguf_string(v) for v in value)
    if kind == "i32s":
        return struct.pack("<IIQ", 9, 5, len(value)) + b"".join(struct.pack("<i", v) for v in value)
    raise ValueError(kind)


def gguf(metadata, tensors, alignment=32):
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for key, kind, value in metadata:
        out += gguf_string(key) + gguf_value(kind, value)
    offsets, offset = [], 0
    for _, _, _, data in tensors:
        offsets.append(offset)
        offset = (offset + len(data) + alignment - 1) // alignment * alignment
    for (name, dims, ggml_type, _), tensor_offset in zip(tensors, offsets):
        out += gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ggml_type, tensor_offset)
    out += b"\0" * (-len(out) % alignment)
    start = len(out)
    for (_, _, _, data), tensor_offset in zip(tensors, offsets):
        out += b"\0" * (start + tensor_offset - len(out)) + data
    return out


tokens = ["a", "b", "ab", "\u0120", "\u0120ab", "c", "<|im_start|>", "<|im_end|>"]
tokenizer_meta = [
    ("general.architecture", "str", "llama"),
    ("tokenizer.ggml.model", "str", "gpt2"),
    ("tokenizer.ggml.pre", "str", "smollm"),
    ("tokenizer.ggml.tokens", "strs", tokens),
    ("tokenizer.ggml.token_type", "i32s", [1, 1, 1, 1, 1, 1, 3, 3]),
    ("tokenizer.ggml.merges", "strs", ["a b", "\u0120 ab"]),
    ("tokenizer.ggml.bos_token_id", "u32", 6),
    ("tokenizer.ggml.eos_token_id", "u32", 7),
    ("tokenizer.ggml.add_bos_token", "bool", True),
    ("tokenizer.chat_template", "str", "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"),
]
model_meta = [
    ("llama.block_count", "u32", 1), ("llama.embedding_length", "u32", 8), ("llama.feed_forward_length", "u32", 16),
    ("llama.attention.head_count", "u32", 2), ("llama.attention.head_count_kv", "u32", 1),
    ("llama.context_length", "u32", 64), ("llama.rope.freq_base", "f32", 10000.0),
    ("llama.attention.layer_norm_rms_epsilon", "f32", 1e-5),
]
f32 = struct.pack("<8f", *[0.5 * i for i in range(8)])
q8_0 = struct.pack("<e", 0.25) + bytes(range(32))
put("fuzz-gguf", "tokenizer.gguf", gguf(tokenizer_meta, []))
put("fuzz-gguf", "model.gguf", gguf(tokenizer_meta + model_meta, [
    ("token_embd.weight", [8, 1], 0, f32), ("blk.0.attn_norm.weight", [8], 0, f32),
    ("blk.0.ffn_up.weight", [32, 1], 8, q8_0), ("output_norm.weight", [8], 1, struct.pack("<8e", *[1.0] * 8)),
]))
put("fuzz-gguf", "empty.gguf", gguf([], []))

# safetensors: the small fixtures, and a hand-written one with several dtypes.
for path in sorted(glob.glob(os.path.join(ROOT, "Tests/SwiftTrainerTests/Resources/tiny-llama-lora*/**/adapter_model.safetensors"), recursive=True))[:2]:
    put("fuzz-safetensors", os.path.basename(os.path.dirname(path)) + ".safetensors", read(path))
header = json.dumps({"__metadata__": {"format": "pt"},
                     "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                     "h": {"dtype": "F16", "shape": [2], "data_offsets": [16, 20]},
                     "b": {"dtype": "BF16", "shape": [2], "data_offsets": [20, 24]},
                     "i": {"dtype": "I64", "shape": [1], "data_offsets": [24, 32]}}).encode()
header += b" " * (-len(header) % 8)
put("fuzz-safetensors", "dtypes.safetensors", struct.pack("<Q", len(header)) + header + struct.pack("<4f", 1, 2, 3, 4) + struct.pack("<2e", 1, -2) + b"\x80\x3f\x00\x40" + struct.pack("<q", 7))

# tokenizer.json: the two reference tokenizers and a tiny one with every supported part.
for style in ["gpt2-style", "llama3-style"]:
    put("fuzz-tokenizer-json", style + ".json", read(f"Tests/SwiftTrainerTests/Resources/tokenizers/{style}/tokenizer.json"))
put("fuzz-tokenizer-json", "tiny.json", json.dumps({
    "added_tokens": [{"id": 6, "content": "<eos>", "special": True}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}]},
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<eos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                       "special_tokens": {"<eos>": {"id": "<eos>", "ids": [6], "tokens": ["<eos>"]}}},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3, "\u0120ab": 4, "c": 5}, "merges": ["a b", ["\u0120", "ab"]]},
}))

# Chat templates: SmolLM2's (from the reference fixture) and the shapes other families use.
expected = json.loads(read("Tests/SwiftTrainerTests/Resources/smollm2/expected.json"))
put("fuzz-chat-template", "smollm2.jinja", expected["chat_template"])
put("fuzz-chat-template", "chatml.jinja", "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
put("fuzz-chat-template", "llama3.jinja", "{{- bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
put("fuzz-chat-template", "features.jinja", """{%- set ns = namespace(system='', n=0) -%}
{%- for m in messages if m.role != 'tool' -%}
  {%- if loop.first and m['role'] == 'system' %}{% set ns.system = m.content | trim %}{% continue %}{% endif -%}
  {%- set ns.n = ns.n + 1 -%}
  [{{ loop.index0 }}/{{ loop.length }}] {{ m.role | upper }}: {{ m.content[:20] ~ ('...' if m.content | length > 20 else '') }}
  {%- if m.content is string and 'stop' in m.content %}{% break %}{% endif %}
{% else %}none{%- endfor %}
{{ ns.system.split(' ') | join('-') }} {{ {'a': [1, 2.5, none, true]} | tojson }} {{ range(3) | list }} {{ (7 // 2, 7 % 3, -1)[0] if false else 7 // 2 }}
{%- if not add_generation_prompt %}{{ raise_exception('needs a prompt') }}{% endif %}{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}""")

# Recipes: every example recipe and the test recipes.
for path in sorted(glob.glob(os.path.join(ROOT, "Recipes/*.yaml")) + glob.glob(os.path.join(ROOT, "Tests/*/Resources/recipes/*.yaml"))):
    # The fuzz target's workspace has data/{train,test,validation}.jsonl and probes/*.jsonl;
    # the example recipes' cached data sets would make every execution read thousands of rows.
    text = read(path).replace(b"cache:data/vader-movie-reviews/", b"data/")
    put("fuzz-recipe", os.path.relpath(path, ROOT).replace("/", "_"), text)

# Data files: the first byte picks the format (0 JSONL, 1 CSV, 2 TSV, 3 probe).
for path in sorted(glob.glob(os.path.join(ROOT, "Tests/TallyCoreTests/Resources/data/**/*.*"), recursive=True)):
    ext = os.path.splitext(path)[1]
    selector = {".jsonl": 0, ".csv": 1, ".tsv": 2}.get(ext)
    if selector is not None:
        put("fuzz-data", os.path.basename(path), bytes([selector]) + read(path))
for path in sorted(glob.glob(os.path.join(ROOT, "Tests/TallyCoreTests/Resources/probes/*.jsonl"))):
    put("fuzz-data", "probe-" + os.path.basename(path), bytes([3]) + read(path))

# Exec protocol: the golden messages plugins write (one JSON-RPC message per line).
for path in sorted(glob.glob(os.path.join(ROOT, "Tests/TallyCLITests/Resources/exec-protocol/*.jsonl"))):
    put("fuzz-exec-protocol", os.path.basename(path), read(path))

# Hosted API responses: "Retry-After value" NUL body.
put("fuzz-hosted-api", "openai-chat.json", b"2\0" + json.dumps({"id": "c1", "model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "message": {"role": "assistant", "content": "positive", "refusal": None}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 12, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 0}}}).encode())
put("fuzz-hosted-api", "anthropic.json", b"Wed, 21 Oct 2015 07:28:00 GMT\0" + json.dumps({"id": "m1", "type": "message", "model": "claude-3-5-haiku-20241022", "content": [{"type": "text", "text": "negative"}], "stop_reason": "end_turn", "usage": {"input_tokens": 20, "output_tokens": 2}}).encode())
put("fuzz-hosted-api", "job.json", b"\0" + json.dumps({"id": "ftjob-1", "status": "succeeded", "model": "gpt-4o-mini-2024-07-18", "fine_tuned_model": "ft:gpt-4o-mini:org::abc", "trained_tokens": 1200, "error": None, "metadata": {"tally_job": "k"}, "created_at": 1, "finished_at": 2}).encode())
put("fuzz-hosted-api", "events.json", b"\0" + json.dumps({"data": [{"id": "e1", "created_at": 1, "level": "info", "message": "Step 1/10: training loss=1.2", "type": "metrics", "data": {"step": 1, "train_loss": 1.2, "valid_loss": 1.3}}], "has_more": False}).encode())
put("fuzz-hosted-api", "file.json", b"\0" + json.dumps({"id": "file-1", "object": "file", "bytes": 10, "purpose": "fine-tune"}).encode())
