/* The Fashion-MNIST example's model, shared by fashion_mnist_learner.c and fashion_mnist_predictor.c: a multilayer
 * perceptron 784-256-10,
 *     x = pixels / 255 (the 28 x 28 uint8 image, row-major, flattened to 784 values in [0, 1])
 *     h = relu(x w1 + b1)          w1 [784, 256], b1 [256]
 *     p = softmax(h w2 + b2)       w2 [256, 10],  b2 [10]; the prediction is argmax p
 * with every matrix product a cblas_sgemm over a batch of rows (OpenBLAS).
 *
 * Stored as an HDF5 file (in GridFS), built and opened in memory: HDF5's core driver without a backing store,
 * opened from the bytes with H5Pset_file_image (no temporary file). Its layout (format_version 2):
 *     /w1 float32 [784, 256]   /b1 float32 [256]   /w2 float32 [256, 10]   /b2 float32 [10]
 *     (weights row-major as [inputs, outputs], so that h = x @ w1 + b1 in numpy)
 *     attributes of the root group "/":
 *         model             string  "fashion_mnist_mlp"
 *         format_version    int32   2 (version 1 was the softmax regression: /weights [784, 10] and /bias [10])
 *         layer_sizes       int32   [784, 256, 10]
 *         hidden_activation string  "relu"
 *         output_activation string  "softmax"
 *         pixel_scale       float64 255 (x = pixels / pixel_scale)
 * Strings are variable-length UTF-8, which h5py reads as str. A Python predictor needs only h5py and numpy:
 *     f = h5py.File(io.BytesIO(blob)); x = pixels / f.attrs["pixel_scale"]
 *     p = np.maximum(x @ f["w1"][:] + f["b1"][:], 0) @ f["w2"][:] + f["b2"][:]; prediction = p.argmax(axis=1)
 * A model of the old softmax layout is refused by fm_model_load with an error that says so.
 * Header-only: both plugins stay one source file each. */
#ifndef FASHION_MNIST_MODEL_H
#define FASHION_MNIST_MODEL_H

#include <cblas.h>
#include <hdf5.h>
#include <math.h>
#include <nemesyst.h>
#include <stdlib.h>
#include <string.h>

#define FM_FEATURES 784
#define FM_HIDDEN 256
#define FM_CLASSES 10
#define FM_FORMAT_VERSION 2
#define FM_MODEL_NAME "fashion_mnist_mlp"
#define FM_PIXEL_SCALE 255.0
#define FM_H5_NAME "fashion_mnist_mlp.h5" /* a name for HDF5 only: nothing is written to disk */

/* All the parameters in one flat vector, so that the optimizer can treat them as one array; FM_W1(m) etc. name
 * the parts, each row-major [inputs][outputs]. */
#define FM_OFF_W1 0
#define FM_OFF_B1 (FM_OFF_W1 + FM_FEATURES * FM_HIDDEN)
#define FM_OFF_W2 (FM_OFF_B1 + FM_HIDDEN)
#define FM_OFF_B2 (FM_OFF_W2 + FM_HIDDEN * FM_CLASSES)
#define FM_PARAMS (FM_OFF_B2 + FM_CLASSES)
typedef struct {
    float p[FM_PARAMS];
} fm_model_t;
#define FM_W1(m) ((m)->p + FM_OFF_W1)
#define FM_B1(m) ((m)->p + FM_OFF_B1)
#define FM_W2(m) ((m)->p + FM_OFF_W2)
#define FM_B2(m) ((m)->p + FM_OFF_B2)

/* OpenBLAS runs on one thread unless OPENBLAS_NUM_THREADS asks for more: the products of a batch are small (a 256 x
 * 784 by 784 x 256 product takes a few milliseconds), so more threads gain little and their busy-waiting takes
 * the cores the database server needs to stream the next batch; and one thread makes the sums, hence the trained
 * weights, the same on every machine. */
static void fm_blas_threads(void)
{
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    if (!env || !*env)
        openblas_set_num_threads(1);
}

