libnemesyst_core_la_SOURCES += src/util/fs.h src/util/fs.c
