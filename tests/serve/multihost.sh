#!/bin/bash
# One job across two hosts for real: two network namespaces this test creates, joined by a veth pair, each with its
# own address and host name. Rank 0 and its server run on host A, the two workers on host B; Open MPI launches into
# B through --mca plm_rsh_agent (a small agent that enters the namespace), and `ip netns exec` reads
# /etc/netns/NAME/hosts, so each host resolves the other's name without touching /etc/hosts.
#   1. --db-bind-ip ADDR, without --db-ip: init with a user, start, clean on both workers, learn, predict; the
#      documents, the model and the predictions arrive, every script ran on B, and the server's log shows
#      connections from B's address.
#   2. --db-bind-ip HOSTNAME, without --db-ip: a clean stage on both workers.
#   3. --db-bind-ip 0.0.0.0: the log says what the server listens on.
#   4. a loopback-only --db-bind-ip with ranks on both hosts: refused with a clear message before anything starts.
#   5. learner groups across the hosts (rank 0 and rank 1 on A, rank 2 on B): a linear model alone, as a C plugin
#      group of 2 (nemesyst_allreduce over MPI) and as a PyTorch group of 2 (gloo, its rendezvous on A): the same
#      weights, one member on each host, the gradients crossing the veth pair.
# It removes the namespaces, the veth pair and every file it created, whatever happens. Needs root and iproute2:
# skipped (77) without them.
. ./tests/env.sh
. "$top_srcdir/tests/fixtures/netns.sh" # nem_two_hosts, nem_on
set -u
PLUGIN="$top_builddir/tests/runner/.libs/plugin_fixture.so"
[ -f "$PLUGIN" ] || fail "test plugin $PLUGIN not built (make check builds it)"

T=$(mktemp -d "${TMPDIR:-/tmp}/nemesyst-multihost.XXXXXX")
chmod 755 "$T"
cleanup() {
    local pid
    for pid in $(cat "$T"/db*/nemesyst.pid 2>/dev/null | awk '{print $1}'); do
        kill -TERM "$pid" 2>/dev/null
    done
    nem_two_hosts_down
    rm -rf "$T"
}
trap cleanup EXIT
nem_two_hosts nemh 77
cat >"$T/agent" <<'EOS'
#!/bin/sh
# Open MPI's launch agent here: `agent HOST command...` runs the command on HOST, that is in its namespace.
host=$1
shift
exec ip netns exec "$host" unshare --uts sh -c "hostname $host && $*"
EOS
chmod +x "$T/agent"
printf '%s slots=1\n%s slots=2\n' "$A" "$B" >"$T/hosts"
printf 'pw-multihost\n' >"$T/pw" && chmod 600 "$T/pw"
cat >"$T/clean.sh" <<'EOS'
#!/bin/sh
i=0
while [ $i -lt 50 ]; do echo "{\"i\": $i, \"host\": \"$(hostname)\"}"; i=$((i + 1)); done
EOS
chmod +x "$T/clean.sh"
port=$(nem_random_port)

# job LOG NEMESYST-ARGS...: one mpirun job from host A, rank 0 on A and ranks 1-2 on B
job() {
    local log=$1
    shift
    timeout -k 5 180 ip netns exec "$A" unshare --uts sh -c "hostname $A && exec \"\$@\"" job \
        "$MPIRUN" --hostfile "${HOSTFILE:-$T/hosts}" -n 3 --mca plm_rsh_agent "$T/agent" \
        --mca oob_tcp_if_include "$hosts_net" --mca btl tcp,self,vader --mca btl_tcp_if_include "$hosts_net" \
        -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM -x OMPI_MCA_mpi_yield_when_idle \
        "$NEMESYST" --db-engine ferretdb --db-port "$port" --db-user-name alice --db-password-file "$T/pw" "$@" \
        >"$log.out" 2>"$log.err"
}
show() { cat "$1.out"; sed 's/^/   stderr: /' "$1.err" | tail -n 30; }

