libnemesyst_core_la_SOURCES += src/stage/stage.h src/stage/stage.c src/stage/plan.h src/stage/plan.c src/stage/writer.h src/stage/writer.c \
	src/stage/worker.h src/stage/worker.c src/stage/group.h src/stage/group.c src/stage/summary.h src/stage/summary.c src/stage/coordinator.c src/stage/coord-group.c \
	src/stage/coordinator-private.h src/stage/transport.c src/stage/run-record.c src/stage/resume.c
