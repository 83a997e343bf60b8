# src/plugin/local.mk: libnemesyst, the installed library C plugins link against (include/nemesyst.h,
# nemesyst.pc). It runs inside nemesyst-plugin-host, never inside the MPI process.
lib_LTLIBRARIES += libnemesyst.la
include_HEADERS += include/nemesyst.h
libnemesyst_la_SOURCES = src/plugin/plugin-private.h src/plugin/context.c src/plugin/emit.c src/plugin/options.c \
	src/plugin/batches.c src/plugin/model.c src/plugin/group.c src/plugin/checkpoint.c
# --as-needed: the compiler is mpicc, but plugins must not drag MPI into their process.
libnemesyst_la_CPPFLAGS = $(AM_CPPFLAGS) -DNEMESYST_NO_API_STAMP
# The store layer is linked in (libnemesyst_store.la); only the public API and the host's nemesyst__ calls are exported.
libnemesyst_la_LDFLAGS = -version-info 0:0:0 -no-undefined -Wl,--as-needed -export-symbols-regex '^nemesyst_'
libnemesyst_la_LIBADD = libnemesyst_store.la $(MONGOC_LIBS) $(BSON_LIBS) -lcrypto

# Runs a C plugin: dlopens it and calls its entry point with a context from libnemesyst.
pkglibexec_PROGRAMS += nemesyst-plugin-host
nemesyst_plugin_host_SOURCES = src/plugin/host.c
nemesyst_plugin_host_CPPFLAGS = $(AM_CPPFLAGS) -DNEMESYST_NO_API_STAMP
nemesyst_plugin_host_LDADD = libnemesyst.la $(MONGOC_LIBS) $(BSON_LIBS)
