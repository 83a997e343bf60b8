# tests/examples.mk: the Fashion-MNIST example's C plugins (examples/local.mk) end to end against a private
# FerretDB, on a small slice of the data.
dist_check_SCRIPTS += tests/examples/fashion-mnist.sh
TESTS += tests/examples/fashion-mnist.sh
