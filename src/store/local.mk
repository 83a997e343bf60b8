# src/store: the store layer on libmongoc (connection, bulk writer, pipeline batches, GridFS)
# A convenience library: the core and libnemesyst (plugins' batches and models) share it.
noinst_LTLIBRARIES += libnemesyst_store.la
libnemesyst_core_la_LIBADD += libnemesyst_store.la
libnemesyst_store_la_LIBADD = $(MONGOC_LIBS) $(BSON_LIBS)
# hidden: linked into libnemesyst.so, which exports only the plugin API (src/plugin/local.mk)
libnemesyst_store_la_CFLAGS = $(AM_CFLAGS) $(VISIBILITY_CFLAGS)
libnemesyst_store_la_SOURCES = src/store/store.h src/store/store-private.h src/store/store.c src/store/bulk.c \
	src/store/batches.c src/store/gridfs.c src/store/delete.c src/store/docs.c src/store/indexes.c \
	src/store/storable.h src/store/storable.c
# Checkpoints (ckpt.h): GridFS with a sha256 per checkpoint.
libnemesyst_store_la_SOURCES += src/store/ckpt.h src/store/ckpt.c
# sha256 as text (util/sha256.h): here, so the core and libnemesyst share the one helper.
libnemesyst_store_la_SOURCES += src/util/sha256.h src/util/sha256.c
libnemesyst_store_la_LIBADD += $(CRYPTO_LIBS)
