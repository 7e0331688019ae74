#!/usr/bin/env bash
# Builds framering's binaries into ./bin and runs producer + analyzer +
# archiver together on the synthetic source (10 s by default), then prints
# a summary. Options go to cmd/pipeline: scripts/pipeline.sh -h
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/ ./cmd/...
exec bin/pipeline "$@"
