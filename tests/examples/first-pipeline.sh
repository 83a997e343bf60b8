#!/bin/bash
# README "Your first pipeline" runs as written. From README.md this takes the section's ```sh blocks (all but those
# under a heading that names Slurm) and runs them in order in one shell, as a user pasting them would, with HOME a
# fresh temporary directory (the first block copies examples/first from the top of the source tree to ~/first and
# goes there): nemesyst and nemesyst-registry on PATH (this build's), pkg-config finding nemesyst.pc (pointed at
# this build tree), the embedded FerretDB this build found (NEMESYST_FERRETDB, N_DB_ENGINE) on a free port
# (N_DB_PORT, which overrides first.conf's). Then it checks what they stored, for the three kinds of scripts: the
# CSV's rows, stamped; one model per kind, the means, with the data it consumed; the predictions, right, each
# marking its model; the lineage printed; verify saying unchanged; the server stopped and no process left.
. "${top_builddir:-.}/tests/env.sh" 2>/dev/null || . ./tests/env.sh
set -u
for tool in cc pkg-config awk; do
    command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done
# The executables are Python 3 programs with pymongo (#!/usr/bin/python3), as is the Python adapter.
/usr/bin/python3 -c 'import pymongo, gridfs' 2>/dev/null ||
    { echo "SKIP: /usr/bin/python3 cannot import pymongo (python3-pymongo)"; exit 77; }
