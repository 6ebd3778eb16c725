#!/usr/bin/env bash
# Tally's local evaluation against llama.cpp on the same GGUF, the same machine and threads.
#
# Two parts, each alternating which side runs first over ROUNDS rounds, printing medians and
# per-round ratios (llama.cpp time / Tally time: above 1.0 means Tally is faster):
#   1. End to end: zero-shot, few-shot-4 (fixed demonstrations) and chain-of-thought (48 tokens)
#      over N VADER test reviews through `tally run`, once on the built-in `swift-trainer`
#      backend and once on llama.cpp's OpenAI-compatible server (llama-cpp-python, one slot)
#      reached through Tally's own `openai` backend with `base_url`. Time per strategy is the
#      evaluation phase's wall time from the run's progress lines. It also counts the reviews
#      where both sides gave identical replies.
#   2. Single stream: prompt processing (PREFILL tokens) and decoding (DECODE tokens after a
#      32-token prompt), `tally-bench --config smollm2` against llama-cpp-python's `Llama`.
#
# llama-cpp-python is built from PyPI once into a cache (about 5 minutes on 2 vCPUs).
#
# Usage: scripts/bench_llamacpp.sh
#   Environment:
#     MODEL    (default: the quickstart's SmolLM2-135M-Instruct Q4_1 GGUF from the asset cache)
#     N        (default 100)   test reviews per strategy
#     ROUNDS   (default 3)     alternating rounds
#     THREADS  (default "1 2") threads for the single-stream part (end to end uses 2)
#     PREFILL  (default 256), DECODE (default 64)
#     LLAMA_CPP_VERSION (default 0.3.36)
#     TALLY_BENCH_CACHE (default $XDG_CACHE_HOME/tally-bench or ~/.cache/tally-bench)
#     PARTS    (default "e2e single")
#     CONFIG   (default release)  Tally's build; `CONFIG=debug` uses the debug build with
#                                 optimised numerics (TALLY_OPTIMISE_DEBUG=1), as the tests do
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_CPP_VERSION="${LLAMA_CPP_VERSION:-0.3.36}"
CACHE="${TALLY_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tally-bench}"
VENV="$CACHE/llama-cpp"

if ! "$VENV/bin/python" -c "import sys, llama_cpp, llama_cpp.server; sys.exit(llama_cpp.__version__ != sys.argv[1])" \
        "$LLAMA_CPP_VERSION" 2>/dev/null; then
    echo "building llama-cpp-python $LLAMA_CPP_VERSION from PyPI into $VENV (about 5 minutes, once)" >&2
    mkdir -p "$CACHE"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$VENV/bin/pip" install -q \
        "llama-cpp-python[server]==$LLAMA_CPP_VERSION" numpy >&2
fi

CONFIG="${CONFIG:-release}"
[[ "$CONFIG" == debug ]] && export TALLY_OPTIMISE_DEBUG=1
swift build -c "$CONFIG" --product tally >&2
swift build -c "$CONFIG" --product tally-bench >&2
TALLY="$PWD/.build/$CONFIG/tally"
if [[ -z "${MODEL:-}" ]]; then
    "$TALLY" models fetch smollm2-135m-instruct >&2
    "$TALLY" data fetch vader-movie-reviews >&2
fi

exec "$VENV/bin/python" scripts/bench_llamacpp.py --tally "$TALLY" --tally-bench "$PWD/.build/$CONFIG/tally-bench" \
    ${MODEL:+--model "$MODEL"} --n "${N:-100}" --rounds "${ROUNDS:-3}" --threads ${THREADS:-1 2} \
    --prefill "${PREFILL:-256}" --decode "${DECODE:-64}" --parts ${PARTS:-e2e single}
