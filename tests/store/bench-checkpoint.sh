#!/bin/bash
# The checkpoint benchmark (bench/bench_checkpoint.c) runs against this test's FerretDB and reports what
# doc/benchmarks.md and bench/run-all.sh read: one row per operation, the median ratio inside its confidence
# interval, the interval's coverage for the repetitions asked for. No timing is judged here (bench/ does that).
. ./tests/env.sh
B="$top_builddir/bench/bench_checkpoint"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# rows FILE N COVERAGE: N rows, each ratio within its interval, the header's coverage COVERAGE.
rows() {
    "$PYTHON3" - "$@" <<'PY' || fail "bench_checkpoint's report ($1): $(cat "$1")"
import re, sys
text, n, cover = open(sys.argv[1]).read(), int(sys.argv[2]), sys.argv[3]
assert re.search(r"covering %s%% at \d+ repetitions" % re.escape(cover), text), "coverage %s%%" % cover
rows = re.findall(r"^\| ((?:save|load) 1 MiB \((?:buffer|file)\)) +\|(.*)\|$", text, re.M)
assert len(rows) == n, "%d rows, want %d" % (len(rows), n)
for name, rest in rows:
    cells = [c.strip() for c in rest.split("|")]
    assert len(cells) == 9, (name, cells)
    ratio = float(cells[2])
    lo, hi = (float(x) for x in cells[8].split("-"))
    assert 0 < lo <= ratio <= hi, (name, lo, ratio, hi)
    walls = float(cells[0]), float(cells[1])
    assert all(w > 0 for w in walls), (name, walls)
PY
}
"$B" --port "$NEM_TEST_PORT" --reps 3 --mib 1 >"$T/three.txt" 2>"$T/err" || fail "bench_checkpoint --reps 3: $(cat "$T/err")"
rows "$T/three.txt" 4 75.0
"$B" --port "$NEM_TEST_PORT" --reps 6 --mib 1 --no-file --control >"$T/six.txt" 2>"$T/err" ||
    fail "bench_checkpoint --reps 6 --control: $(cat "$T/err")"
rows "$T/six.txt" 2 96.9
grep -q "CONTROL (A/A)" "$T/six.txt" || fail "--control does not say it is a control run"
# bad arguments: one line, exit 2
expect_fail 2 "reps must be 1" "$B" --port "$NEM_TEST_PORT" --reps 0
expect_fail 2 "mib takes sizes" "$B" --port "$NEM_TEST_PORT" --mib 1,x
echo "bench-checkpoint: ok"
