# bench/store.mk: store layer against raw libmongoc on one FerretDB (`make bench-store`; BENCH_STORE_ARGS passes
# options such as --reps 7 --mib 128).
noinst_PROGRAMS += bench/bench_store
bench_bench_store_SOURCES = bench/bench_store.c
bench_bench_store_LDADD = libnemesyst_core.la
EXTRA_DIST += bench/run-store.sh

.PHONY: bench-store
bench-store: bench/bench_store$(EXEEXT)
	$(top_srcdir)/bench/run-store.sh ./bench/bench_store$(EXEEXT) $(BENCH_STORE_ARGS)

# Checkpoints (store/ckpt.h) against the raw GridFS upload and download of the same bytes, 16 and 256 MiB
# (`make bench-checkpoint`; BENCH_CHECKPOINT_ARGS passes options such as --reps 7 --mib 16,256 --no-file).
noinst_PROGRAMS += bench/bench_checkpoint
bench_bench_checkpoint_SOURCES = bench/bench_checkpoint.c
bench_bench_checkpoint_LDADD = libnemesyst_core.la $(CRYPTO_LIBS)

.PHONY: bench-checkpoint
bench-checkpoint: bench/bench_checkpoint$(EXEEXT)
	$(top_srcdir)/bench/run-store.sh ./bench/bench_checkpoint$(EXEEXT) $(BENCH_CHECKPOINT_ARGS)
# `make bench` runs it too (bench/run-all.sh).
bench: bench/bench_checkpoint$(EXEEXT)
