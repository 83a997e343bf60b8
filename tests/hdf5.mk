# tests/hdf5.mk: the HDF5 import plugin (src/hdf5/import.c) and nemesyst-export end to end against a private
# FerretDB. tests/hdf5/h5check writes the sample files and compares HDF5 contents (no h5py or h5dump needed).
# Built and run only with HDF5 (configure --without-hdf5 leaves them out).
HDF5_TESTS = tests/hdf5/hdf5-roundtrip.sh tests/hdf5/hdf5-bad-input.sh
dist_check_SCRIPTS += $(HDF5_TESTS) tests/hdf5/lib.sh
if HAVE_HDF5
check_PROGRAMS += tests/hdf5/h5check
tests_hdf5_h5check_SOURCES = tests/hdf5/h5check.c
tests_hdf5_h5check_CFLAGS = $(AM_CFLAGS) $(HDF5_CFLAGS)
tests_hdf5_h5check_LDADD = $(HDF5_LIBS)
TESTS += $(HDF5_TESTS)
endif
