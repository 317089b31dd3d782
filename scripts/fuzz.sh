#!/usr/bin/env bash
# Runs every fuzz target of the workspace for a bounded time each (the seed
# corpora already run as plain tests in `go test`). New inputs that fail are
# written to the package's testdata/fuzz/<Target>/ by go test: commit them.
#
#   scripts/fuzz.sh          # FUZZTIME per target, default 15s
#   FUZZTIME=2m scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-15s}
n=0
for pkg in $(go list -f '{{if .TestGoFiles}}{{.ImportPath}}{{end}}' $(go list -m -f '{{.Dir}}/...')); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $target for $fuzztime"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$pkg"
    n=$((n + 1))
  done
done
echo "fuzz: $n targets, $fuzztime each, no failure"
