#!/usr/bin/env bash
# Builds framering's binaries into ./bin and runs producer + analyzer +
# archiver together on the synthetic source, then prints a summary.
# Options go to cmd/pipeline: scripts/pipeline.sh -h
#   scripts/pipeline.sh -source aravis                      the Aravis camera simulator
#   scripts/pipeline.sh -source aravis -camera 192.168.1.20 -set PixelFormat=Mono8   a real camera
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# With Aravis and GStreamer present (setup installs them), the binaries
# carry those sources too (-source aravis, -source gst).
go build -tags "aravis gst" -o bin/ ./cmd/...

# -source aravis without -camera: no camera is needed to see it work. The
# pipeline then runs against Aravis's GigE Vision camera simulator on
# loopback, inside a private network namespace: GigE Vision discovery
# broadcasts on every interface, and there the only one is lo.
source_arg="" camera_given=no prev=""
for a in "$@"; do
  case "$a" in
    -source=*|--source=*) source_arg=${a#*=} ;;
    -camera|-camera=*|--camera|--camera=*) camera_given=yes ;;
  esac
  if [[ $prev == -source || $prev == --source ]]; then source_arg=$a; fi
  prev=$a
done
if [[ $source_arg == aravis && $camera_given == no ]]; then
  echo "no -camera: using Aravis's GigE Vision simulator (arv-fake-gv-camera-0.8) on loopback, in a private network namespace"
  userns=()
  [[ $(id -u) == 0 ]] || userns=(--map-root-user)
  exec unshare --net "${userns[@]}" -- bash -c '
    set -u
    ip link set lo up
    arv-fake-gv-camera-0.8 -i 127.0.0.1 -s FRAMERING >/dev/null 2>&1 &
    sim=$!
    trap "kill $sim 2>/dev/null; wait $sim 2>/dev/null" EXIT
    for _ in $(seq 100); do
      arv-tool-0.8 -a 127.0.0.1 control DeviceID >/dev/null 2>&1 && break
      sleep 0.1
    done
    bin/pipeline -camera 127.0.0.1 "$@"' pipeline "$@"
fi
exec bin/pipeline "$@"
