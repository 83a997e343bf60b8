# tests/examples.mk: the Fashion-MNIST example's C plugins (examples/local.mk) end to end against a private
# FerretDB, on a small slice of the data. Its learner and predictor need HDF5: left out by configure --without-hdf5.
dist_check_SCRIPTS += tests/examples/fashion-mnist.sh
if HAVE_HDF5
TESTS += tests/examples/fashion-mnist.sh
endif
# Every command shown in an example plugin's header runs as shown (tests/examples/shown-commands.sh).
dist_check_SCRIPTS += tests/examples/shown-commands.sh
TESTS += tests/examples/shown-commands.sh
# The PyTorch CNN learner and the Python predictor (examples/learners/fashion_mnist_cnn.py,
# examples/predictors/fashion_mnist_predictor.py) through the adapter, beside the C learner when it is built; the
# test skips (77) when $(PYTHON3) cannot import torch and h5py (python3-torch python3-h5py).
dist_check_SCRIPTS += tests/examples/fashion-mnist-python.sh
TESTS += tests/examples/fashion-mnist-python.sh
# Both learners as learner groups of 2 beside themselves alone: test accuracy within 1 point
# (tests/examples/fashion-mnist-groups.sh; skips without OpenBLAS, PyTorch or h5py).
dist_check_SCRIPTS += tests/examples/fashion-mnist-groups.sh
if HAVE_HDF5
TESTS += tests/examples/fashion-mnist-groups.sh
endif
# Both learners checkpoint every epoch: a run stopped after its first epoch (SIGTERM through nemesyst-mpirun) and
# resumed reaches the uninterrupted run's test accuracy within 1 point (tests/examples/fashion-mnist-checkpoint.sh;
# skips without OpenBLAS, PyTorch or h5py).
dist_check_SCRIPTS += tests/examples/fashion-mnist-checkpoint.sh
if HAVE_HDF5
TESTS += tests/examples/fashion-mnist-checkpoint.sh
endif
# README "Your first pipeline" runs as written: its commands, taken from README.md, in a fresh directory, for the
# three kinds of scripts of examples/first (tests/examples/first-pipeline.sh).
dist_check_SCRIPTS += tests/examples/first-pipeline.sh
TESTS += tests/examples/first-pipeline.sh
