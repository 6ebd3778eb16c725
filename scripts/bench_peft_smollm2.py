"""Baseline for `tally-bench --config smollm2 --mode lora|train`: one fine-tuning step of
SmolLM2-135M-Instruct (the same Q4_1 GGUF, dequantized to float32) in PyTorch eager mode with
transformers and PEFT, on the CPU, on the same kind of batch. Prints one JSON line.

The step matches what tally-bench times: 8 sequences of 60-80 random tokens (padded to the
longest, with an attention mask), loss on the last 3 tokens of each, the output layer applied
only at those positions, backward, global-norm clipping at 1 and AdamW (no weight decay).
LoRA is rank 8, alpha 16, no dropout, on every linear layer (PEFT's "all-linear"), lr 1e-3;
full fine-tuning trains every weight at lr 5e-5. Tokens/s counts real (unpadded) tokens.

Needs torch, transformers, gguf and, for LoRA, peft (pip install torch transformers gguf peft)
and the model in Tally's asset cache (tally models fetch smollm2-135m-instruct). Used by
scripts/bench.sh.
"""
import argparse
import json
import random
import resource
import statistics
import time

from tally_assets import load_smollm2

ANSWER_TOKENS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["lora", "full"], default="lora")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    torch, model = load_smollm2(args.threads)
    model.config.use_cache = False
    if args.mode == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear"))
        lr = 1e-3
    else:
        lr = 5e-5
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    base = model.get_base_model() if args.mode == "lora" else model
    vocab = base.config.vocab_size

    rng = random.Random(1)

    def make_batch():
        lengths = [rng.randint(60, 80) for _ in range(args.batch)]
        width = max(lengths)
        ids = torch.zeros(args.batch, width, dtype=torch.long)
        mask = torch.zeros(args.batch, width, dtype=torch.long)
        for row, n in enumerate(lengths):
            ids[row, :n] = torch.randint(0, vocab, (n,))
            mask[row, :n] = 1
        # Position t predicts token t+1: score the predictions of the last ANSWER_TOKENS tokens.
        rows = torch.tensor([r for r, n in enumerate(lengths) for _ in range(ANSWER_TOKENS)])
        cols = torch.tensor([t for n in lengths for t in range(n - ANSWER_TOKENS - 1, n - 1)])
        targets = ids[rows, cols + 1]
        return ids, mask, rows, cols, targets, sum(lengths)

    batches = [make_batch() for _ in range(args.warmup + args.steps)]

    def step(batch):
        ids, mask, rows, cols, targets, _ = batch
        hidden = base.model(input_ids=ids, attention_mask=mask).last_hidden_state
        logits = base.lm_head(hidden[rows, cols])
        loss = torch.nn.functional.cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        return loss.item()

    times, tokens = [], []
    loss = 0.0
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        loss = step(batch)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
            tokens.append(batch[5])
    median = statistics.median(times)
    per_step = round(statistics.mean(tokens))
    print(json.dumps({
        "impl": "pytorch+peft" if args.mode == "lora" else "pytorch",
        "config": "smollm2", "mode": args.mode, "threads": args.threads,
        "params_trainable": sum(p.numel() for p in params), "tokens_per_step": per_step,
        "step_ms_median": round(median * 1e3, 1), "step_ms_best": round(min(times) * 1e3, 1),
        "tok_per_s_median": round(per_step / median), "final_loss": round(loss, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
