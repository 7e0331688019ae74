#!/usr/bin/env bash
# Long soaks and stress runs, kept out of the default test run. Each one is
# bounded; FRAMERING_SOAK_SECONDS sets the ring soak's length (default 600).
#   scripts/soak.sh            all soaks
#   FRAMERING_SOAK_SECONDS=3600 scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export FRAMERING_SOAK=1
export FRAMERING_SOAK_SECONDS="${FRAMERING_SOAK_SECONDS:-600}"
secs=$FRAMERING_SOAK_SECONDS

echo "== ring: random kill -9 of consumers for ${secs}s (race detector on)"
go test -race -count=1 -run 'Soak' -timeout $((secs * 3 + 600))s -v ./ringbuf/ | tail -3

echo "== archive: 300 rounds of kill -9 during append, open and recovery"
go test -count=1 -run 'Soak' -timeout 60m -v ./archive/ | tail -3

echo "== every soak-gated test elsewhere"
go test -count=1 -run 'Soak' -timeout 60m $(go list ./... | grep -v -E '/(ringbuf|archive)$')

echo "== fuzzers, 60 s each"
for target in \
  "./ringbuf FuzzDecodeDataHeader" "./ringbuf FuzzDecodeMessages" \
  "./frame FuzzVerify" \
  "./archive FuzzSegmentHeader" "./archive FuzzRecord" "./archive FuzzIndex" "./archive FuzzScan" \
  "./analysis FuzzAnalyze" "./analysis FuzzGeometry" "./native FuzzSharedRange"; do
  set -- $target
  if go test -list "^$2\$" "$1" 2>/dev/null | grep -q "^$2\$"; then
    echo "-- $1 $2"
    go test -run '^$' -fuzz "^$2\$" -fuzztime 60s "$1" | tail -2
  fi
done
echo "soaks passed"