# 1. --db-bind-ip ADDR, no --db-ip; the server stays up for the read-back
job "$T/one" --db-path "$T/db1" --db-log-path "$T/db1/log" --db-bind-ip "$ipa" --db-name mh --db-init --db-start \
    --process-pool 1 --data-clean --data-cleaner "$T/clean.sh" "$T/clean.sh" --data-collection c c \
    --dl-learn --dl-learner "$PLUGIN" --dl-learner-entry-point learn --dl-data-collection c \
    --dl-output-model-collection models \
    --i-predict --i-predictor "$PLUGIN" --i-predictor-entry-point predict --i-output-prediction-collection preds
rc=$?
show "$T/one"
[ "$rc" = 0 ] || fail "the two-host job with --db-bind-ip $ipa exited $rc"
grep -q "listening on $ipa port $port" "$T/one.err" || fail "the log does not say the server listens on $ipa"
nem_on "$A" "$PYTHON3" - "$ipa" "$port" "$T/pw" "$B" <<'PY' || fail "read-back from host A failed"
import sys, pymongo
ip, port, pwfile, host_b = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
pw = open(pwfile).read().strip()
db = pymongo.MongoClient(ip, port, username="alice", password=pw, authSource="mh", serverSelectionTimeoutMS=10000)["mh"]
def eq(got, want, what):
    if got != want:
        sys.exit("%s: got %r, want %r" % (what, got, want))
eq(db.c.count_documents({}), 100, "documents of the two cleaners")
eq(sorted(db.c.distinct("host")), [host_b], "the hosts the cleaners ran on")
eq(db["models.files"].count_documents({}), 1, "models stored")
eq(db.preds.count_documents({"_nemesyst.model": {"$exists": True}}) > 0, True, "predictions referencing the model")
run = db.nemesyst_runs.find_one(sort=[("started", -1)])
eq(run.get("status"), "succeeded", "run status")
eq(sorted({s.get("host") for s in run["scripts"].values()}), [host_b], "hosts of the run's scripts")
PY
# FerretDB logs each connection with its remote address
grep -Eq "$ipb:[0-9]+" "$T/db1/log/mongo_log" || fail "the server's log shows no connection from $ipb: $(tail -5 "$T/db1/log/mongo_log")"
job "$T/stop" --db-path "$T/db1" --db-log-path "$T/db1/log" --db-bind-ip "$ipa" --db-name mh --db-stop ||
    { show "$T/stop"; fail "--db-stop from host A"; }

# clean_job N BIND: init, start, two cleaners on B, stop, with --db-bind-ip BIND and no --db-ip
clean_job() {
    job "$T/job$1" --db-path "$T/db$1" --db-log-path "$T/db$1/log" --db-bind-ip "$2" --db-name "mh$1" --db-init \
        --db-start --db-stop --data-clean --data-cleaner "$T/clean.sh" "$T/clean.sh" --data-collection c c
    local rc=$?
    show "$T/job$1"
    [ "$rc" = 0 ] || fail "the two-host job with --db-bind-ip $2 exited $rc"
    grep -Eq '^run [^ ]+: 2 script\(s\), 0 failed' "$T/job$1.out" || fail "--db-bind-ip $2: not every script ok"
    grep -q "listening on $2 port $port" "$T/job$1.err" || fail "the log does not say the server listens on $2"
}
# 2. --db-bind-ip HOSTNAME; 3. --db-bind-ip 0.0.0.0 (the workers reach rank 0's host by name)
clean_job 2 "$A"
clean_job 3 0.0.0.0

# 4. loopback only, ranks on two hosts: refused before anything starts
job "$T/four" --db-path "$T/db4" --db-log-path "$T/db4/log" --db-bind-ip 127.0.0.1 --db-name mh4 --db-init --db-start \
    --db-stop --data-clean --data-cleaner "$T/clean.sh" --data-collection c
