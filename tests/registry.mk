# tests/registry.mk: nemesyst-registry against a real pipeline (clean, learn, retrain, predict) on a private FerretDB
# (tests/fixtures/with-ferretdb.sh), every verb's table and JSON checked against the database's own values;
# tests/registry/affected.sh: `affected`, from documents to the models, retrained models and predictions made from them.
# The C plugin stage scripts are the shared test plugin, tests/runner/plugin_fixture.c (tests/runner.mk).
REGISTRY_TESTS = tests/registry/registry.sh tests/registry/affected.sh
TESTS += $(REGISTRY_TESTS)
dist_check_SCRIPTS += $(REGISTRY_TESTS)
# tests/registry/names-tags.sh: run names and tags (--run-name, --tag), the filters of `runs` and `get`, byte for
# byte, with a damaged chunk refused.
REGISTRY_TESTS += tests/registry/names-tags.sh
# tests/registry/diff.sh: `diff` of two runs and of two models that differ in known ways (an option, a data document,
# a parent); tests/registry/prov.sh: `export --format prov-json` read back with python3-prov and checked against the
# database, and `lineage --dot` drawn by dot.
REGISTRY_TESTS += tests/registry/diff.sh tests/registry/prov.sh
# tests/registry/bundle.sh: `bundle` and `import`: a learner group, a retraining chain and predictions moved from the
# test server to a second FerretDB of the test's own, imported twice (nothing added the second time), the same
# answers from lineage, models and affected on both stores, verify unchanged with the data and unverifiable without;
# corrupt, truncated, newer and conflicting bundles refused with nothing written; an import failing midway rolled
# back whole; a retraining chain bundled by its last run with its parents. tests/registry/lib.sh: shared helpers.
REGISTRY_TESTS += tests/registry/bundle.sh
# tests/registry/indexes.sh: the indexes nemesyst makes where it writes (data collections' stamp, predictions' model,
# model buckets' run and parent, the run records' listing fields), read back with listIndexes after a real run, the
# same after a second run, and the verbs answering what the database says.
REGISTRY_TESTS += tests/registry/indexes.sh
EXTRA_DIST += tests/registry/lib.sh
