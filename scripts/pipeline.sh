#!/usr/bin/env bash
# Builds framering's binaries into ./bin and runs producer + analyzer +
# archiver together on the synthetic source, then prints a summary.
# Options go to cmd/pipeline: scripts/pipeline.sh -h
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# With Aravis and GStreamer present (setup installs them), the binaries
# carry those sources too (-source aravis, -source gst).
go build -tags "aravis gst" -o bin/ ./cmd/...
exec bin/pipeline "$@"
