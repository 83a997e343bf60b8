#!/bin/bash
# Client instructions per ingested document, counted by valgrind --tool=callgrind: repeatable where times on a
# shared machine are not. Each path runs at N1 and at N2 documents; (Ir(N2) - Ir(N1)) / (N2 - N1) is the marginal
# count per document, so start-up, connection and the run record cancel out.
#   raw:  bench_stage_ingest --raw-once: build the documents with libbson, one mongoc insert_many
#   ours: nemesyst --data-clean with each script kind, the documents of the raw baseline:
#         "all" counts every process of our side (nemesyst and its script: awk, the Python adapter, the plugin
#         host), "host" nemesyst's own process (parsing the script's output, provenance, the bulk writer).
# The server's instructions are not counted.
# Usage: bench/run-instr.sh BUILD_DIR [--docs N1,N2]        (needs valgrind; PYTHON3 names the interpreter)
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:?usage: run-instr.sh BUILD_DIR [--docs N1,N2]}" && pwd) || exit 2
shift
sizes=2000,6000
[ "${1:-}" = --docs ] && sizes=${2:?--docs needs N1,N2}
n1=${sizes%,*} n2=${sizes#*,}
case "$n1$n2" in '' | *[!0-9]*) echo "run-instr.sh: --docs wants N1,N2, got '$sizes'" >&2; exit 2 ;; esac
[ "$n2" -gt "$n1" ] || { echo "run-instr.sh: --docs N1,N2 wants N2 > N1" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "run-instr.sh: valgrind is not installed (Debian: valgrind)" >&2; exit 2; }
python3=${PYTHON3:-/usr/bin/python3}

. "$here/lib.sh"
bench_start instr
export PYTHON3="$python3"

# count N LABEL COMMAND...: prints "ALL HOST" instructions of COMMAND's process tree and of its first process
count() {
    local n=$1 label=$2 dir="$tmp/cg-$2-$1"
    shift 2
    mkdir -p "$dir"
    BENCH_STAGE_DOCS=$n valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/cg.%p" \
        "$@" >"$dir/out" 2>"$dir/err" || { echo "run-instr.sh: $label at $n documents failed:" >&2; tail -5 "$dir/err" >&2; return 1; }
    # The command's own process: the largest count among the files whose cmd: names the program. (Callgrind
    # writes one file per process; a child forked to run the script starts with a copy of its parent's counts,
    # made before any document flowed, so they cancel in the difference between N1 and N2.)
    awk -v prog="$1" '
        FNR == 1 { mine = 0 }
        /^cmd:/ { mine = ($2 == prog) }
        /^summary:|^totals:/ { v[FILENAME] = $2; if (mine && $2 + 0 > host + 0) host = $2 }
        END { for (f in v) all += v[f]; printf "%d %d\n", all, host }' "$dir"/cg.*
}

nem=("$build/nemesyst" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name bench_instr --data-clean
     --data-collection ingest --log-level warn --data-cleaner)
declare -A script=([exec]="$here/stage/emit-json.sh" [python]="$here/stage/clean.py"
                   [plugin]="$build/bench/stage/.libs/bench_plugin.so")
echo "Client instructions per ingested document (valgrind --tool=callgrind, marginal between $n1 and $n2 documents"
echo "of about 212 bytes; ratio = ours / raw; the server is not counted)"
printf '%-28s %14s %9s %14s %9s\n' path "all instr/doc" "x raw" "host instr/doc" "x raw"
read -r a1 _ < <(count "$n1" raw "$build/bench/bench_stage_ingest" --raw-once --port "$NEM_TEST_PORT" --docs "$n1") || exit 1
read -r a2 _ < <(count "$n2" raw "$build/bench/bench_stage_ingest" --raw-once --port "$NEM_TEST_PORT" --docs "$n2") || exit 1
raw=$(( (a2 - a1) / (n2 - n1) ))
printf '%-28s %14d %9s %14s %9s\n' "raw insert_many" "$raw" 1.00 - -
for kind in exec plugin python; do
    read -r a1 h1 < <(count "$n1" "$kind" "${nem[@]}" "${script[$kind]}") || exit 1
    read -r a2 h2 < <(count "$n2" "$kind" "${nem[@]}" "${script[$kind]}") || exit 1
    all=$(( (a2 - a1) / (n2 - n1) )) host=$(( (h2 - h1) / (n2 - n1) ))
    awk -v k="$kind" -v a="$all" -v h="$host" -v r="$raw" 'BEGIN { printf "%-28s %14d %9.2f %14d %9.2f\n", k, a, a / r, h, h / r }'
done
