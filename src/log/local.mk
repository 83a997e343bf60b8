libnemesyst_core_la_SOURCES += src/log/log.c src/log/log.h
