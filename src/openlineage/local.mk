# src/openlineage: live OpenLineage events (openlineage.h): the emitter (a sender thread over libcurl, or a file:
# target) and the event builders. Above runrec, below stage: rank 0's coordinator builds the events.
libnemesyst_core_la_SOURCES += src/openlineage/openlineage.h src/openlineage/openlineage.c