ferretdb=$("$top_srcdir/build-aux/build-ferretdb.sh" --print-path) && [ -x "$ferretdb" ] ||
    { echo "SKIP: no FerretDB built ($top_srcdir/build-aux/build-ferretdb.sh)"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nemesyst-first.XXXXXX") || exit 99
work=$tmp/home/first
cleanup() {
    local pid
    pid=$(head -n1 "$work/db/nemesyst.pid" 2>/dev/null) && [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/home" "$tmp/bin" "$tmp/pc"

# The section's commands: the ```sh blocks of "## Your first pipeline", but not those of a Slurm subsection.
awk '/^## / { in_section = ($0 == "## Your first pipeline") }
     in_section && /^### / { slurm = /Slurm/ }
     in_section && !slurm && /^```sh$/ { printf "\n# --- README block %d\n", ++n; block = 1; next }
     block && /^```$/ { block = 0; next }
     block { print }' "$top_srcdir/README.md" >"$tmp/blocks.sh"
blocks=$(grep -c '^# --- README block' "$tmp/blocks.sh")
[ "$blocks" -ge 4 ] ||
    fail "README.md: $blocks command block(s) in \"## Your first pipeline\" (the format this test reads changed?)"
for want in 'cp -r examples/first' 'cc -shared' 'umask 077' '--db-init' '--db-start' '--data-clean' '--dl-learn' \
            '--i-predict' 'nemesyst-registry .*lineage' 'nemesyst-registry .*verify' '--db-stop'; do
    grep -Eq -- "$want" "$tmp/blocks.sh" || fail "README.md's first pipeline has no command with '$want'"
done

# Before the block that stops the server, the script calls first_check (below) on what was stored.
{
    echo 'set -eo pipefail'
    echo 'first_check() { "$FIRST_CHECK" "$PWD"; }'
    awk '/^# --- README block/ { if (buf != "") emit(); buf = $0 "\n"; next }
         { buf = buf $0 "\n" }
         function emit() { if (buf ~ /--db-stop/) print "first_check"; printf "%s", buf; buf = "" }
         END { emit() }' "$tmp/blocks.sh"
} >"$tmp/script.sh"
grep -qx first_check "$tmp/script.sh" || fail "no block of the section stops the server"

port=
for _ in $(seq 1 50); do
    p=$(nem_random_port)
    nem_port_free "$p" && { port=$p; break; }
done
[ -n "$port" ] || fail "no free port"

# first_check DIR (the script calls it before it stops the server): what the commands stored, read back.
cat >"$tmp/check.py" <<'PY'
import json, sys
import gridfs, pymongo

port, work = int(sys.argv[1]), sys.argv[2]
password = open(work + "/db.password").readline().rstrip("\n")
db = pymongo.MongoClient("127.0.0.1", port, username="first", password=password, authSource="first",
                         authMechanism="SCRAM-SHA-1", serverSelectionTimeoutMS=10000)["first"]
errors = []

def check(cond, msg):
    if not cond:
        errors.append(msg)

rows = []
with open(work + "/flowers.csv") as f:
    next(f)
    for line in f:
        length, kind, split = line.strip().split(",")
        rows.append((float(length), kind, split))
train = [r for r in rows if r[2] == "train"]
want = {k: sum(r[0] for r in train if r[1] == k) / sum(1 for r in train if r[1] == k) for k in {r[1] for r in train}}
runs = list(db.nemesyst_runs.find())
check(len(runs) == 3 and all(r.get("status") == "succeeded" for r in runs),
      "runs: %r" % [(r["_id"], r.get("status")) for r in runs])
for kind in ("py", "c", "exec"):
    docs = list(db["flowers_" + kind].find())
    check(sorted((d["length"], d["kind"], d["split"]) for d in docs) == sorted(rows),
          "flowers_%s holds %d documents, not the CSV's %d rows" % (kind, len(docs), len(rows)))
    check(all(isinstance(d.get("_nemesyst", {}).get("s"), type(d["_id"])) for d in docs),
          "flowers_%s: a document without its stamp" % kind)
    models = list(db["means_%s.files" % kind].find())
    check(len(models) == 1, "means_%s: %d models, want 1" % (kind, len(models)))
    if not models:
        continue
    model = models[0]
    means = json.loads(gridfs.GridFS(db, collection="means_" + kind).get(model["_id"]).read())
    check(set(means) == set(want) and all(abs(means[k] - want[k]) < 1e-9 for k in want),
          "means_%s: the model is %r, want %r" % (kind, means, want))
    meta = model.get("metadata", {})
    check(meta.get("means") and all(abs(meta["means"][k] - want[k]) < 1e-9 for k in want),
          "means_%s: metadata means %r" % (kind, meta.get("means")))
    consumed = meta.get("_nemesyst", {}).get("consumed") or [{}]
    check(consumed[0].get("collection") == "flowers_" + kind and consumed[0].get("count") == len(train)
          and len(consumed[0].get("digest", "")) == 64, "means_%s: consumed %r" % (kind, consumed))
    predictions = list(db["predictions_" + kind].find())
    test = sorted((r[0], r[1]) for r in rows if r[2] == "test")
    check(sorted((p["length"], p["kind"]) for p in predictions) == test,
          "predictions_%s: %r, want one per test row %r" % (kind, predictions, test))
    check(all(p.get("predicted") == p.get("kind") for p in predictions),
          "predictions_%s: wrong kinds %r" % (kind, [(p.get("kind"), p.get("predicted")) for p in predictions]))
    check(all(p.get("_nemesyst", {}).get("model") == model["_id"] for p in predictions),
          "predictions_%s: not marked with model %s: %r" % (kind, model["_id"],
                                                            [p.get("_nemesyst") for p in predictions]))
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print("first_check: the three kinds stored %d rows, a model and %d predictions each" % (len(rows), len(test)))
PY
cat >"$tmp/check.sh" <<CHECK
#!/bin/bash
head -n1 "\$1/db/nemesyst.pid" >"$tmp/server.pid" 2>/dev/null || { echo "no server running in \$1/db" >&2; exit 1; }
exec "$PYTHON3" "$tmp/check.py" "$port" "\$1"
CHECK
chmod +x "$tmp/check.sh"

# The user's environment: this build's programs on PATH, its nemesyst.pc, the FerretDB it found, a free port.
sed -e "s|^includedir=.*|includedir=$top_srcdir/include|" -e "s|^libdir=.*|libdir=$top_builddir/.libs|" \
    "$top_builddir/nemesyst.pc" >"$tmp/pc/nemesyst.pc" || fail "no nemesyst.pc"
ln -s "$NEMESYST" "$tmp/bin/nemesyst"
ln -s "$top_builddir/nemesyst-registry" "$tmp/bin/nemesyst-registry"
echo "first-pipeline: $blocks blocks from README.md, port $port, in $tmp/home"
(
    cd "$top_srcdir" &&
    HOME=$tmp/home PATH="$tmp/bin:$PATH" PKG_CONFIG_PATH="$tmp/pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" \
    LD_LIBRARY_PATH="$top_builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" NEMESYST_FERRETDB="$ferretdb" \
    N_DB_ENGINE=ferretdb N_DB_PORT=$port FIRST_CHECK="$tmp/check.sh" bash "$tmp/script.sh"
) >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 0 ] || { cat "$tmp/out" >&2; fail "the README's commands exit $rc (in the last '# --- README block' above)"; }
grep -E '^(run |stage |clean |learn |predict |model |consumed |predictions |data |unchanged|first_check)' "$tmp/out" |
    sed 's/^/  | /'

out=$tmp/out
grep -q "ferretdb ready on 127.0.0.1:$port" "$out" || fail "the server did not listen on port $port"
# every run's table: none failed, and 9 scripts in all (3 kinds x clean, learn, predict)
scripts=$(awk '/^run [^ ]+: [0-9]+ script\(s\), [0-9]+ failed/ { n += $3; if ($5 != 0) bad = 1 }
               END { print bad ? -1 : n + 0 }' "$out")
[ "$scripts" = 9 ] || { cat "$out" >&2; fail "the runs' tables: $scripts script(s) ok, want 9 and none failed"; }
grep -q '^first_check: ' "$out" || fail "the stored data was not checked"
[ "$(stat -c %a "$work/db.password")" = 600 ] || fail "db.password has mode $(stat -c %a "$work/db.password"), not 600"
grep -Eq '^model +[0-9a-f]{24} in bucket means_py' "$out" || fail "lineage printed no model line"
grep -Eq '^consumed +flowers_py: 9 documents, sha256 [0-9a-f]{64}' "$out" || fail "lineage printed no consumed data"
grep -Eq '^predictions +3 in predictions_py by predict-0' "$out" || fail "lineage printed no predictions"
grep -Eq '^data +flowers_py: unchanged' "$out" && grep -qx 'unchanged' "$out" || fail "verify did not say unchanged"

# Stopped, and nothing left behind.
pid=$(cat "$tmp/server.pid" 2>/dev/null) || fail "no server pid recorded"
# (a live process, not a zombie left for a subreaper to reap)
! { [ -r "/proc/$pid/stat" ] && ! sed 's/.*) //' "/proc/$pid/stat" | grep -q '^Z'; } ||
    fail "the server (pid $pid) still runs after --db-stop"
[ ! -e "$work/db/nemesyst.pid" ] || fail "pid file left after --db-stop"
nem_port_free "$port" || fail "port $port still in use after --db-stop"
for p in /proc/[0-9]*; do
    case $(readlink "$p/cwd" 2>/dev/null) in
    "$tmp"*) fail "a process is left in the example's directory: $(tr '\0' ' ' <"$p/cmdline")" ;;
    esac
done
echo "first-pipeline: the README's first pipeline ran as written, for Python scripts, a C plugin and executables"
