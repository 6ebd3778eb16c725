#!/usr/bin/env bash
# Times SmolLM2 single-stream decode and prompt processing with the GGUF file's quantised
# weights kept in memory (`--weights quantised`) against the same file converted to Float32
# (`--weights f32`), with tally-bench, interleaved round by round (the order alternates), and
# prints each side's median tokens/s and the median and range of the per-round ratios
# (quantised / f32). Absolute speeds drift on shared machines; the ratios are what to read.
#
# Usage: scripts/bench_quantised.sh
#   Environment:
#     BENCH     (default .build/release/tally-bench, built first; set to a built binary to skip)
#     MODEL     (default smollm2-135m-instruct)  a GGUF file or a name `tally models` knows
#     THREADS   (default "1 2")
#     ROUNDS    (default 3)
#     STEPS     (default 5)    timed steps per run (each run reports its median step)
#     SEQ       (default 256)  prompt tokens for prefill
#     PROMPT    (default 32)   prompt tokens before decoding
#     NEW       (default 64)   decoded tokens per step
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS="${THREADS:-1 2}"
ROUNDS="${ROUNDS:-3}"
STEPS="${STEPS:-5}"
SEQ="${SEQ:-256}"
PROMPT="${PROMPT:-32}"
NEW="${NEW:-64}"
MODEL="${MODEL:-smollm2-135m-instruct}"
if [[ -z "${BENCH:-}" ]]; then
    swift build -c release --product tally-bench >&2
    BENCH=.build/release/tally-bench
fi

results=$(mktemp)
trap 'rm -f "$results"' EXIT

run() {  # mode threads weights round
    local args=(--config smollm2 --model "$MODEL" --mode "$1" --threads "$2" --weights "$3" --steps "$STEPS" --warmup 1 --batch 1)
    if [[ "$1" == prefill ]]; then args+=(--seq "$SEQ"); else args+=(--seq "$PROMPT" --new-tokens "$NEW"); fi
    local line
    line=$("$BENCH" "${args[@]}")
    echo "$1 $2 $3 $4 $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["tokens_per_s"])' "$line")" >>"$results"
    echo "$1 threads=$2 weights=$3 round=$4: $line" >&2
}

for mode in decode prefill; do
    for t in $THREADS; do
        for ((r = 1; r <= ROUNDS; r++)); do
            if ((r % 2)); then order="quantised f32"; else order="f32 quantised"; fi
            for w in $order; do run "$mode" "$t" "$w" "$r"; done
        done
    done
done

python3 - "$results" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
table = {}
for mode, threads, weights, rnd, tps in rows:
    table.setdefault((mode, threads), {}).setdefault(weights, {})[rnd] = float(tps)
print("| mode | threads | quantised tok/s | f32 tok/s | ratio [range] |")
print("| --- | ---: | ---: | ---: | ---: |")
for (mode, threads), sides in table.items():
    q, f = sides.get("quantised", {}), sides.get("f32", {})
    ratios = [q[r] / f[r] for r in q if r in f and f[r] > 0]
    if not ratios:
        continue
    print(f"| {mode} | {threads} | {statistics.median(q.values()):.1f} | {statistics.median(f.values()):.1f} | "
          f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}] |")
EOF
