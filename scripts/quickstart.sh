#!/usr/bin/env bash
# The quickstart: prepares the machine (scripts/setup.sh: build tally, fetch SmolLM2-135M-Instruct
# and the VADER movie reviews; skipped steps when already done), then runs Recipes/quickstart.yaml
# and prints its report. Extra arguments go to `tally run` (e.g. --out DIR, --json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .build/release/tally run Recipes/quickstart.yaml "$@"
