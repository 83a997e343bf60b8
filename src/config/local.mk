libnemesyst_core_la_SOURCES += src/config/options.c src/config/options.h src/config/options.def \
	src/config/config.c src/config/config.h src/config/config-private.h src/config/resolve.c src/config/cli.c src/config/conffile.c \
	src/config/password.c src/config/check.c src/config/sweep.c \
	src/config/pipeline.c src/config/pipeline.h src/config/env.c src/config/env.h
