#!/usr/bin/env bash
# Runs Tally's benchmark (tally-bench) and, when torch is importable, the PyTorch baseline of
# ../shared/bench on the same configs, modes and threads, interleaved round by round, and prints
# tokens/s ratios (Tally / PyTorch). Absolute speeds drift on shared machines (vCPUs time-sliced
# onto one core), so each pair runs back to back, the order alternates between rounds, and the
# table shows the median of each side and the median and range of the per-round ratios.
#
# Usage: scripts/bench.sh [PATH/TO/pytorch_llama_train.py]
#   The PyTorch script defaults to ../shared/bench/pytorch_llama_train.py (next to the repository).
#   Environment:
#     CONFIGS  (default "A B")        shapes of the PyTorch script ("" for none: SmolLM2 only)
#     MODES    (default "train lora") train = full fine-tuning step, lora = rank 8 on q/v
#     THREADS  (default "1 2")        BLAS and loop threads, both sides
#     ROUNDS   (default 3)            interleaved repetitions per row
#     STEPS    (default 8)            timed steps per run (each run reports its median step)
#     SMOLLM2  (default 1)            also time SmolLM2-135M: fine-tuning steps (MODES) on
#                                     sentiment-sized batches beside transformers+PEFT
#                                     (scripts/bench_peft_smollm2.py), and prompt processing
#                                     (65 tokens) beside transformers, when those import
#     SMOLLM2_STEPS (default 3)       timed SmolLM2 fine-tuning steps per run (after 1 warm-up)
set -euo pipefail
cd "$(dirname "$0")/.."

PY_SCRIPT="${1:-}"
if [[ -z "$PY_SCRIPT" && -f ../shared/bench/pytorch_llama_train.py ]]; then
    PY_SCRIPT=../shared/bench/pytorch_llama_train.py
fi
CONFIGS="${CONFIGS-A B}"
MODES="${MODES-train lora}"
THREADS="${THREADS:-1 2}"
ROUNDS="${ROUNDS:-3}"
STEPS="${STEPS:-8}"
SMOLLM2="${SMOLLM2:-1}"
SMOLLM2_STEPS="${SMOLLM2_STEPS:-3}"

swift build -c release --product tally-bench >&2
BENCH=.build/release/tally-bench

TORCH=0
if [[ -n "$PY_SCRIPT" && -f "$PY_SCRIPT" ]] && python3 -c "import torch" 2>/dev/null; then
    TORCH=1
else
    echo "note: torch is not importable or the PyTorch script was not found; printing Tally's numbers only" >&2
fi

field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2"; }
# summary TALLY_VALUES TORCH_VALUES -> "tally_median torch_median ratio_median ratio_min-ratio_max"
summary() {
    python3 - "$1" "$2" <<'EOF'
import statistics, sys
t = [float(x) for x in sys.argv[1].split()]
p = [float(x) for x in sys.argv[2].split()]
if not p:
    print(f"{statistics.median(t):.0f} - - -")
else:
    r = [a / b for a, b in zip(t, p)]
    print(f"{statistics.median(t):.0f} {statistics.median(p):.0f} {statistics.median(r):.2f} {min(r):.2f}-{max(r):.2f}")
EOF
}

run_tally() { "$BENCH" --config "$1" --mode "$2" --threads "$3" --steps "$STEPS"; }
run_torch() {
    local py_mode=$2
    [[ $py_mode == train ]] && py_mode=full
    python3 "$PY_SCRIPT" --config "$1" --mode "$py_mode" --threads "$3" --steps "$STEPS"
}

printf '%-8s %-6s %-7s %12s %12s %8s %11s\n' config mode threads tally_tok_s torch_tok_s ratio ratio_range
for config in $CONFIGS; do
    for mode in $MODES; do
        for threads in $THREADS; do
            tally_values=""
            torch_values=""
            for round in $(seq 1 "$ROUNDS"); do
                if [[ $TORCH == 1 && $((round % 2)) == 0 ]]; then
                    torch_json=$(run_torch "$config" "$mode" "$threads"); echo "$torch_json" >&2
                    tally_json=$(run_tally "$config" "$mode" "$threads"); echo "$tally_json" >&2
                else
                    tally_json=$(run_tally "$config" "$mode" "$threads"); echo "$tally_json" >&2
                    if [[ $TORCH == 1 ]]; then
                        torch_json=$(run_torch "$config" "$mode" "$threads"); echo "$torch_json" >&2
                    fi
                fi
                tally_values+=" $(field "$tally_json" tokens_per_s)"
                [[ $TORCH == 1 ]] && torch_values+=" $(field "$torch_json" tok_per_s_median)"
            done
            read -r t p r range <<<"$(summary "$tally_values" "$torch_values")"
            printf '%-8s %-6s %-7s %12s %12s %8s %11s\n' "$config" "$mode" "$threads" "$t" "$p" "$r" "$range"
        done
    done
