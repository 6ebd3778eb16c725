#!/usr/bin/env bash
# Sets up (system libraries, model and data assets) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debug build with the numeric targets (TallyTensor, SwiftTrainer) at -O: their tests run about a
# hundred times faster. Package.swift adds that unsafe flag only when this is set, so that
# packages depending on Tally by version see none. Set for setup.sh's build too, so that both
# builds share one configuration and nothing is compiled twice.
export TALLY_OPTIMISE_DEBUG=1
TALLY_BUILD_CONFIG=debug bash scripts/setup.sh
# Headless Chromium for the HTML report's browser tests (they are skipped without it).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } \
    || echo "test: could not install chromium; the browser tests will be skipped" >&2
fi
# The `gguf` package (llama.cpp's Python reader) for the GGUF export read-back test, in a
# directory of its own (no virtual environment needed); the test fails rather than skips here.
python3 -m pip install -q --disable-pip-version-check --target .build/python-gguf gguf numpy
export TALLY_GGUF_SITE="$PWD/.build/python-gguf" TALLY_REQUIRE_GGUF_READBACK=1
swift build --build-tests
swift test
# Every libFuzzer target for a few seconds from its committed corpus (docs/fuzzing.md): a build
# of Tests/Fuzz with -sanitize=fuzzer, apart from the one above, then 4 s per target.
bash scripts/fuzz.sh all 4
# The packages under Examples/ built, tested and run as outside users would (the Swift one
# depends on a tagged clone of this commit by version; see scripts/examples.sh).
bash scripts/examples.sh
