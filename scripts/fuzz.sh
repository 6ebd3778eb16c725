#!/usr/bin/env bash
# Runs one libFuzzer target of Tests/Fuzz for a number of seconds, starting from its committed
# corpus (Tests/Fuzz/Corpus/TARGET). New inputs go to a scratch corpus (.build/fuzz-corpus),
# crashes to .build/fuzz-artifacts; a crash ends the run with a non-zero status.
#
#   scripts/fuzz.sh TARGET SECONDS    e.g. scripts/fuzz.sh fuzz-gguf 60
#   scripts/fuzz.sh all SECONDS       every target in turn (what CI runs, a few seconds each)
#   scripts/fuzz.sh list              the target names
#
# The targets are built once per call (with -sanitize=fuzzer for every module, in
# Tests/Fuzz/.build, apart from Tally's own build). See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
fuzz="$root/Tests/Fuzz"
targets=$(ls "$fuzz/Sources" | grep '^fuzz-')
if [ "${1:-}" = "list" ]; then echo "$targets"; exit 0; fi
if [ $# -ne 2 ]; then
  echo "usage: scripts/fuzz.sh TARGET|all SECONDS  (targets: $(echo $targets))" >&2
  exit 64
fi
target="$1"; seconds="$2"
if [ "$target" != all ] && ! echo "$targets" | grep -qx "$target"; then
  echo "fuzz: unknown target '$target' (targets: $(echo $targets))" >&2
  exit 64
fi
# A debug build (quicker to compile than -O; CI builds it from clean) in which every module,
# the parsers included, is instrumented for coverage.
build_flags=(-Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library)
echo "fuzz: building the targets (Tests/Fuzz, -sanitize=fuzzer)" >&2
(cd "$fuzz" && swift build "${build_flags[@]}" >&2)
bin="$(cd "$fuzz" && swift build "${build_flags[@]}" --show-bin-path)"
run_one() {
  local name="$1"
  local seeds="$fuzz/Corpus/$name" scratch="$root/.build/fuzz-corpus/$name" artifacts="$root/.build/fuzz-artifacts/$name/"
  mkdir -p "$seeds" "$scratch" "$artifacts"
  echo "fuzz: $name for ${seconds}s from $(ls "$seeds" | wc -l | tr -d ' ') seed(s)" >&2
  # -timeout: an input that runs longer than 10 s is reported as a hang; -rss_limit_mb: one
  # that allocates past 2 GiB as a failure. New coverage goes to the scratch corpus only.
  local log="$root/.build/fuzz-artifacts/$name.log" status=0 dict=()
  # A target's dictionary of tokens (Tests/Fuzz/Dictionaries/TARGET.dict) helps it build syntax.
  [ -f "$fuzz/Dictionaries/$name.dict" ] && dict=(-dict="$fuzz/Dictionaries/$name.dict")
  "$bin/$name" "$scratch" "$seeds" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 ${dict[@]+"${dict[@]}"} \
    -artifact_prefix="$artifacts" -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY|==[0-9]+== ERROR|.*Test unit written)" "$log" >&2 || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz: $name FAILED (status $status); the input is in $artifacts" >&2
    return 1
  fi
}
failed=0
if [ "$target" = all ]; then
  for name in $targets; do run_one "$name" || failed=1; done
else
  run_one "$target" || failed=1
fi
exit $failed
