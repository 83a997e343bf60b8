# tests/hdf5.mk
