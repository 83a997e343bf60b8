#!/bin/bash
# Original-style Python scripts, written as 2.0.6's examples are (mnist_cleaner.py, mnist_learner.py with
# db.getCursor/db.getBatches yielding (metadata, pickle bytes), mnist_predictor.py with db.getCursor on
# "<bucket>.files" and db.GetFiles), run unchanged by plain `nemesyst` (no mpirun: one rank runs everything) from a
# config file in 2.0.6's format (mnist.conf's keys); the pickled model comes back from GridFS.
. ./tests/env.sh
. "$top_srcdir/tests/stage/lib.sh"
cat >"$T/mnist.conf" <<EOF
# 2.0.6's format: --key=value, key = value, key: value, bare booleans
--data-clean
data-cleaner = $FIX/original/mnist_cleaner.py
data-collection: mnist
dl-learn
--dl-learner=$FIX/original/mnist_learner.py
--dl-batch-size=3
--dl-epochs=2
--dl-output-model-collection=models
i-predict = true
--i-predictor=$FIX/original/mnist_predictor.py
--i-output-prediction-collection=predictions
EOF
stage_run 0 original --config "$T/mnist.conf"
expect_rc 0
grep -q "mnist_cleaner.py #0 (rank 0): importing mnist dataset to mongodb" "$ERR" || fail "the cleaner's print() not logged"
check original <<'PY'
import pickle, gridfs
eq(run["ranks"], 1, "ranks")
eq([script(k)["status"] for k in ("clean-0", "learn-0", "predict-0")], ["succeeded"] * 3, "scripts")
eq(count("mnist", {"dataset": "mnist", "img_count": 11}), 11, "cleaned examples")
eq(sorted(d["img_num"] for d in docs("mnist")), list(range(11)), "img_num values")
ms = models("models")
eq(len(ms), 1, "models")
meta = ms[0]["metadata"]
eq((meta["model"], meta["seen"]), ("mnist_example", 16), "model metadata (8 training examples x 2 epochs)")
eq((meta["args"]["process"], meta["args"]["dl_epochs"]), (0, [2]), "the args dict the learner saw")
ok("db_password" not in meta["args"], "no password in the learner's args")
model = pickle.loads(gridfs.GridFS(db, collection="models").get(ms[0]["_id"]).read())
# labels i % 3 over img_num 0..7: 0,1,2,0,1,2,0,1 -> counts 0:3 1:3 2:2, twice
eq(model["counts"], {"0": 6, "1": 6, "2": 4}, "the pickled model")
preds = docs("predictions", sort=[("img_num", 1)])
eq([(p["img_num"], p["prediction"], p["truth"]) for p in preds],
   [(8, model["majority"], 2), (9, model["majority"], 0), (10, model["majority"], 1)], "predictions")
eq({p["_nemesyst"]["model"] for p in preds}, {ms[0]["_id"]}, "predictions reference the model")
PY

# 2.0.6 reaches a server without authentication with an empty mechanism, whatever the user name: on the command
# line, in N_DB_AUTHENTICATION and in a config file ("db-authentication ="). No password is asked for (stdin is not
# a terminal here), and the scripts connect without authenticating to this server, which has none.
printf 'data-clean\ndata-cleaner = %s\ndata-collection = mnist\ndb-user-name = groot\ndb-authentication =\n' \
    "$FIX/original/mnist_cleaner.py" >"$T/noauth.conf"
for form in cli env file; do
    case $form in
        cli) stage_run 0 "noauth_$form" --data-clean --data-cleaner "$FIX/original/mnist_cleaner.py" \
                 --data-collection mnist --db-user-name groot --db-authentication "" </dev/null ;;
        env) N_DB_AUTHENTICATION= stage_run 0 "noauth_$form" --data-clean --data-cleaner \
                 "$FIX/original/mnist_cleaner.py" --data-collection mnist --db-user-name groot </dev/null ;;
        file) stage_run 0 "noauth_$form" --config "$T/noauth.conf" </dev/null ;;
    esac
    expect_rc 0
    check "noauth_$form" <<'PY'
eq(count("mnist", {"dataset": "mnist"}), 11, "documents cleaned without authentication")
PY
done
# Without the empty mechanism, the same user name authenticates (and this server has no such user).
(umask 077 && echo pw >"$T/pw")
stage_run 0 noauth_default --data-clean --data-cleaner "$FIX/original/mnist_cleaner.py" --data-collection mnist \
    --db-user-name groot --db-password-file "$T/pw" </dev/null
[ "$RC" -eq 3 ] || fail "a user name with the default mechanism: want exit 3 (no such user), got $RC"
grep -q "authentication failed for user 'groot'" "$ERR" || fail "no authentication error naming the user"
check noauth_default <<'PY'
eq(count("mnist", {}), 0, "nothing written without authenticating")
PY
