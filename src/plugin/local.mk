# src/plugin/local.mk: libnemesyst, the installed library C plugins link against (include/nemesyst.h,
# nemesyst.pc). It runs inside nemesyst-plugin-host, never inside the MPI process.
#
# The code is one convenience library, compiled with -fvisibility=hidden: libnemesyst.so exports what nemesyst.h
# declares NEMESYST_EXTERN and the host's one private entry point, nemesyst__host_run (plugin-private.h says why),
# and nothing else (tests/runner/exports.sh); the benchmarks that drive the internals in-process link the
# convenience library itself.
noinst_LTLIBRARIES += libnemesyst_plugin.la
libnemesyst_plugin_la_SOURCES = src/plugin/plugin-private.h src/plugin/context.c src/plugin/io.c src/plugin/connection.c src/plugin/emit.c \
	src/plugin/script-options.c src/plugin/feed.c src/plugin/model.c src/plugin/allreduce.c src/plugin/checkpoint.c \
	src/plugin/version.c
libnemesyst_plugin_la_CPPFLAGS = $(AM_CPPFLAGS) -DNEMESYST_NO_API_STAMP
libnemesyst_plugin_la_CFLAGS = $(AM_CFLAGS) $(VISIBILITY_CFLAGS)
# The store layer is linked in (libnemesyst_store.la, also compiled with hidden visibility).
libnemesyst_plugin_la_LIBADD = libnemesyst_store.la $(MONGOC_LIBS) $(BSON_LIBS) -lcrypto

lib_LTLIBRARIES += libnemesyst.la
include_HEADERS += include/nemesyst.h
libnemesyst_la_SOURCES =
# --as-needed: the compiler is mpicc, but plugins must not drag MPI into their process. -version-info is libtool's
# current:revision:age (1:0:1 since 3.1 added nemesyst_version: still libnemesyst.so.0); the plugin ABI rule itself
# is nemesyst.h's major.minor.
libnemesyst_la_LDFLAGS = -version-info 1:0:1 -no-undefined -Wl,--as-needed
libnemesyst_la_LIBADD = libnemesyst_plugin.la $(MONGOC_LIBS) $(BSON_LIBS) -lcrypto

# Runs a C plugin: dlopens it and calls its entry point with a context from libnemesyst (the shared library, which
# the plugin links too: one copy in the process).
pkglibexec_PROGRAMS += nemesyst-plugin-host
nemesyst_plugin_host_SOURCES = src/plugin/host.c
nemesyst_plugin_host_CPPFLAGS = $(AM_CPPFLAGS) -DNEMESYST_NO_API_STAMP
nemesyst_plugin_host_LDADD = libnemesyst.la $(MONGOC_LIBS) $(BSON_LIBS)
