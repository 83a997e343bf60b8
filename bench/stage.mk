# bench/stage.mk: stage benchmarks of issue 4 section 8 against baselines measured in the same run on the same
# private FerretDB (`make bench-stage`; BENCH_STAGE_ARGS passes options such as --reps 5 --docs 50000 --only rounds,
# see bench/run-stage.sh).
#   bench_stage_ingest   clean-stage ingest through `nemesyst --data-clean` per script kind vs insert_many
#   bench_stage_feed     nemesyst_batches_* (plugin API) vs a raw libmongoc aggregate cursor loop
#   bench/stage/feed.py  the Python adapter's getCursor+getBatches vs a 2.0.6-style pymongo next() loop
#   bench_stage_rounds   per-round orchestration with empty scripts at 1-4 workers vs bench_stage_barrier
noinst_PROGRAMS += bench/bench_stage_ingest bench/bench_stage_feed bench/bench_stage_barrier bench/bench_stage_rounds bench/bench_stage_idle
bench_bench_stage_ingest_SOURCES = bench/bench_stage_ingest.c bench/stage/common.h
bench_bench_stage_ingest_LDADD = libnemesyst_store.la $(MONGOC_LIBS) $(BSON_LIBS)
bench_bench_stage_feed_SOURCES = bench/bench_stage_feed.c bench/stage/common.h
bench_bench_stage_feed_LDADD = libnemesyst_plugin.la $(MONGOC_LIBS) $(BSON_LIBS)
bench_bench_stage_barrier_SOURCES = bench/bench_stage_barrier.c bench/stage/common.h
bench_bench_stage_idle_SOURCES = bench/bench_stage_idle.c bench/stage/common.h
bench_bench_stage_idle_LDADD = libnemesyst_core.la
bench_bench_stage_barrier_LDADD = $(BSON_LIBS)
bench_bench_stage_rounds_SOURCES = bench/bench_stage_rounds.c bench/stage/common.h
bench_bench_stage_rounds_LDADD = $(BSON_LIBS)

# The C plugin cleaner, built as a user's would be: against libnemesyst only.
noinst_LTLIBRARIES += bench/stage/bench_plugin.la
bench_stage_bench_plugin_la_SOURCES = bench/stage/plugin.c
bench_stage_bench_plugin_la_LDFLAGS = -module -avoid-version -rpath /nowhere -Wl,--as-needed
bench_stage_bench_plugin_la_LIBADD = libnemesyst.la $(MONGOC_LIBS) $(BSON_LIBS)

EXTRA_DIST += bench/run-stage.sh bench/stage/emit-json.sh bench/stage/clean.py bench/stage/empty.sh bench/stage/sleep1.sh bench/stage/feed.py

BENCH_STAGE_DEPS = nemesyst$(EXEEXT) nemesyst-plugin-host$(EXEEXT) bench/stage/bench_plugin.la \
	bench/bench_stage_ingest$(EXEEXT) bench/bench_stage_feed$(EXEEXT) bench/bench_stage_barrier$(EXEEXT) \
	bench/bench_stage_rounds$(EXEEXT) bench/bench_stage_idle$(EXEEXT)

.PHONY: bench-stage
bench-stage: $(BENCH_STAGE_DEPS)
	MPIRUN='$(MPIRUN)' PYTHON3='$(PYTHON3)' $(top_srcdir)/bench/run-stage.sh '$(abs_top_builddir)' $(BENCH_STAGE_ARGS)

# Rollback and resume at size (bench/run-rollback.sh; BENCH_ROLLBACK_ARGS="--docs 1000000" for the full figure).
EXTRA_DIST += bench/run-rollback.sh bench/run-instr.sh bench/run-memory.sh bench/run-groups.sh bench/lib.sh
.PHONY: bench-rollback
bench-rollback: nemesyst$(EXEEXT)
	PYTHON3='$(PYTHON3)' $(top_srcdir)/bench/run-rollback.sh '$(abs_top_builddir)' $(BENCH_ROLLBACK_ARGS)
