#!/bin/sh
# Build FerretDB (the zero-install embedded server) from the Go module proxy.
# Usage: build-ferretdb.sh [OUTPUT_BINARY]
#        build-ferretdb.sh --print-version   the pinned release (configure and the tests read it here)
#        build-ferretdb.sh --print-path      where the binary is ($NEMESYST_FERRETDB, else the build cache)
# The binary is cached: nothing is rebuilt when OUTPUT_BINARY already runs.
# VERSION is the one place the FerretDB release is named: src/serve/engine.c gets it from configure.
# Why not `go install`: the module zip lacks build/version/version.txt and the
# resulting binary panics at start, so we copy the module and write that file.
set -eu
VERSION=v1.24.2
MODULE=github.com/FerretDB/FerretDB
cached=${NEMESYST_FERRETDB:-${XDG_CACHE_HOME:-$HOME/.cache}/nemesyst/ferretdb-$VERSION/ferretdb}
case ${1:-} in
--print-version) printf '%s\n' "$VERSION"; exit 0 ;;
--print-path) printf '%s\n' "$cached"; exit 0 ;;
esac
out=${1:-$cached}

if [ -x "$out" ] && "$out" --version >/dev/null 2>&1; then
    echo "ferretdb: cached at $out"
    exit 0
fi
command -v go >/dev/null 2>&1 || { echo "build-ferretdb: go is not on PATH (install Go >= 1.24)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ferretdb-build.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT INT TERM
cd "$work"
dir=$(GOFLAGS=-mod=mod go mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -d "$dir" ] || { echo "build-ferretdb: go mod download of $MODULE@$VERSION failed" >&2; exit 1; }
cp -R "$dir" src
chmod -R u+w src
mkdir -p src/build/version
printf '%s\n' "$VERSION" > src/build/version/version.txt
mkdir -p "$(dirname "$out")"
(cd src && CGO_ENABLED=0 go build -trimpath -o "$out.tmp" ./cmd/ferretdb)
mv "$out.tmp" "$out"
echo "ferretdb: built $out"
