#!/usr/bin/env bash
# The clients benchmark: Go, C and Python consumers of one ring, 64 KiB and
# 8 MiB frames, lease-only and every byte; prints a markdown table and the
# goals (met / not met). Arguments go to clientbench (-seconds N, -json F).
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s -C clients/c lib bench
go run ./clients/bench -c clients/c/build/frbench -py clients/bench/consume.py "$@"
