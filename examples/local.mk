EXTRA_DIST += examples/fashion-mnist.sh examples/configs examples/cleaners examples/learners examples/predictors \
	examples/plugins/toy.c slurm/nemesyst.sbatch slurm/nemesyst-multinode.sbatch \
	slurm/nemesyst-array.sbatch slurm/nemesyst-example.sbatch slurm/nemesyst-store.sbatch

# The Fashion-MNIST example's C plugins (cleaner, learner, predictor), installed as modules beside the library:
# $(pkglibdir)/plugins/fashion_mnist_*.so. In the build tree: examples/plugins/.libs/fashion_mnist_*.so.
# --as-needed: the compiler is mpicc, but plugins must not drag MPI into their process. The learner and predictor
# keep their model (an MLP) as an HDF5 file and do its matrix products with OpenBLAS (fashion_mnist_model.h):
# without HDF5 (configure --without-hdf5) or without OpenBLAS configure builds the cleaner only.
examplepluginsdir = $(pkglibdir)/plugins
exampleplugins_LTLIBRARIES = examples/plugins/fashion_mnist_cleaner.la
EXAMPLE_PLUGIN_LDFLAGS = -module -avoid-version -shared -no-undefined -Wl,--as-needed
EXAMPLE_PLUGIN_LIBS = libnemesyst.la $(MONGOC_LIBS) $(BSON_LIBS)

examples_plugins_fashion_mnist_cleaner_la_SOURCES = examples/plugins/fashion_mnist_cleaner.c
examples_plugins_fashion_mnist_cleaner_la_CFLAGS = $(AM_CFLAGS) $(ZLIB_CFLAGS)
examples_plugins_fashion_mnist_cleaner_la_LDFLAGS = $(EXAMPLE_PLUGIN_LDFLAGS)
examples_plugins_fashion_mnist_cleaner_la_LIBADD = $(EXAMPLE_PLUGIN_LIBS) $(ZLIB_LIBS)

if HAVE_FASHION_MNIST_MLP
exampleplugins_LTLIBRARIES += examples/plugins/fashion_mnist_learner.la examples/plugins/fashion_mnist_predictor.la
EXAMPLE_HDF5_CFLAGS = $(AM_CFLAGS) $(HDF5_CFLAGS) $(OPENBLAS_CFLAGS)
EXAMPLE_HDF5_LIBS = $(EXAMPLE_PLUGIN_LIBS) $(HDF5_LIBS) $(OPENBLAS_LIBS) -lm

examples_plugins_fashion_mnist_learner_la_SOURCES = examples/plugins/fashion_mnist_learner.c \
	examples/plugins/fashion_mnist_model.h
examples_plugins_fashion_mnist_learner_la_CFLAGS = $(EXAMPLE_HDF5_CFLAGS)
examples_plugins_fashion_mnist_learner_la_LDFLAGS = $(EXAMPLE_PLUGIN_LDFLAGS)
examples_plugins_fashion_mnist_learner_la_LIBADD = $(EXAMPLE_HDF5_LIBS)

examples_plugins_fashion_mnist_predictor_la_SOURCES = examples/plugins/fashion_mnist_predictor.c \
	examples/plugins/fashion_mnist_model.h
examples_plugins_fashion_mnist_predictor_la_CFLAGS = $(EXAMPLE_HDF5_CFLAGS)
examples_plugins_fashion_mnist_predictor_la_LDFLAGS = $(EXAMPLE_PLUGIN_LDFLAGS)
examples_plugins_fashion_mnist_predictor_la_LIBADD = $(EXAMPLE_HDF5_LIBS)
endif

# A training longer than its job, through requeues (README: Long training).
EXTRA_DIST += slurm/nemesyst-long.sbatch

# README "Your first pipeline" (examples/first): its C plugin, built and installed as the ones above
# ($(pkglibdir)/plugins/first.so; in the build tree examples/first/.libs/first.so), and the rest of the example:
# the CSV, the config, the Python scripts and the executables (a user copies the directory and builds first.so in
# the copy with cc, as the README shows; tests/examples/first-pipeline.sh does the same).
exampleplugins_LTLIBRARIES += examples/first/first.la
examples_first_first_la_SOURCES = examples/first/first.c
examples_first_first_la_LDFLAGS = $(EXAMPLE_PLUGIN_LDFLAGS)
examples_first_first_la_LIBADD = $(EXAMPLE_PLUGIN_LIBS)
EXTRA_DIST += examples/first/flowers.csv examples/first/first.conf examples/first/clean.py examples/first/learn.py \
	examples/first/predict.py examples/first/clean examples/first/learn examples/first/predict
