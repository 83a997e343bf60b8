#!/bin/sh
# The official OpenLineage JSON schemas the --openlineage events are checked against (tests/stage/stage-openlineage.sh):
# the core spec nemesyst targets (2-0-2) and the facets it sends, cached once under ~/.cache/nemesyst.
# Usage: openlineage-spec.sh              fetch them into the cache when missing; print the directory
#        openlineage-spec.sh --print-path print the directory without fetching
# $NEMESYST_OPENLINEAGE_SPEC names a directory that already holds them (OpenLineage.json and facets/*.json, as in
# the spec/ folder of https://github.com/OpenLineage/OpenLineage): used as is, nothing fetched.
# Where from: each file from the URL that is its own "$id" on openlineage.io, checked to name itself so. (The
# openlineage-python package on PyPI would be the natural source, but its wheels and sdists ship Python models
# generated from the spec, not the JSON schemas: checked with `unzip -l` on openlineage_python-1.54.0's wheel.)
# Exit 0 with the directory on stdout; 1 with the reason on stderr.
set -eu
CORE=https://openlineage.io/spec/2-0-2/OpenLineage.json
FACETS="https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json
https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json
https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json
https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json
https://openlineage.io/spec/facets/1-0-0/InputStatisticsInputDatasetFacet.json"
dir=${NEMESYST_OPENLINEAGE_SPEC:-${XDG_CACHE_HOME:-$HOME/.cache}/nemesyst/openlineage-spec-2-0-2}
[ "${1:-}" = --print-path ] && { printf '%s\n' "$dir"; exit 0; }

have() { [ -s "$dir/OpenLineage.json" ] && for u in $FACETS; do [ -s "$dir/facets/${u##*/}" ] || return 1; done; }
if have; then printf '%s\n' "$dir"; exit 0; fi
[ -z "${NEMESYST_OPENLINEAGE_SPEC:-}" ] ||
    { echo "openlineage-spec: NEMESYST_OPENLINEAGE_SPEC=$dir lacks OpenLineage.json or facets/*.json" >&2; exit 1; }
command -v curl >/dev/null 2>&1 || { echo "openlineage-spec: curl is not installed" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/openlineage-spec.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$tmp/facets"
get() { # URL FILE: fetched, and its "$id" is URL
    curl -fsSL --max-time 30 --retry 2 -o "$2" "$1" ||
        { echo "openlineage-spec: cannot fetch $1 (no network?)" >&2; return 1; }
    grep -q "\"\\\$id\": *\"$1\"" "$2" || { echo "openlineage-spec: $1 is not the schema it should be" >&2; return 1; }
}
get "$CORE" "$tmp/OpenLineage.json"
for u in $FACETS; do get "$u" "$tmp/facets/${u##*/}"; done
mkdir -p "$dir/facets"
cp "$tmp/OpenLineage.json" "$dir/" && cp "$tmp"/facets/*.json "$dir/facets/"
printf '%s\n' "$dir"