rc=$?
show "$T/four"
[ "$rc" = 3 ] || fail "a loopback-only server across hosts: exit $rc, want 3"
grep -q -- "--db-bind-ip" "$T/four.err" || fail "the refusal does not name --db-bind-ip"
[ ! -e "$T/db4/nemesyst.pid" ] || fail "a server was started for the refused job"
# 5. learner groups across the hosts
LIN="$top_builddir/tests/groups/.libs/linear_plugin.so" TORCH="$top_srcdir/tests/groups/linear_torch.py"
[ -f "$LIN" ] || fail "$LIN not built (make check builds it)"
printf '%s slots=2\n%s slots=1\n' "$A" "$B" >"$T/hosts2"
cat >"$T/points.sh" <<'EOS'
#!/bin/sh
awk 'BEGIN { s = 7; for (i = 0; i < 300; i++) { a = (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5
    b = (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5; c = (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5
    printf "{\"x\": [%.6f, %.6f, %.6f], \"y\": %.6f, \"use\": true}\n", a, b, c, 2 * a - b + 0.5 * c + 1 } }'
EOS
chmod +x "$T/points.sh"
learners=("$LIN" "$LIN")
entries=(linear linear)
if "$PYTHON3" -c 'import torch.distributed' 2>/dev/null; then learners+=("$TORCH"); entries+=(main); fi
HOSTFILE="$T/hosts2" job "$T/five" --db-path "$T/db5" --db-log-path "$T/db5/log" --db-bind-ip "$ipa" --db-name mh5 \
    --db-init --db-start --data-clean --data-cleaner "$T/points.sh" --data-collection points \
    --dl-learn --dl-learner "${learners[@]}" --dl-learner-entry-point "${entries[@]}" --dl-data-collection points \
    --dl-data-pipeline '[{"$match": {"use": true}}]' --dl-epochs 30 --dl-data-parallel 1 2 2 \
    --dl-output-model-collection l1 l2 l3
rc=$?
show "$T/five"
[ "$rc" = 0 ] || fail "the learner groups across hosts exited $rc"
nem_on "$A" "$PYTHON3" - "$ipa" "$port" "$T/pw" "$A" "$B" "${#learners[@]}" <<'PY' || fail "learner groups across hosts"
import sys, pymongo
ip, port, pwfile, host_a, host_b, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
pw = open(pwfile).read().strip()
db = pymongo.MongoClient(ip, port, username="alice", password=pw, authSource="mh5", serverSelectionTimeoutMS=10000)["mh5"]
def ok(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok: " + what)
w = {}
for b in ["l1", "l2", "l3"][:n]:
    files = list(db[b + ".files"].find())
    ok(len(files) == 1, "%s: one model (%d)" % (b, len(files)))
    meta = files[0]["metadata"]
    w[b] = meta["w"]
    if b != "l1":
        g = meta["_nemesyst"]["group"]
        ok(sorted(g["hosts"]) == sorted([host_a, host_b]), "%s: one member on each host: %r" % (b, g["hosts"]))
        ok(g["count"] == 300 and sum(m["count"] for m in g["members"]) == 300, "%s: the shards add up to 300" % b)
for b in w:
    err = max(abs(x - y) / max(abs(x), 1e-12) for x, y in zip(w["l1"], w[b]))
    print("across hosts: %s against l1, largest relative error %.3g" % (b, err))
    ok(err <= 1e-5, "%s: the weights of one process, to 1e-5" % b)
PY
HOSTFILE="$T/hosts2" job "$T/stop5" --db-path "$T/db5" --db-log-path "$T/db5/log" --db-bind-ip "$ipa" --db-name mh5 \
    --db-stop || { show "$T/stop5"; fail "--db-stop of the group job's server"; }
echo "multihost: ok ($A at $ipa, $B at $ipb)"
