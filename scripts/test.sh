#!/usr/bin/env bash
# Sets up (system libraries, model and data assets) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
TALLY_BUILD_CONFIG=debug bash scripts/setup.sh
swift build --build-tests
swift test