/* One dataset of the model: its name, shape and offset in the parameter vector. */
typedef struct {
    const char *name;
    int rank;
    hsize_t dims[2];
    size_t offset;
} fm_dataset_t;
static const fm_dataset_t fm_datasets[4] = {
    {"w1", 2, {FM_FEATURES, FM_HIDDEN}, FM_OFF_W1},
    {"b1", 1, {FM_HIDDEN, 0}, FM_OFF_B1},
    {"w2", 2, {FM_HIDDEN, FM_CLASSES}, FM_OFF_W2},
    {"b2", 1, {FM_CLASSES, 0}, FM_OFF_B2},
};

/* Reads one float32 dataset of the expected shape. */
static bool fm_read_dataset(hid_t file, const fm_dataset_t *ds, float *out, bson_error_t *error)
{
    bool ok = false;
    hid_t dset = H5I_INVALID_HID, space = H5I_INVALID_HID;
    hsize_t got[2] = {0, 0};
    if (H5Lexists(file, ds->name, H5P_DEFAULT) <= 0 || (dset = H5Dopen2(file, ds->name, H5P_DEFAULT)) < 0 ||
        (space = H5Dget_space(dset)) < 0 || H5Sget_simple_extent_ndims(space) != ds->rank ||
        H5Sget_simple_extent_dims(space, got, NULL) != ds->rank || got[0] != ds->dims[0] ||
        (ds->rank > 1 && got[1] != ds->dims[1])) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "model: no float32 dataset /%s of the right shape",
                       ds->name);
        goto out;
    }
    if (H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "model: reading /%s failed", ds->name);
        goto out;
    }
    ok = true;
out:
    if (space >= 0)
        H5Sclose(space);
    if (dset >= 0)
        H5Dclose(dset);
    return ok;
}

/* Checks the root attribute layer_sizes against this build's 784-256-10: a model of another architecture (or one
 * without the attribute) would otherwise be read with the wrong meaning. */
static bool fm_check_architecture(hid_t file, bson_error_t *error)
{
    int sizes[3] = {0, 0, 0};
    hid_t attr = H5I_INVALID_HID, space = H5I_INVALID_HID;
    bool ok = H5Aexists(file, "layer_sizes") > 0 && (attr = H5Aopen(file, "layer_sizes", H5P_DEFAULT)) >= 0 &&
              (space = H5Aget_space(attr)) >= 0 && H5Sget_simple_extent_npoints(space) == 3 &&
              H5Aread(attr, H5T_NATIVE_INT, sizes) >= 0;
    if (space >= 0)
        H5Sclose(space);
    if (attr >= 0)
        H5Aclose(attr);
    if (!ok) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "model: no root attribute layer_sizes (int32 x 3)");
        return false;
    }
    if (sizes[0] != FM_FEATURES || sizes[1] != FM_HIDDEN || sizes[2] != FM_CLASSES) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                       "model: layer_sizes %d-%d-%d, but this plugin handles %d-%d-%d only", sizes[0], sizes[1],
                       sizes[2], FM_FEATURES, FM_HIDDEN, FM_CLASSES);
        return false;
    }
    return true;
}

/* Opens the HDF5 file image data[0..len) in memory and reads the MLP from it; refuses the old softmax layout. */
static bool fm_model_load(fm_model_t *m, const uint8_t *data, size_t len, bson_error_t *error)
{
    static const uint8_t signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    if (len < sizeof signature || memcmp(data, signature, sizeof signature) != 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "model: not an HDF5 file (%zu bytes)", len);
        return false;
    }
    bool ok = false;
    hid_t file = H5I_INVALID_HID, fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 || H5Pset_file_image(fapl, (void *)data, len) < 0 ||
        (file = H5Fopen(FM_H5_NAME, H5F_ACC_RDONLY, fapl)) < 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "model: cannot open the HDF5 image (%zu bytes)",
                       len);
        goto out;
    }
    if (H5Lexists(file, "weights", H5P_DEFAULT) > 0 && H5Lexists(file, "w1", H5P_DEFAULT) <= 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                       "model: this is the old softmax-regression layout (/weights 784x10, /bias 10), not the "
                       "784-%d-10 MLP this plugin reads: train a new model (without --dl-input-model-*)",
                       FM_HIDDEN);
        goto out;
    }
    if (!fm_check_architecture(file, error))
        goto out;
    for (size_t i = 0; i < sizeof fm_datasets / sizeof fm_datasets[0]; i++)
        if (!fm_read_dataset(file, &fm_datasets[i], m->p + fm_datasets[i].offset, error))
            goto out;
    ok = true;
