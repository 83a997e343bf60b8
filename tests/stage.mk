# tests/stage.mk: integration tests of the stages (clean, learn, predict) over real mpirun against a private
# FerretDB, values read back from the database. Each .sh runs under tests/fixtures/with-ferretdb.sh.
# The C plugin kind of stage script is the shared test plugin, tests/runner/plugin_fixture.c (tests/runner.mk).

STAGE_TESTS = tests/stage/stage-kinds-n1.sh tests/stage/stage-kinds-n2.sh tests/stage/stage-kinds-n4.sh \
	tests/stage/stage-concurrency.sh tests/stage/stage-order.sh \
	tests/stage/stage-failures.sh \
	tests/stage/stage-resume.sh tests/stage/stage-size.sh tests/stage/stage-early-exit.sh tests/stage/stage-secrets.sh tests/stage/stage-mpirun-signals.sh tests/stage/stage-lost-run.sh tests/stage/stage-big-lineage.sh tests/stage/stage-server-killed.sh tests/stage/stage-script-killed.sh \
	tests/stage/stage-lineage.sh \
	tests/stage/stage-original-python.sh tests/stage/stage-rank-dies.sh \
	tests/stage/stage-interrupt.sh tests/stage/stage-provenance-off.sh \
	tests/stage/stage-plugin-error.sh tests/stage/stage-python-repeat-last.sh tests/stage/stage-progress.sh tests/stage/stage-isolation.sh \
	tests/stage/stage-nonblocking.sh tests/stage/stage-large-model.sh tests/stage/stage-metrics.sh
TESTS += $(STAGE_TESTS)
dist_check_SCRIPTS += $(STAGE_TESTS)
EXTRA_DIST += tests/stage/kinds-body.sh tests/stage/lib.sh tests/stage/stagecheck.py tests/stage/fixtures
STAGE_TESTS += tests/stage/stage-daemon.sh
STAGE_TESTS += tests/stage/stage-resume-kill.sh
STAGE_TESTS += tests/stage/stage-unstorable.sh
STAGE_TESTS += tests/stage/stage-checkpoint.sh
STAGE_TESTS += tests/stage/stage-checkpoint-torch.sh
# Learners that read data (a C plugin, Python): a resumed model consumed exactly what an uninterrupted one did.
STAGE_TESTS += tests/stage/stage-checkpoint-data.sh
STAGE_TESTS += tests/stage/stage-code-lineage.sh
STAGE_TESTS += tests/stage/stage-python-choice.sh
# Plugin compatibility: which plugin versions the host loads and which it refuses, naming both versions.
STAGE_TESTS += tests/stage/stage-plugin-abi.sh
# A C++ plugin (g++, or CXX): the header as C++, the stamp in C++ builds, a real stage (skipped without one).
STAGE_TESTS += tests/stage/stage-plugin-cxx.sh
STAGE_TESTS += tests/stage/stage-checkpoint-faults.sh
# --openlineage: events to a loopback HTTP sink and a file: target, checked against the official OpenLineage JSON
# schema (build-aux/openlineage-spec.sh caches it), and dead endpoints that cost the run nothing.
STAGE_TESTS += tests/stage/stage-openlineage.sh
EXTRA_DIST += tests/stage/olcheck.py
# --openlineage further: https:// with a CA made in the test (trusted, untrusted, a certificate for another host
# name), the API key nowhere but the header, ABORT on SIGTERM through nemesyst-mpirun, --resume's events, a learner
# group's one pair of events.
STAGE_TESTS += tests/stage/stage-openlineage-more.sh
# --openlineage when learners are stopped: an interrupted learner group's one ABORT, learners under
# --checkpoint-grace (one checkpoints and ends, one ignores the request) end ABORT, and --resume's START and COMPLETE
# with the same runIds and the whole training's read.
STAGE_TESTS += tests/stage/stage-openlineage-stops.sh
