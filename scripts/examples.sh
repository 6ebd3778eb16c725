#!/usr/bin/env bash
# Builds and runs the packages under Examples/ the way an outside user would.
#
# Examples/swift-plugin depends on Tally *by version*: this script clones the current commit
# into a temporary git repository, tags it with the version in Sources/TallyCore/Version.swift,
# and points the example at that clone (TALLY_PACKAGE_URL). Uncommitted changes are not in the
# clone: commit first. The Python exec example is run by the test suite (TallyCLITests).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="$(sed -n 's/.*current = "\(.*\)".*/\1/p' "$root/Sources/TallyCore/Version.swift")"
if [ -z "$version" ]; then
  echo "examples: cannot read the version from Sources/TallyCore/Version.swift" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q --no-hardlinks "$root" "$work/tally"
git -C "$work/tally" tag -f "$version" >/dev/null
echo "examples: Tally $version at $(git -C "$work/tally" rev-parse --short HEAD), cloned and tagged in $work/tally"

example="$root/Examples/swift-plugin"
export TALLY_PACKAGE_URL="$work/tally"
# A dependent package never sets Tally's own switch for optimised debug numerics (it would put
# unsafe flags into a version-based dependency, which SwiftPM refuses).
unset TALLY_OPTIMISE_DEBUG
cd "$example"
# The example's own resolution and build products stay out of the repository's tree.
build="$work/build"
echo "examples: building Examples/swift-plugin against Tally $version (by version)"
swift build --scratch-path "$build" --build-tests
swift test --scratch-path "$build" --skip-build
tally_plus="$build/debug/tally-plus"
export TALLY_HOME="$work/home"
"$tally_plus" plugins | grep -q "lexicon" || { echo "examples: tally-plus does not list the lexicon plugin" >&2; exit 1; }
"$tally_plus" plugins | grep -q "role" || { echo "examples: tally-plus does not list the role kind" >&2; exit 1; }
"$tally_plus" validate Recipes/reviews.yaml
"$tally_plus" plugins check Recipes/reviews.yaml --backend words
"$tally_plus" run Recipes/reviews.yaml
echo "examples: Examples/swift-plugin built, tested and ran its recipe"
