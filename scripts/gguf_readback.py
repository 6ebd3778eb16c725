#!/usr/bin/env python3
"""Reads a GGUF file Tally wrote with the `gguf` package (llama.cpp's own Python reader) and
checks it against what Tally says it wrote.

    python3 scripts/gguf_readback.py EXPECTED.json

EXPECTED.json (written by the SwiftTrainer test `ggufExportReadsBackInPython`):
    {"file": "model-q8_0.gguf", "metadata": {"general.architecture": "llama", ...},
     "token_count": 49152, "tokens": {"0": "<|endoftext|>", ...},
     "tensors": [{"name": "token_embd.weight", "type": "Q8_0", "shape": [576, 49152],
                  "indices": [...], "tally": [...], "source": [...], "tolerance": 0.004,
                  "sum": 123.4}, ...]}

For each tensor it checks the type and shape, that the values the `gguf` package dequantises
equal Tally's own reading of the file at the sampled indices (both decode the same bytes,
so they agree exactly), that they are within the format's rounding (`tolerance`) of the
source weights Tally exported, and that the whole tensor's sum agrees. Exit 0: all agree;
1: a difference (printed); 77: the `gguf` package is not installed (the test skips). With
TALLY_GGUF_SITE set, that directory (a `pip install --target` of gguf and numpy) is searched
first.
"""
import json
import os
import sys


def main():
    # CI installs the package with `pip install --target DIR` and names DIR here.
    site = os.environ.get("TALLY_GGUF_SITE")
    if site:
        sys.path.insert(0, site)
    try:
        import numpy as np
        from gguf import GGUFReader
        from gguf.quants import dequantize
    except ImportError as error:
        print(f"gguf_readback: the gguf package is missing ({error}); pip install gguf numpy", file=sys.stderr)
        return 77
    with open(sys.argv[1], encoding="utf-8") as handle:
        expected = json.load(handle)
    reader = GGUFReader(expected["file"])
    failures = []

    def field(name):
        f = reader.fields.get(name)
        return None if f is None else f.contents()

    for key, value in expected["metadata"].items():
        got = field(key)
        if got != value:
            failures.append(f"metadata {key}: gguf reads {str(got)[:80]!r}, Tally wrote {str(value)[:80]!r}")
    tokens = field("tokenizer.ggml.tokens") or []
    if len(tokens) != expected["token_count"]:
        failures.append(f"tokenizer.ggml.tokens: gguf reads {len(tokens)} tokens, Tally wrote {expected['token_count']}")
    for index, token in expected["tokens"].items():
        if int(index) < len(tokens) and tokens[int(index)] != token:
            failures.append(f"token {index}: gguf reads {tokens[int(index)]!r}, Tally wrote {token!r}")

    tensors = {t.name: t for t in reader.tensors}
    checked = []
    for want in expected["tensors"]:
        tensor = tensors.get(want["name"])
        if tensor is None:
            failures.append(f"tensor {want['name']} is missing")
            continue
        if tensor.tensor_type.name != want["type"]:
            failures.append(f"tensor {want['name']}: type {tensor.tensor_type.name}, Tally wrote {want['type']}")
        # GGUF lists dimensions fastest-varying first, as Tally's expected shape does.
        if [int(d) for d in tensor.shape] != want["shape"]:
            failures.append(f"tensor {want['name']}: shape {list(tensor.shape)}, Tally wrote {want['shape']}")
        values = np.asarray(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32).reshape(-1)
        at = values[np.asarray(want["indices"], dtype=np.int64)]
        tally = np.asarray(want["tally"], dtype=np.float32)
        source = np.asarray(want["source"], dtype=np.float32)
        vs_tally = float(np.abs(at - tally).max())
        vs_source = float(np.abs(at - source).max())
        total = float(values.astype(np.float64).sum())
        if vs_tally != 0.0:
            failures.append(f"tensor {want['name']}: gguf's values differ from Tally's reading by up to {vs_tally:g}")
        if vs_source > want["tolerance"]:
            failures.append(f"tensor {want['name']}: gguf's values differ from the source weights by {vs_source:g} > {want['tolerance']:g}")
        if abs(total - want["sum"]) > 1e-3 * max(1.0, abs(want["sum"])):
            failures.append(f"tensor {want['name']}: sum {total:.6g}, Tally's {want['sum']:.6g}")
        checked.append(f"{want['name']} {want['type']}: max |gguf - Tally| = {vs_tally:g}, max |gguf - source| = {vs_source:g}")

    print(f"gguf_readback {expected['file']}: {len(reader.tensors)} tensors, {len(tokens)} tokens")
    for line in checked:
        print("  " + line)
    for line in failures:
        print("FAIL: " + line, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
