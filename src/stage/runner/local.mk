# src/stage/runner/local.mk: the runners (child processes for stage scripts) and the plugin host helper.
libnemesyst_core_la_SOURCES += src/stage/runner/runner.h src/stage/runner/runner-private.h src/stage/runner/runner.c \
	src/stage/runner/runner-spawn.c src/stage/runner/runner-io.c src/stage/runner/runner-items.c src/stage/runner/runner-log.c \
	src/stage/runner/runner-kinds.c

# Build-tree paths (for make check before install) live in their own convenience library: per-target flags here
# keep them out of every other object of the core.
noinst_LTLIBRARIES += libnemesyst_runner_paths.la
libnemesyst_runner_paths_la_SOURCES = src/stage/runner/runner-paths.c
libnemesyst_runner_paths_la_CPPFLAGS = $(AM_CPPFLAGS) -DNEM_ABS_TOP_BUILDDIR='"$(abs_top_builddir)"' \
	-DNEM_ABS_TOP_SRCDIR='"$(abs_top_srcdir)"'
libnemesyst_core_la_LIBADD += libnemesyst_runner_paths.la
