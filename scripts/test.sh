#!/usr/bin/env bash
# The project's test command (README.md): set-up (scripts/setup.sh), static
# checks, then every test with the race detector, then the cgo-specific and
# cgo-free variants. Long soaks are not run here: see scripts/soak.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export PATH="$PATH:$(go env GOPATH)/bin"

# The optional native backends (Aravis cameras, GStreamer) build only with
# these tags; the default build needs nothing but Go and gcc, and is
# checked too.
TAGS="aravis gst"

step() { printf '\n== %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi

step "go vet (default build, CGO_ENABLED=0, and -tags '$TAGS')"
go vet ./...
CGO_ENABLED=0 go vet ./...
go vet -tags "$TAGS" ./...

step "staticcheck"
staticcheck -tags "$TAGS" ./...

step "libframering: ASan+UBSan and TSan unit tests, exported symbols, make install, fuzzers briefly, Go-driven tests on the TSan build"
make -s -j2 -C clients/c test
# go test ./clients/c (below) reuses the ASan+UBSan build made here.
export FRAMERING_C_BUILD="$PWD/clients/c/build/asan"

step "framesrc (GStreamer plugin, clients/gstreamer): release build, and its C unit test under ASan+UBSan"
make -s -C clients/gstreamer all unit
# Its Go-driven tests (real producers, gst-launch-1.0 with the sanitized
# plugin, the two-host bridge) run in go test ./clients/gstreamer below.

step "go test -race -tags '$TAGS' ./... (includes the layering/hazard-zone check and the C sanitizer build)"
go test -race -tags "$TAGS" -count=1 -timeout 15m ./...

step "framering for Python, with Debian's interpreter: /usr/bin/python3 -m pytest clients/python"
/usr/bin/python3 -m pytest -q -p no:cacheprovider clients/python

step "CGO_ENABLED=0: the pure-Go synthetic source stands in for the C SDK"
CGO_ENABLED=0 go test -count=1 -timeout 10m $(go list ./... | grep -E '/(native|producer|cmd/producer)$' || true)

step "GOEXPERIMENT=cgocheck2: every pointer crossing into C checked"
GOEXPERIMENT=cgocheck2 go test -tags "$TAGS" -count=1 -timeout 10m $(go list ./... | grep -E '/(native|producer)$' || true)

echo
echo "all checks passed"
