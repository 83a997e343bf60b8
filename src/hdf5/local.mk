# src/hdf5/local.mk
