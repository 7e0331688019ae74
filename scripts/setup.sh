#!/usr/bin/env bash
# Puts on this machine what framering's tests and optional backends need,
# and does nothing that is already done. Sourced (or run) by
# scripts/test.sh, scripts/pipeline.sh and .ci/run, so that a newcomer's two
# commands need no step of their own.
#
#   - Debian packages (installed with apt-get when run as root, else listed
#     with the command to install them): gcc/make/clang for the C SDK,
#     libframering and its fuzzers; Aravis and its GigE camera simulator;
#     GStreamer and its plugins; Debian's python3 with numpy, pytest and
#     OpenCV; Chromium (the web view's browser test); prometheus (promtool);
#     iproute2 (network namespaces for the camera and bridge tests).
#   - Go tools at pinned versions from the Go module proxy: staticcheck.
#
# FRAMERING_SETUP=skip skips all of it (for a machine set up by hand).
set -euo pipefail

[ "${FRAMERING_SETUP:-}" = skip ] && return 0 2>/dev/null || true
[ "${FRAMERING_SETUP:-}" = skip ] && exit 0

FRAMERING_DEBS=(
  gcc make pkg-config libc6-dev clang libclang-rt-14-dev
  libaravis-dev aravis-tools aravis-tools-cli libusb-1.0-0-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  python3 python3-numpy python3-pytest python3-opencv
  chromium prometheus iproute2 procps
  iceoryx libiceoryx-binding-c-dev libiceoryx-binding-c2
)

framering_missing_debs() {
  local missing=()
  for p in "${FRAMERING_DEBS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  echo "${missing[@]:-}"
}

missing=$(framering_missing_debs)
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: $missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >&2
  else
    echo "setup: missing Debian packages: $missing" >&2
    echo "setup: install them with: sudo apt-get install $missing" >&2
    exit 1
  fi
fi

export PATH="$PATH:$(go env GOPATH)/bin"
if ! command -v staticcheck >/dev/null || ! staticcheck -version 2>/dev/null | grep -q '2025.1.1\|0.8.2\|v0.8.2'; then
  echo "setup: installing staticcheck v0.8.2 from the Go module proxy" >&2
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
