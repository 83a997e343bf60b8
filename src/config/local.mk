libnemesyst_core_la_SOURCES += src/config/options.c src/config/options.h src/config/options.def \
	src/config/config.c src/config/config.h src/config/config-private.h src/config/cli.c src/config/conffile.c \
	src/config/password.c src/config/check.c
