# A registry that scales with the store (bench/run-registry.sh): affected for one document, verify --all, runs and models,
# wall time, peak memory and server CPU at 100 and 1,000 models over 10^6 documents (`make bench-registry`;
# BENCH_REGISTRY_ARGS="--docs 20000 --reps 1 --cursors 20" for a look in about 2 minutes on FerretDB, whose SQLite
# backend scans every document for each distinct cursor verify --all and affected re-run: see --cursors in the
# script). `make bench` runs it (bench/run-all.sh).
EXTRA_DIST += bench/run-registry.sh
.PHONY: bench-registry
bench-registry: nemesyst$(EXEEXT) nemesyst-registry$(EXEEXT) tests/runner/plugin_fixture.la
	PYTHON3='$(PYTHON3)' $(top_srcdir)/bench/run-registry.sh '$(abs_top_builddir)' $(BENCH_REGISTRY_ARGS)
bench: nemesyst-registry$(EXEEXT) tests/runner/plugin_fixture.la
