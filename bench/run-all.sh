#!/bin/bash
# `make bench`: every benchmark in one run, written to doc/benchmarks.md (and a plot of ingest rate and per-round
# overhead against the number of workers, doc/benchmarks.png, when gnuplot is installed). Every figure is a median
# of REPS repetitions after a warm-up, as a ratio against a baseline measured in the same run on the same server.
# Usage: bench/run-all.sh BUILD_DIR OUT.md [--reps N]   (MPIRUN and PYTHON3 name the programs)
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:?usage: run-all.sh BUILD_DIR OUT.md [--reps N]}" && pwd) || exit 2
out=${2:?usage: run-all.sh BUILD_DIR OUT.md [--reps N]}
shift 2
reps=5
[ "${1:-}" = --reps ] && reps=${2:?--reps needs a value}
python3=${PYTHON3:-/usr/bin/python3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nemesyst-bench-all.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
status=0
section() { # NAME COMMAND...: runs it, keeps its output for the report
    local name=$1
    shift
    echo "== $name" >&2
    if ! "$@" >"$tmp/$name.txt" 2>"$tmp/$name.err"; then
        status=1
        echo "(failed: $(tail -3 "$tmp/$name.err" | tr '\n' ' '))" >>"$tmp/$name.txt"
    fi
    cat "$tmp/$name.txt" >&2
}

section stage "$here/run-stage.sh" "$build" --reps "$reps" --docs 20000 --feed-docs 20000 --workers 1-4
section store "$here/run-store.sh" "$build/bench/bench_store" --reps "$reps"
section store256 "$here/run-store.sh" "$build/bench/bench_store" --reps "$reps" --mib 256 --docs 1000
# Checkpoints against raw GridFS: 16 MiB with 3x the repetitions (a pair takes under a second), its A/A control,
# then 256 MiB.
section checkpoint "$here/run-store.sh" "$build/bench/bench_checkpoint" --reps $((3 * reps)) --mib 16
section checkpointctl "$here/run-store.sh" "$build/bench/bench_checkpoint" --reps $((3 * reps)) --mib 16 --control
section checkpoint256 "$here/run-store.sh" "$build/bench/bench_checkpoint" --reps "$reps" --mib 256
section instr "$here/run-instr.sh" "$build" --docs 2000,6000
section memory "$here/run-memory.sh" "$build" --docs 100000,1000000
section serve "$build/bench/bench_serve" --reps "$reps"
section groups "$here/run-groups.sh" "$build" --reps "$reps" --docs 12000
section registry "$here/run-registry.sh" "$build" --models 100,1000 --docs 1000000 --reps 3
# Bundles (issue 21): 10^6 documents and a 256 MiB model; 3 repetitions (one takes minutes).
section bundle "$here/run-bundle.sh" "$build" --reps 3 --docs 1000000 --model-mib 256

# Start-up: nemesyst --help, and a one-rank run of a one-document cleaner, against a Python interpreter importing
# pymongo (2.0.6 starts with that much); medians of REPS after a warm-up, in ms.
startup() {
    . "$here/../tests/fixtures/ferretdb.sh"
    trap nem_ferretdb_stop RETURN
    nem_ferretdb_start >/dev/null || return 1
    printf '#!/bin/sh\necho "{\\"one\\": 1}"\n' >"$tmp/one.sh" && chmod +x "$tmp/one.sh"
    printf 'def main(**kwargs):\n    db = kwargs["db"]\n    db.connect()\n    yield {"one": 1}\n' >"$tmp/one.py"
    "$python3" - "$reps" "$build/nemesyst" "$tmp/one.sh" "$NEM_TEST_PORT" "$python3" "$tmp/one.py" <<'PY'
import statistics, subprocess, sys, time
reps, nem, one, port, py, onepy = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
def ms(cmd):
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # warm-up
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        t.append((time.perf_counter() - t0) * 1000)
    return statistics.median(t), min(t), max(t)
base = ms([py, "-c", "import pymongo"])
run = [nem, "--db-ip", "127.0.0.1", "--db-port", port, "--db-name", "bench_startup", "--data-clean",
       "--data-collection", "c", "--data-cleaner"]
rows = [("nemesyst --help", ms([nem, "--help"])),
        ("one-rank run, 1-document cleaner (executable)", ms(run + [one])),
        ("one-rank run, 1-document Python cleaner that connects (adapter, pymongo)", ms(run + [onepy]))]
print("| start-up | median ms | min-max ms | ratio to `python3 -c 'import pymongo'` (%.0f ms) |" % base[0])
print("|---|---|---|---|")
for name, (m, lo, hi) in rows:
    print("| %s | %.0f | %.0f-%.0f | %.2f |" % (name, m, lo, hi, m / base[0]))
PY
}
section startup startup

# The report.
{
    echo "# Benchmarks"
    echo
    echo "Written by \`make bench\` (bench/run-all.sh) from one run: every figure is a median of $reps repetitions after"
    echo "a warm-up, next to a baseline measured in the same run on the same server. Do not edit by hand."
    echo
    echo "## Machine"
    echo
    echo "- $(nproc) CPU(s), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) memory, $(uname -sr)"
    echo "- nemesyst $("$build/nemesyst" --version | awk '{print $2}'), FerretDB $("$here/../build-aux/build-ferretdb.sh" --print-version) (SQLite backend), $(pkg-config --modversion libmongoc-1.0 2>/dev/null | sed 's/^/libmongoc /'), $(mpirun --version 2>/dev/null | head -1)"
    echo "- $("$python3" --version), pymongo $("$python3" -c 'import pymongo; print(pymongo.version)')"
    echo "- date $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "Documents are generated: the ingest and feed benchmarks use 20,000 small documents (about 212 bytes: an"
    echo "int and 7 strings and 7 ints); the store benchmark its own small documents and a file of random bytes."
    echo
    echo "## Stage: ingest, learner feed, rounds, idle ranks"
    echo
    echo '```'
    cat "$tmp/stage.txt"
    echo '```'
    echo
    echo "## Store: bulk writes and GridFS against raw libmongoc"
    echo
    cat "$tmp/store.txt"
    echo
    echo "The same at 256 MiB:"
    echo
    grep '^|' "$tmp/store256.txt" | grep -v 'bulk insert' || cat "$tmp/store256.txt"
    echo
    echo "## Checkpoints against raw GridFS"
    echo
    cat <<'TEXT'
A checkpoint's save (`nem_ckpt_save_*`: the GridFS upload with the sha256 computed on a thread of its own as the
bytes stream, then the pruning to the newest N) and load (`nem_ckpt_load_*`: the listing, the GridFS download with
the sha256 checked as it streams, before the bytes are handed over or the file renamed into place) against
`nem_gridfs_upload_*` and `nem_gridfs_download_to_*` of the same random bytes into the same bucket; the goal is at
most 1.05x. The control is the same run with a second raw store in the checkpoint's place: its ratios are the
machine's noise at the time. CPU c/r counts this process's and FerretDB's CPU seconds, which a busy machine does
not stretch. Each timed step starts once the server is at rest, and the last column is a distribution-free
confidence interval of the median ratio (the repetitions' order statistics; its coverage is in the header). One at a time: `make bench-checkpoint` (`BENCH_CHECKPOINT_ARGS="--reps 15 --mib 16,256"`).
TEXT
    echo
    head -3 "$tmp/checkpoint.txt"
    echo
    grep '^|' "$tmp/checkpoint.txt" || cat "$tmp/checkpoint.txt"
    echo
    echo "At 256 MiB:"
    echo
    grep '^|' "$tmp/checkpoint256.txt" || cat "$tmp/checkpoint256.txt"
    echo
    echo "Control (A/A), 16 MiB, the ckpt columns being the second raw store:"
    echo
    grep '^|' "$tmp/checkpointctl.txt" || cat "$tmp/checkpointctl.txt"
    echo
    grep -h '^For scale' "$tmp/checkpoint.txt" "$tmp/checkpoint256.txt"
    echo
    echo "## Client CPU per ingested document (callgrind)"
    echo
    echo '```'
    cat "$tmp/instr.txt"
    echo '```'
    echo
    echo "## Memory while ingesting 10^5 and 10^6 documents"
    echo
    echo '```'
    cat "$tmp/memory.txt"
    echo '```'
    echo
    echo "## Learner groups: one epoch of the example's learners at K = 1 and 2"
    echo
    echo "The same cleaned documents; the learners alone on one worker rank, then as groups of 2 on two. The server's"
    echo "CPU says where the time goes: each member reads its shard with a range query on _id, which MongoDB answers"
    echo "from the _id index, but which FerretDB's SQLite backend answers by scanning the collection, once per member."
    echo
    echo '```'
    cat "$tmp/groups.txt"
    echo '```'
    echo
    echo "## Bundles: bundle --with-data and import against raw reads and inserts"
    echo
    echo "A run whose learner consumed 10^6 documents and stored a 256 MiB model: \`nemesyst-registry bundle RUN"
    echo "--with-data\` against a find of the same documents into a file and the GridFS download of the model, and"
    echo "\`import\` into a new database against insert_many of those documents and the GridFS upload (bench/run-bundle.sh;"
    echo "one at a time: \`make bench-bundle\`, \`BENCH_BUNDLE_ARGS=\"--docs 100000 --model-mib 32\"\` for a quick one)."
    echo
    cat "$tmp/bundle.txt"
    echo
    echo "## Server start (against 2.0.6's fixed sleeps)"
    echo
    echo '```'
    sed "s|$HOME/|~/|g" "$tmp/serve.txt" # the report names no path outside the project but the cache's
    echo '```'
    echo
    echo "## Start-up"
    echo
    cat "$tmp/startup.txt"
    echo
    echo "## The goals, from the tables above"
    echo
    "$python3" - "$tmp" <<'PY'
import re, sys
d = sys.argv[1]
stage = open(d + "/stage.txt").read()
def row(name, text=stage):
    m = re.search(r"^" + re.escape(name) + r"\s+(.*)$", text, re.M)
    return m.group(1).split() if m else None
def ratio(r, i):
    try:
        return float(r[i])
    except (TypeError, IndexError, ValueError):
        return None
print("| path | goal | measured here | met |")
print("|---|---|---|---|")
def line(path, goal, value, met):
    print("| %s | %s | %s | %s |" % (path, goal, value, "yes" if met else "**no**"))
for name in ("executable (JSON lines)", "Python (adapter)", "C plugin (nemesyst_emit)"):
    r = ratio(row(name), 2)
    if r:
        line("ingest, " + name + ", with provenance", "<= 1.15x the raw insert_many time", "%.2fx" % (1 / r), 1 / r <= 1.15)
r = ratio(row("executable, no provenance"), 2)
if r:
    line("ingest, executable, no provenance", "(for scale)", "%.2fx" % (1 / r), True)
py = stage[stage.find("Python feed"):]
for b in ("32", "1024"):
    r = ratio(row(b, py), 4)
    if r:
        line("Python feed, batch " + b, "at least as fast as 2.0.6", "%.2fx 2.0.6's documents/s" % r, r >= 1.0)
for n, pct in re.findall(r"^-n (\d+): idle_cpu_pct blocking [\d.]+ nemesyst ([\d.]+)", stage, re.M):
    line("idle rank, -n " + n, "<= 2% of a core", pct + "%", float(pct) <= 2)
par = stage[stage.find("Parallel rounds"):]
for k, shape, ratio_ in re.findall(r"^(\d+)\s+(.+?)\s+[\d.]+\s+[\d.]+-[\d.]+\s+([\d.]+)$", par.split("\n\n")[0], re.M):
    line("parallel rounds, K = %s, %s" % (k, shape), "well under 2.0.6's K s", "%.2f of K s" % float(ratio_),
         float(ratio_) < 0.9)
try:
    mem = open(d + "/memory.txt").read()
    worst = {}
    for kind, n, role, x in re.findall(r"^(\w+)\s+(\d+)\s+[\d.]+\s+(.+?)\s+[\d.]+\s+([\d.]+)$", mem, re.M):
        worst[kind] = max(worst.get(kind, (0, "")), (float(x), role))
    for kind, (x, role) in sorted(worst.items()):
        line("memory, %s cleaner, 10^6 against 10^5 documents" % kind, "flat (<= 1.10x)",
             "%.2fx (%s, the largest growth)" % (x, role), x <= 1.10)
except OSError:
    pass
for f in ("checkpoint", "checkpoint256"):
    try:
        text = open(d + "/" + f + ".txt").read()
    except OSError:
        continue
    # the table's columns: 2 skipped, the ratio, 4, the CPU ratio, the ratio's confidence interval
    skip, cap = r" +[\d.]+ \|", r" +([\d.]+) \|"
    for op, mib, kind, ratio_, cpu, ci in re.findall(
            r"^\| (save|load) (\d+) MiB \((\w+)\) +\|" + skip * 2 + cap + skip * 4 + cap + r" +([\d.]+-[\d.]+) +\|$",
            text, re.M):
        raw = "upload" if op == "save" else "download"
        line("checkpoint %s, %s MiB, %s" % (op, mib, kind), "<= 1.05x the raw GridFS %s" % raw,
             "%.3fx (interval %s; CPU %.3fx)" % (float(ratio_), ci, float(cpu)), float(ratio_) <= 1.05)
st = open(d + "/startup.txt").read()
for name, goal, limit in (("nemesyst --help", "never starts MPI", None),
                          ("one-rank run, 1-document cleaner (executable)", "<= 0.2 s", 200)):
    m = re.search(r"^\| " + re.escape(name) + r" \| (\d+) ", st, re.M)
    if m:
        line(name, goal, m.group(1) + " ms", limit is None or int(m.group(1)) <= limit)
PY
} >"$out"

# The plot: per-round overhead against worker ranks, with MPI_Barrier at the same rank counts, and the ingest rate
# by workers (on this machine's cores: past them, workers share CPUs with the server).
if command -v gnuplot >/dev/null; then
    awk '/^Orchestration per round/ {rounds=1; next} rounds && /^[0-9]+ +[0-9]+ +[0-9.]+/ {print $1, $3, $6}
         rounds && /^$/ {rounds=0}' "$tmp/stage.txt" >"$tmp/rounds.dat"
    awk '/^Ingest by workers/ {on=1; next} on && /^[0-9]+ +[0-9.]+/ {print $1, $4} on && /^$/ {on=0}' \
        "$tmp/stage.txt" >"$tmp/scaling.dat"
    if [ -s "$tmp/rounds.dat" ]; then
        plot='plot "'$tmp/rounds.dat'" using 1:2 axes x1y1 with linespoints title "nemesyst round (ms)", "'$tmp/rounds.dat'" using 1:3 axes x1y1 with linespoints title "MPI_Barrier (ms)"'
        [ -s "$tmp/scaling.dat" ] && plot+=', "'$tmp/scaling.dat'" using 1:2 axes x1y2 with linespoints title "ingest (documents/s, right axis)"'
        gnuplot <<GP || status=1
set terminal png size 800,480 noenhanced
set xtics 1
set output "${out%.md}.png"
set title "nemesyst by worker ranks: per-round overhead against MPI_Barrier, and ingest rate"
set xlabel "worker ranks"
set ylabel "ms per round"
set logscale y
set y2label "documents/s"
set y2tics
set y2range [0:*]
set key bottom right
$plot
GP
        printf '\n![per-round overhead and ingest rate by workers](%s)\n' "$(basename "${out%.md}.png")" >>"$out"
    fi
else
    printf '\n(No plot: gnuplot is not installed; `apt-get install gnuplot-nox` adds it.)\n' >>"$out"
fi
echo "bench: wrote $out" >&2
exit $status
