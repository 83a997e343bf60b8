# src/hdf5: HDF5 import and export (README "HDF5"), built unless configure --without-hdf5 (or HDF5 is not found).
# The import is a built-in cleaner plugin, installed beside the example plugins as $(pkglibdir)/plugins/hdf5_import.so
# (in the build tree: src/hdf5/.libs/hdf5_import.so). --as-needed: the compiler is mpicc, but plugins must not drag
# MPI into their process.
if HAVE_HDF5
hdf5pluginsdir = $(pkglibdir)/plugins
hdf5plugins_LTLIBRARIES = src/hdf5/hdf5_import.la
src_hdf5_hdf5_import_la_SOURCES = src/hdf5/import.c src/hdf5/dtype.c src/hdf5/dtype.h
src_hdf5_hdf5_import_la_CFLAGS = $(AM_CFLAGS) $(HDF5_CFLAGS)
src_hdf5_hdf5_import_la_LDFLAGS = -module -avoid-version -shared -no-undefined -Wl,--as-needed
src_hdf5_hdf5_import_la_LIBADD = libnemesyst.la $(MONGOC_LIBS) $(BSON_LIBS) $(HDF5_LIBS)

# nemesyst-export: a collection or pipeline result to an HDF5 file; the connection is configured as nemesyst's.
bin_PROGRAMS += nemesyst-export
nemesyst_export_SOURCES = src/hdf5/export-main.c src/hdf5/export.c src/hdf5/export.h src/hdf5/dtype.c \
	src/hdf5/dtype.h
nemesyst_export_CFLAGS = $(AM_CFLAGS) $(HDF5_CFLAGS)
nemesyst_export_LDADD = libnemesyst_core.la $(HDF5_LIBS)
endif
