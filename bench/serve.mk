# bench/serve.mk: start-to-ready of FerretDB through src/serve against the original's fixed sleeps
# (`make bench-serve`; BENCH_SERVE_ARGS passes --reps N --port P).
noinst_PROGRAMS += bench/bench_serve
bench_bench_serve_SOURCES = bench/bench_serve.c
bench_bench_serve_LDADD = libnemesyst_core.la

.PHONY: bench-serve
bench-serve: bench/bench_serve$(EXEEXT)
	MONGOC_DISABLE_SHM=1 ./bench/bench_serve$(EXEEXT) $(BENCH_SERVE_ARGS)
