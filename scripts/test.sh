#!/usr/bin/env bash
# The project's test command (README.md): static checks, then every test
# with the race detector, then the cgo-specific and cgo-free variants.
# Long soaks are not run here: see scripts/soak.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:$(go env GOPATH)/bin"

step() { printf '\n== %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi

step "go vet (cgo and CGO_ENABLED=0)"
go vet ./...
CGO_ENABLED=0 go vet ./...

step "staticcheck"
if ! command -v staticcheck >/dev/null; then
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
staticcheck ./...

step "go test -race ./... (includes the layering/hazard-zone check and the C sanitizer build)"
go test -race -count=1 -timeout 15m ./...

step "CGO_ENABLED=0: the pure-Go synthetic source stands in for the C SDK"
CGO_ENABLED=0 go test -count=1 -timeout 10m $(go list ./... | grep -E '/(native|producer)$' || true)

step "GOEXPERIMENT=cgocheck2: every pointer crossing into C checked"
GOEXPERIMENT=cgocheck2 go test -count=1 -timeout 10m $(go list ./... | grep -E '/(native|producer)$' || true)

echo
echo "all checks passed"
