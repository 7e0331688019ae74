#!/usr/bin/env bash
# Long soaks and stress runs, kept out of the default test run. Each one is
# bounded; FRAMERING_SOAK_SECONDS sets the ring soak's length (default 600),
# FRAMERING_MEMSOAK_SECONDS the memory soak's (default 1800, scripts/memsoak.sh),
# FRAMERING_RETENTION_SECONDS the archiver retention run's (default 180).
#   scripts/soak.sh            all soaks
#   FRAMERING_SOAK_SECONDS=3600 scripts/soak.sh
#   FRAMERING_FUZZTIME=10m scripts/soak.sh   (each fuzzer; default 60s)
#   FRAMERING_ARAVIS_SOAK_SECONDS=600 scripts/soak.sh   (the camera soak; default 120)
set -euo pipefail
cd "$(dirname "$0")/.."
export FRAMERING_SOAK=1
export FRAMERING_SOAK_SECONDS="${FRAMERING_SOAK_SECONDS:-600}"
secs=$FRAMERING_SOAK_SECONDS

echo "== ring: random kill -9 of consumers for ${secs}s (race detector on)"
go test -race -count=1 -run 'Soak' -timeout $((secs * 3 + 600))s -v ./ringbuf/ | tail -3

echo "== archive: 300 rounds of kill -9 during append, open and recovery"
go test -count=1 -run 'Soak' -timeout 60m -v ./archive/ | tail -3

echo "== archive retention: kill -9 at random and between the low-water mark and the unlinks, 100 rounds"
go test -count=1 -run 'TestRetentionCrash' -timeout 30m ./archive/ | tail -1

echo "== archiver retention under load (4 MiB cap, 1 MiB segments, kill -9 mid-deletion) for ${FRAMERING_RETENTION_SECONDS:-180}s"
FRAMERING_RETENTION_SECONDS="${FRAMERING_RETENTION_SECONDS:-180}" go test -count=1 -run '^TestRetention$' -timeout 30m -v ./cmd/archiver/ | grep -E '^(---|ok|FAIL)|largest archive'

echo "== memory and descriptors: producer, archiver, two analyzers for ${FRAMERING_MEMSOAK_SECONDS:-1800}s"
scripts/memsoak.sh

echo "== every soak-gated test elsewhere"
go test -count=1 -run 'Soak' -timeout 60m $(go list ./... | grep -v -E '/(ringbuf|archive)$')

echo "== Aravis camera: the producer on a lossy GigE Vision simulator killed and restarted every few seconds (${FRAMERING_ARAVIS_SOAK_SECONDS:-120}s)"
go test -tags aravis -count=1 -run 'AravisSoak' -timeout 60m -v ./cmd/producer/ | grep -E -- '--- |kills|ok|FAIL' | tail -5

fuzztime="${FRAMERING_FUZZTIME:-60s}"
echo "== fuzzers, $fuzztime each"
for target in \
  "./ringbuf FuzzDecodeDataHeader" "./ringbuf FuzzDecodeMessages" \
  "./frame FuzzVerify" "./frame FuzzUnpack16" \
  "./archive FuzzSegmentHeader" "./archive FuzzRecord" "./archive FuzzIndex" "./archive FuzzScan" \
  "./analysis FuzzAnalyze" "./analysis FuzzGeometry" "./native FuzzSharedRange" \
  "./results FuzzClient" "./results FuzzHello" \
  "./cmd/archiver/internal/archiver FuzzParseExternal" "./archive FuzzParseEvent"; do
  set -- $target
  # grep reads all of the list: with pipefail, grep -q would stop early,
  # SIGPIPE go test, and fail the check.
  if go test -list "^$2\$" "$1" 2>/dev/null | grep -x "$2" >/dev/null; then
    echo "-- $1 $2"
    log=$(mktemp)
    if ! go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" "$1" >"$log" 2>&1; then
      grep -v '^fuzz: elapsed' "$log" | tail -40   # a crasher is saved under testdata/fuzz/
      rm -f "$log"
      exit 1
    fi
    tail -1 "$log"
    rm -f "$log"
  else
    echo "fuzz target $2 not found in $1 (renamed? update scripts/soak.sh)"
    exit 1
  fi
done
# FRAMERING_FUZZTIME as seconds, for libFuzzer's -max_total_time.
fuzzsecs() {
  local t=$1
  case $t in
    *h) echo $(( ${t%h} * 3600 )) ;;
    *m) echo $(( ${t%m} * 60 )) ;;
    *s) echo "${t%s}" ;;
    *) echo "$t" ;;
  esac
}
echo "== libframering's libFuzzer targets (headers, messages), $fuzztime each"
make -s -C clients/c fuzz FUZZTIME="$(fuzzsecs "$fuzztime")"

echo "soaks passed"
