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
# The iceoryx baseline needs RouDi and the C binding (Debian's iceoryx
# 2.0.3); installed here when missing and we are root.
iox_debs="iceoryx libiceoryx-binding-c-dev libiceoryx-binding-c2"
iox_missing=""
for p in $iox_debs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || iox_missing="$iox_missing $p"
done
if [ -n "$iox_missing" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "installing the iceoryx baseline's packages:$iox_missing"
		apt-get install -y --no-install-recommends $iox_missing >/dev/null ||
			{ apt-get update >/dev/null && apt-get install -y --no-install-recommends $iox_missing >/dev/null; } ||
			echo "could not install$iox_missing: the iceoryx baseline will be skipped" >&2
	else
		echo "not root: the iceoryx baseline will be skipped (apt-get install$iox_missing)" >&2
	fi
fi
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
