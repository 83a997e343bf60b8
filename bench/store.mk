# bench/store.mk: store layer against raw libmongoc on one FerretDB (`make bench-store`; BENCH_STORE_ARGS passes
# options such as --reps 7 --mib 128).
noinst_PROGRAMS += bench/bench_store
bench_bench_store_SOURCES = bench/bench_store.c
bench_bench_store_LDADD = libnemesyst_core.la
EXTRA_DIST += bench/run-store.sh

.PHONY: bench-store
bench-store: bench/bench_store$(EXEEXT)
	$(top_srcdir)/bench/run-store.sh ./bench/bench_store$(EXEEXT) $(BENCH_STORE_ARGS)
