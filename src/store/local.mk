# src/store: the store layer on libmongoc (connection, bulk writer, pipeline batches, GridFS)
libnemesyst_core_la_SOURCES += src/store/store.h src/store/store-private.h src/store/store.c src/store/bulk.c \
	src/store/batches.c src/store/gridfs.c src/store/delete.c
