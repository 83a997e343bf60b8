# src/plugin/local.mk: libnemesyst, the installed library C plugins link against (include/nemesyst.h,
# nemesyst.pc). It runs inside nemesyst-plugin-host, never inside the MPI process.
lib_LTLIBRARIES += libnemesyst.la
include_HEADERS += include/nemesyst.h
libnemesyst_la_SOURCES = src/plugin/plugin-private.h src/plugin/context.c src/plugin/emit.c src/plugin/options.c \
	src/plugin/batches.c src/plugin/model.c
# --as-needed: the compiler is mpicc, but plugins must not drag MPI into their process.
libnemesyst_la_CPPFLAGS = $(AM_CPPFLAGS) -DNEMESYST_NO_API_STAMP
libnemesyst_la_LDFLAGS = -version-info 0:0:0 -no-undefined -Wl,--as-needed
libnemesyst_la_LIBADD = $(MONGOC_LIBS) $(BSON_LIBS) -lcrypto
