#!/usr/bin/env bash
# Installs what Tally needs on a Debian machine and builds it. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in libcurl4-openssl-dev libopenblas-dev pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
