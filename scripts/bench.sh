#!/usr/bin/env bash
# Runs Tally's benchmark and, when torch is importable, the PyTorch baseline on the same
# configs and threads, one right after the other, and prints tokens/s ratios (Tally / PyTorch).
#
# Usage: scripts/bench.sh [PATH/TO/pytorch_llama_train.py]
#   The PyTorch script defaults to ../shared/bench/pytorch_llama_train.py (next to the repository).
#   Environment: CONFIGS (default "A B"), THREADS (default "1 2"), MODES (default "train";
#   "lora" too when tally-bench supports it), STEPS (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."

PY_SCRIPT="${1:-}"
if [[ -z "$PY_SCRIPT" && -f ../shared/bench/pytorch_llama_train.py ]]; then
    PY_SCRIPT=../shared/bench/pytorch_llama_train.py
fi
CONFIGS="${CONFIGS:-A B}"
THREADS="${THREADS:-1 2}"
MODES="${MODES:-train}"
STEPS="${STEPS:-10}"

swift build -c release --product tally-bench >&2
BENCH=.build/release/tally-bench

TORCH=0
if [[ -n "$PY_SCRIPT" && -f "$PY_SCRIPT" ]] && python3 -c "import torch" 2>/dev/null; then
    TORCH=1
else
    echo "note: torch is not importable or the PyTorch script was not found; printing Tally's numbers only" >&2
fi

field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2"; }

printf '%-6s %-6s %-7s %12s %12s %8s\n' config mode threads tally_tok_s torch_tok_s ratio
for config in $CONFIGS; do
    for mode in $MODES; do
        for threads in $THREADS; do
            tally_json=$("$BENCH" --config "$config" --mode "$mode" --threads "$threads" --steps "$STEPS")
            echo "$tally_json" >&2
            tally_tps=$(field "$tally_json" tokens_per_s)
            torch_tps="-"
            ratio="-"
            if [[ $TORCH == 1 ]]; then
                py_mode=$mode
                [[ $mode == train ]] && py_mode=full
                torch_json=$(python3 "$PY_SCRIPT" --config "$config" --mode "$py_mode" --threads "$threads" --steps "$STEPS")
                echo "$torch_json" >&2
                torch_tps=$(field "$torch_json" tok_per_s_median)
                ratio=$(python3 -c "print(f'{$tally_tps / $torch_tps:.2f}')")
            fi
            printf '%-6s %-6s %-7s %12s %12s %8s\n' "$config" "$mode" "$threads" "$tally_tps" "$torch_tps" "$ratio"
        done
    done
done