done

if [[ $SMOLLM2 == 1 ]]; then
    echo
    if ! "$BENCH" --config smollm2 --mode prefill --threads 1 --steps 1 --warmup 0 >/dev/null 2>&1; then
        echo "SmolLM2: skipped (fetch it with: tally models fetch smollm2-135m-instruct)"
        exit 0
    fi
    HF_BASELINE=0
    if python3 -c "import torch, transformers, gguf" 2>/dev/null; then HF_BASELINE=1; fi
    PEFT_BASELINE=0
    if [[ $HF_BASELINE == 1 ]] && python3 -c "import peft" 2>/dev/null; then PEFT_BASELINE=1; fi
    run_tally_smollm2() { "$BENCH" --config smollm2 --mode "$1" --threads "$2" --steps "$SMOLLM2_STEPS" --warmup 1; }
    run_torch_smollm2() {
        local py_mode=$1
        [[ $py_mode == train ]] && py_mode=full
        python3 scripts/bench_peft_smollm2.py --mode "$py_mode" --threads "$2" --steps "$SMOLLM2_STEPS" --warmup 1
    }
    printf '%-8s %-6s %-7s %12s %12s %8s %11s\n' config mode threads tally_tok_s torch_tok_s ratio ratio_range
    for mode in $MODES; do
        # LoRA needs PEFT for the baseline; full fine-tuning only transformers.
        baseline=$HF_BASELINE
        [[ $mode == lora ]] && baseline=$PEFT_BASELINE
        for threads in $THREADS; do
            tally_values=""
            torch_values=""
            for round in $(seq 1 "$ROUNDS"); do
                if [[ $baseline == 1 && $((round % 2)) == 0 ]]; then
                    torch_json=$(run_torch_smollm2 "$mode" "$threads"); echo "$torch_json" >&2
                    tally_json=$(run_tally_smollm2 "$mode" "$threads"); echo "$tally_json" >&2
                else
                    tally_json=$(run_tally_smollm2 "$mode" "$threads"); echo "$tally_json" >&2
                    if [[ $baseline == 1 ]]; then
                        torch_json=$(run_torch_smollm2 "$mode" "$threads"); echo "$torch_json" >&2
                    fi
                fi
                tally_values+=" $(field "$tally_json" tokens_per_s)"
                [[ $baseline == 1 ]] && torch_values+=" $(field "$torch_json" tok_per_s_median)"
            done
            read -r t p r range <<<"$(summary "$tally_values" "$torch_values")"
            printf '%-8s %-6s %-7s %12s %12s %8s %11s\n' smollm2 "$mode" "$threads" "$t" "$p" "$r" "$range"
        done
    done
    echo
    printf '%-34s %-7s %12s %14s %8s\n' "SmolLM2-135M, 65-token prompt" threads tally_ms transformers_ms ratio
    for threads in $THREADS; do
        tally_ms=""
        hf_ms=""
        for round in $(seq 1 "$ROUNDS"); do
            j=$("$BENCH" --config smollm2 --mode prefill --threads "$threads" --steps 10); echo "$j" >&2
            tally_ms+=" $(field "$j" step_ms_median)"
            if [[ $HF_BASELINE == 1 ]]; then
                h=$(python3 scripts/bench_transformers_prefill.py --threads "$threads" --steps 10); echo "$h" >&2
                hf_ms+=" $(field "$h" step_ms_median)"
            fi
        done
        # Ratio here is transformers time / Tally time (how many times faster Tally is).
        read -r t p r range <<<"$(summary "$hf_ms" "$tally_ms" 2>/dev/null || true)"
        tm=$(python3 -c "import statistics,sys; print(f'{statistics.median(float(x) for x in sys.argv[1].split()):.1f}')" "$tally_ms")
        if [[ $HF_BASELINE == 1 ]]; then
            printf '%-34s %-7s %12s %14s %8s\n' "prefill (x faster than transformers)" "$threads" "$tm" "$t" "$r"
        else
            printf '%-34s %-7s %12s %14s %8s\n' "prefill" "$threads" "$tm" "-" "-"
        fi
    done
fi
