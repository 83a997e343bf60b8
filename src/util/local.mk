libnemesyst_core_la_SOURCES += src/util/fs.h src/util/fs.c src/util/strv.h src/util/strv.c src/util/clock.h src/util/clock.c src/util/env.h src/util/env.c src/util/errors.h src/util/errors.c
