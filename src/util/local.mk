libnemesyst_core_la_SOURCES += src/util/fs.h src/util/fs.c src/util/strv.h src/util/strv.c src/util/clock.h src/util/clock.c src/util/errors.h src/util/errors.c src/util/spawn.h src/util/spawn.c \
	src/util/exitcodes.h src/util/signals.h src/util/signals.c src/util/world.h src/util/world.c \
	src/util/stages.h src/util/stages.c src/util/groupwire.h \
	src/util/procinfo.h src/util/procinfo.c src/util/table.h src/util/table.c src/util/status.h src/util/status.c \
	src/util/text.h src/util/text.c
