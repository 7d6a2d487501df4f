#!/usr/bin/env bash
# Runs the conformance runner over every fixture and prints all of its lines.
# CI fails when a fixture fails that .ci/conformance-known-failures does not
# list (a regression), or when a listed fixture passes (the list is stale).
# The list names the fixtures of open issues that are not implemented yet;
# the runner itself still reports them as FAIL.
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
go run ./examples/conformance "$1" >"$out"
# The summary is reworded so it is not read as this CI run's test count.
sed -E 's/^([0-9]+) passed, ([0-9]+) failed$/conformance runner: \1 fixtures passed, \2 fixtures failed/' "$out"
known=$(grep -v '^#' .ci/conformance-known-failures | sed '/^$/d' | awk '{print $1}')
status=0
while read -r line; do
  name=$(basename "$(echo "$line" | sed -E 's/^(PASS|FAIL) ([^:]+):.*/\2/')")
  case "$line" in
    FAIL*) if ! grep -qx "$name" <<<"$known"; then echo "conformance: regression: $line"; status=1; fi ;;
    PASS*) if grep -qx "$name" <<<"$known"; then echo "conformance: $name passes now: remove it from .ci/conformance-known-failures"; status=1; fi ;;
  esac
done < <(grep -E '^(PASS|FAIL) ' "$out")
if ! grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$out"; then echo "conformance: the runner printed no summary"; status=1; fi
rm -f "$out"
exit $status
