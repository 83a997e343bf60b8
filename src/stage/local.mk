# src/stage/local.mk: the stages of a run. stage.h and stage.c are the entry every rank calls; run-plan.h what
# app/ hands down; message.h every message between ranks; output.h what a script stored. The three roles have
# their folders: coordinator/ (rank 0), worker/ (every worker rank), runner/ (a script's child process, with its
# own local.mk).
libnemesyst_core_la_SOURCES += src/stage/stage.h src/stage/stage.c src/stage/run-plan.h src/stage/run-plan.c \
	src/stage/message.h src/stage/message.c src/stage/output.h src/stage/output.c \
	src/stage/worker/worker.h src/stage/worker/worker.c src/stage/worker/round.c src/stage/worker/link.c \
	src/stage/worker/writer.h src/stage/worker/writer.c \
	src/stage/worker/learner-group.h src/stage/worker/learner-group.c \
	src/stage/coordinator/coordinator.h src/stage/coordinator/coordinator-private.h \
	src/stage/coordinator/coordinator.c src/stage/coordinator/pack.h src/stage/coordinator/pack.c \
	src/stage/coordinator/transport.c src/stage/coordinator/run-record.c src/stage/coordinator/resume.c \
	src/stage/coordinator/learner-groups.c src/stage/coordinator/lineage-events.c \
	src/stage/coordinator/summary.h src/stage/coordinator/summary.c
