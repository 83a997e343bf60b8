#!/bin/bash
# Leak and memory-error check under valgrind: the unit suites, one nemesyst run with a cleaner, a learner and a
# predictor of each kind (the plugin host runs under valgrind too), and a learner group of 2 on one rank. Open MPI's
# own allocations are suppressed
# (tests/valgrind.supp, openmpi-valgrind.supp); ours are not. Skipped (77) when valgrind is missing or under ASan.
. ./tests/env.sh
set -u
command -v valgrind >/dev/null 2>&1 || { echo "valgrind not installed"; exit 77; }
grep -q -- '-fsanitize' Makefile 2>/dev/null && { echo "sanitizer build: valgrind does not apply"; exit 77; }
supp=(--suppressions="$top_srcdir/tests/valgrind.supp")
[ -f /usr/share/openmpi/openmpi-valgrind.supp ] && supp+=(--suppressions=/usr/share/openmpi/openmpi-valgrind.supp)
vg=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=97 "${supp[@]}")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

for t in tests/unit/test_config tests/store/test_store_opts tests/serve/test_engines; do
    [ -x "$t" ] || continue
    CK_FORK=no "${vg[@]}" --log-file="$work/unit.log" "./$t" >/dev/null 2>&1
    rc=$?
    [ $rc -eq 97 ] && { cat "$work/unit.log"; fail "valgrind found errors in $t"; }
    [ $rc -eq 0 ] || fail "$t failed under valgrind ($rc)"
done

