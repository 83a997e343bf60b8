# src/runrec: the run record, its schema, reading and writing (runrec.h), and the one run listing (runlist.h).
libnemesyst_core_la_SOURCES += src/runrec/runrec.h src/runrec/runrec.c src/runrec/runlist.h src/runrec/runlist.c
