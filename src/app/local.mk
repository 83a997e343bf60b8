libnemesyst_core_la_SOURCES += src/app/app.h src/app/exitcodes.h src/app/configure.c src/app/run.c
