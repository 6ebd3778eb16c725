"""Baseline for `tally-bench --config smollm2 --mode prefill`: the time transformers takes to
process one 65-token prompt of SmolLM2-135M-Instruct (from the same Q4_1 GGUF, dequantized to
float32) and produce the next-token logits, on the CPU. Prints one JSON line.

Needs torch, transformers and gguf (pip install torch transformers gguf) and the model in Tally's
asset cache (tally models fetch smollm2-135m-instruct). Used by scripts/bench.sh.
"""
import argparse
import json
import statistics
import time

from tally_assets import load_smollm2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=65)
    args = parser.parse_args()

    torch, model = load_smollm2(args.threads)
    model.eval()
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (1, args.tokens), generator=generator)
    times = []
    with torch.inference_mode():
        for i in range(args.warmup + args.steps):
            start = time.perf_counter()
            # Only the last position's logits, as generation needs (and as Tally computes).
            model(input_ids=ids, use_cache=True, logits_to_keep=1)
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(json.dumps({
        "impl": "transformers", "config": "smollm2", "mode": "prefill", "threads": args.threads,
        "tokens_per_step": args.tokens, "step_ms_median": round(median * 1e3, 1),
        "step_ms_best": round(min(times) * 1e3, 1), "tokens_per_s": round(args.tokens / median),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