# The plugin host under valgrind, through the runner's override.
cat > "$work/host.sh" <<EOS
#!/bin/bash
exec ${vg[*]} --log-file=$work/host.%p.log "$top_builddir/nemesyst-plugin-host" "\$@"
EOS
chmod +x "$work/host.sh"
cat > "$work/clean.sh" <<'EOS'
#!/bin/sh
for i in 1 2 3; do echo "{\"i\": $i}"; done
EOS
chmod +x "$work/clean.sh"
plugin=$(ls "$top_builddir"/tests/stage/.libs/*.so 2>/dev/null | head -1)
[ -n "$plugin" ] || plugin=$(ls "$top_builddir"/tests/runner/.libs/plugin_fixture.so 2>/dev/null | head -1)
args=(--db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name vg --log-level warn --data-clean --data-collection vg
      --data-cleaner "$work/clean.sh")
[ -n "$plugin" ] && args+=("$plugin" --data-cleaner-entry-point main clean)
# --openlineage's sender thread and libcurl (its global init and cleanup), against a port nothing listens on.
closed=$("$PYTHON3" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
args+=(--openlineage "http://127.0.0.1:$closed/api/v1/lineage" --openlineage-timeout 1)
NEMESYST_PLUGIN_HOST="$work/host.sh" "${vg[@]}" --log-file="$work/nemesyst.log" "$top_builddir/nemesyst" "${args[@]}" \
    > "$work/out.txt" 2> "$work/err.txt"
rc=$?
[ $rc -eq 97 ] && { cat "$work/nemesyst.log"; fail "valgrind found errors in nemesyst"; }
[ $rc -eq 0 ] || { cat "$work/err.txt"; fail "nemesyst failed under valgrind ($rc)"; }
for log in "$work"/host.*.log; do
    [ -s "$log" ] && { cat "$log"; fail "valgrind found errors in the plugin host"; }
done
want=1; [ -n "$plugin" ] && want=2
[ "$(grep -c ' succeeded ' "$work/out.txt")" -eq "$want" ] || { cat "$work/out.txt"; fail "want $want scripts ok"; }
ls "$work"/host.*.log >/dev/null 2>&1 || [ -z "$plugin" ] || fail "the plugin host did not run under valgrind"

# A learner group of 2 on this one rank (--process-pool 2): shards, the allreduce socket, the group's lineage.
lin="$top_builddir/tests/groups/.libs/linear_plugin.so"
if [ -f "$lin" ]; then
    rm -f "$work"/host.*.log
    NEMESYST_PLUGIN_HOST="$work/host.sh" "${vg[@]}" --log-file="$work/group.log" "$top_builddir/nemesyst" \
        --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name vg --log-level warn --process-pool 2 --dl-learn \
        --dl-learner "$lin" --dl-learner-entry-point linear --dl-data-collection vg --dl-data-parallel 2 \
        --dl-epochs 3 --dl-output-model-collection vgm --run-name vg-group --tag k=v --tag note=valgrind \
        --openlineage "file:$work/group-events.jsonl" > "$work/gout.txt" 2> "$work/gerr.txt"
    rc=$?
    [ $rc -eq 97 ] && { cat "$work/group.log"; fail "valgrind found errors in nemesyst running a learner group"; }
    [ $rc -eq 0 ] || { cat "$work/gerr.txt"; fail "the learner group failed under valgrind ($rc)"; }
    for log in "$work"/host.*.log; do
        [ -s "$log" ] && { cat "$log"; fail "valgrind found errors in a group member's plugin host"; }
    done
    grep -Eq '^run [^ ]+: 1 script\(s\), 0 failed' "$work/gout.txt" || { cat "$work/gout.txt"; fail "the group did not succeed"; }
    # its OpenLineage events: the group's read facet with each member's shard
    grep -q '"shards"' "$work/group-events.jsonl" || fail "no learner group shards in the OpenLineage events"
    [ "$(wc -l < "$work/group-events.jsonl")" -eq 4 ] || fail "not 4 OpenLineage events for a run of one group"

    # nemesyst-registry: runs with every filter, and get (to a file, streamed and checked) of the group's model.
    reg=("$top_builddir/nemesyst-registry" --db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --db-name vg)
    model=$("${reg[@]}" --json models --bucket vgm | "$PYTHON3" -c 'import json, sys; print(json.load(sys.stdin)["models"][0]["id"])')
    [ -n "$model" ] || fail "no model of the learner group"
    for verb in "runs --name vg-group --tag k=v --tag note=valgrind --status succeeded --since 2020-01-01 --until 2999-01-01T00:00Z --script linear_plugin.so" \
        "get $model -o $work/model.bin" "--json get $model -o $work/model.bin --force"; do
        "${vg[@]}" --log-file="$work/registry.log" "${reg[@]}" $verb > "$work/rout.txt" 2> "$work/rerr.txt"
        rc=$?
        [ $rc -eq 97 ] && { cat "$work/registry.log"; fail "valgrind found errors in nemesyst-registry $verb"; }
        [ $rc -eq 0 ] || { cat "$work/rerr.txt"; fail "nemesyst-registry $verb failed under valgrind ($rc)"; }
    done
    [ -s "$work/model.bin" ] || fail "get wrote no model under valgrind"
fi
# Checkpoints: the test plugin's gd learner (full-batch gradient descent on a collection, a checkpoint every 5 steps)
# stopped at step 12, then --resume: saved pending and committed by the host, listed, loaded (chunks only) and
# pruned, the consumed data hashed; the weights checked against an uninterrupted run's, nemesyst-registry verify too.
if [ -n "$plugin" ]; then
    "$PYTHON3" -c 'import sys, pymongo
for d in ("vg", "vgck"):
    pymongo.MongoClient("127.0.0.1", int(sys.argv[1]))[d].vgpoints.insert_many(
        [{"_id": i, "x": [i / 10.0, 1.0 - i / 20.0], "y": 0.5 * i / 10.0 - 1.0} for i in range(20)])' "$NEM_TEST_PORT" ||
        fail "the checkpointing learner's data"
    ck=(--db-ip 127.0.0.1 --db-port "$NEM_TEST_PORT" --log-level warn --dl-learn --dl-learner "$plugin"
        --dl-learner-entry-point gd --dl-data-collection vgpoints --dl-data-pipeline '[{"$sort": {"_id": 1}}]'
        --dl-output-model-collection vgck)
    for step in ref stop resume; do
        rm -f "$work"/host.*.log
        case $step in
        ref) set -- --db-name vg ;;
        stop) set -- --db-name vgck ;;
        resume) set -- --db-name vgck --resume "$(sed -n 's/^run \([^:]*\): .*/\1/p' "$work/ck-stop.txt" | tail -n 1)" ;;
        esac
        NEM_T_STEPS=20 NEM_T_EVERY=5 NEM_T_DIE_AT=$([ $step = stop ] && echo 12 || echo -1) \
            NEMESYST_PLUGIN_HOST="$work/host.sh" "${vg[@]}" --log-file="$work/ck-$step.log" "$top_builddir/nemesyst" \
            "${ck[@]}" "$@" > "$work/ck-$step.txt" 2> "$work/ck-$step.err"
        rc=$?
        [ $rc -eq 97 ] && { cat "$work/ck-$step.log"; fail "valgrind found errors in nemesyst, checkpoints ($step)"; }
        want=0; [ $step = stop ] && want=4
        [ $rc -eq $want ] || { cat "$work/ck-$step.err"; fail "checkpoints ($step) under valgrind: exit $rc, want $want"; }
        for log in "$work"/host.*.log; do
            [ -s "$log" ] && { cat "$log"; fail "valgrind found errors in the plugin host, checkpoints ($step)"; }
        done
    done
    "$PYTHON3" -c 'import sys, gridfs, pymongo
c = pymongo.MongoClient("127.0.0.1", int(sys.argv[1]))
got = [(gridfs.GridFS(c[d], collection="vgck").get(f["_id"]).read(), f["metadata"]["started_at"],
        [(r["count"], r["digest"]) for r in f["metadata"]["_nemesyst"]["consumed"]])
       for d in ("vg", "vgck") for f in c[d]["vgck.files"].find()]
assert len(got) == 2 and got[0][0] == got[1][0] and got[0][2] == got[1][2] and got[1][1] == 10, got' "$NEM_TEST_PORT" ||
        fail "checkpoints under valgrind: the resumed weights or consumed data differ from the uninterrupted run's"
    model=$("$PYTHON3" -c 'import sys, pymongo; print(pymongo.MongoClient("127.0.0.1", int(sys.argv[1])).vgck["vgck.files"].find_one()["_id"])' "$NEM_TEST_PORT")
    "${vg[@]}" --log-file="$work/verify.log" "$top_builddir/nemesyst-registry" --db-ip 127.0.0.1 \
        --db-port "$NEM_TEST_PORT" --db-name vgck verify "$model" > "$work/verify.txt" 2>&1
    rc=$?
    [ $rc -eq 97 ] && { cat "$work/verify.log"; fail "valgrind found errors in nemesyst-registry verify"; }
    [ $rc -eq 0 ] && grep -q unchanged "$work/verify.txt" || { cat "$work/verify.txt"; fail "verify under valgrind ($rc)"; }
fi
echo "valgrind: clean"
