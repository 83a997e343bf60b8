# bench/bundle.mk: `nemesyst-registry bundle --with-data` and `import` of a run that consumed 10^6 documents and
# stored a 256 MiB model, against the raw reads and inserts of the same documents and file (bench_bundle) in the
# same run, with the peak memory of each (`make bench-bundle`; BENCH_BUNDLE_ARGS passes options such as
# --docs 100000 --model-mib 32 --reps 3, see bench/run-bundle.sh).
noinst_PROGRAMS += bench/bench_bundle
bench_bench_bundle_SOURCES = bench/bench_bundle.c
bench_bench_bundle_LDADD = libnemesyst_core.la

# The learner plugin that consumes the documents and stores the model, built as a user's would be.
noinst_LTLIBRARIES += bench/bundle/bench_bundle_learner.la
bench_bundle_bench_bundle_learner_la_SOURCES = bench/bundle/learner.c
bench_bundle_bench_bundle_learner_la_LDFLAGS = -module -avoid-version -rpath /nowhere -Wl,--as-needed
bench_bundle_bench_bundle_learner_la_LIBADD = libnemesyst.la $(MONGOC_LIBS) $(BSON_LIBS)
EXTRA_DIST += bench/run-bundle.sh

BENCH_BUNDLE_DEPS = nemesyst$(EXEEXT) nemesyst-registry$(EXEEXT) nemesyst-plugin-host$(EXEEXT) \
	bench/bench_bundle$(EXEEXT) bench/bundle/bench_bundle_learner.la bench/stage/bench_plugin.la

.PHONY: bench-bundle
bench-bundle: $(BENCH_BUNDLE_DEPS)
	PYTHON3='$(PYTHON3)' $(top_srcdir)/bench/run-bundle.sh '$(abs_top_builddir)' $(BENCH_BUNDLE_ARGS)
# `make bench` runs it too (bench/run-all.sh).
bench: $(BENCH_BUNDLE_DEPS)