out:
    if (file >= 0)
        H5Fclose(file);
    if (fapl >= 0)
        H5Pclose(fapl);
    return ok;
}

/* The document's pixels, scaled to [0, 1]: x must be binary of FM_FEATURES bytes (dtype "uint8" when given). */
static bool fm_pixels(const bson_t *doc, float x[FM_FEATURES], bson_error_t *error)
{
    bson_iter_t it;
    const uint8_t *bytes;
    uint32_t len = 0;
    bson_subtype_t subtype;
    if (bson_iter_init_find(&it, doc, "dtype") &&
        (!BSON_ITER_HOLDS_UTF8(&it) || strcmp(bson_iter_utf8(&it, NULL), "uint8") != 0)) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "a document's x has a dtype other than uint8");
        return false;
    }
    if (!bson_iter_init_find(&it, doc, "x") || !BSON_ITER_HOLDS_BINARY(&it) ||
        (bson_iter_binary(&it, &subtype, &len, &bytes), len != FM_FEATURES)) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                       "a document has no x of %d bytes of binary (got %u): clean the data with the Fashion-MNIST "
                       "cleaner", FM_FEATURES, len);
        return false;
    }
    for (int i = 0; i < FM_FEATURES; i++)
        x[i] = bytes[i] * (float)(1.0 / FM_PIXEL_SCALE);
    return true;
}

/* The document's label y in [0, FM_CLASSES), or -1 when it has none. */
static int fm_label(const bson_t *doc)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "y") || !BSON_ITER_HOLDS_NUMBER(&it))
        return -1;
    int64_t y = bson_iter_as_int64(&it);
    return y >= 0 && y < FM_CLASSES ? (int)y : -1;
}

/* A batch of n documents as the rows of x [n, 784] and their labels y[n] (-1 for a document without one). */
static bool fm_batch_input(const bson_t *const *docs, size_t n, float *x, int *y, bson_error_t *error)
{
    for (size_t d = 0; d < n; d++) {
        if (!fm_pixels(docs[d], x + d * FM_FEATURES, error))
            return false;
        y[d] = fm_label(docs[d]);
    }
    return true;
}

/* The index of the largest of the n values v. */
static int fm_argmax(const float *v, int n)
{
    int best = 0;
    for (int k = 1; k < n; k++)
        if (v[k] > v[best])
            best = k;
    return best;
}

/* out[r] = bias for each of the rows: the starting value of a product accumulated with beta = 1. */
static void fm_fill_bias(float *out, const float *bias, size_t rows, int cols)
{
    for (size_t r = 0; r < rows; r++)
        memcpy(out + r * cols, bias, cols * sizeof *bias);
}

/* The forward pass over a batch of n rows: x [n, 784] -> h [n, 256] (after the ReLU, kept for the backward pass)
 * -> p [n, 10] softmax probabilities. */
static void fm_forward(const fm_model_t *m, const float *x, float *h, float *p, size_t n)
{
    fm_fill_bias(h, FM_B1(m), n, FM_HIDDEN);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, FM_HIDDEN, FM_FEATURES, 1.0f, x, FM_FEATURES,
                FM_W1(m), FM_HIDDEN, 1.0f, h, FM_HIDDEN);
    for (size_t i = 0; i < n * FM_HIDDEN; i++)
        h[i] = h[i] > 0.0f ? h[i] : 0.0f;
    fm_fill_bias(p, FM_B2(m), n, FM_CLASSES);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, FM_CLASSES, FM_HIDDEN, 1.0f, h, FM_HIDDEN,
                FM_W2(m), FM_CLASSES, 1.0f, p, FM_CLASSES);
    for (size_t r = 0; r < n; r++) { /* softmax, shifted by the row's max so that expf cannot overflow */
        float *z = p + r * FM_CLASSES, top = z[fm_argmax(z, FM_CLASSES)], sum = 0.0f;
        for (int k = 0; k < FM_CLASSES; k++)
            sum += (z[k] = expf(z[k] - top));
        for (int k = 0; k < FM_CLASSES; k++)
            z[k] /= sum;
    }
}

#endif
