#!/bin/sh
# Builds frbench and runs the full harness (a few minutes on 2 cores).
# Arguments go to frbench, e.g. ./bench/run.sh -quick, or -quiet 30s to
# wait for a quiet machine before each scenario, or -compare OLD (an
# earlier results.json or its directory) to print every metric's ratio
# new/old after the run. FRBENCH_OUT overrides the output directory
# (default bench-results/<timestamp> in the repository).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
go build -o "$tmp/frbench" ./bench/cmd/frbench
# framesrc's runs in the GStreamer section.
make -s -C clients/gstreamer BUILD="$tmp/gst" "$tmp/gst/libgstframering.so"
out=${FRBENCH_OUT:-$root/bench-results/$(date +%Y%m%d-%H%M%S)}
status=0
"$tmp/frbench" -out "$out" -framesrc-plugin "$tmp/gst" "$@" || status=$?
echo
echo "results went to $out:"
echo "  $out/results.md     (the tables above)"
echo "  $out/results.json   (everything, machine-readable)"
echo "  $out/latency.png    (latency against payload size)"
exit $status
