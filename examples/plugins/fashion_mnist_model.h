/* The Fashion-MNIST example's model, shared by fashion_mnist_learner.c and fashion_mnist_predictor.c: softmax
 * regression, logits = x W + b with x the 784 pixels scaled to [0, 1]. Stored as an HDF5 file (in GridFS) with
 * two float32 datasets, /weights (784 x 10) and /bias (10), kept in memory: HDF5's core driver without a backing
 * store, opened from the bytes with H5Pset_file_image (no temporary file). Header-only: both plugins stay one
 * source file each. */
#ifndef FASHION_MNIST_MODEL_H
#define FASHION_MNIST_MODEL_H

#include <hdf5.h>
#include <math.h>
#include <nemesyst.h>
#include <string.h>

#define FM_FEATURES 784
#define FM_CLASSES 10
#define FM_H5_NAME "fashion_mnist_softmax.h5" /* a name for HDF5 only: nothing is written to disk */

typedef struct {
    float w[FM_FEATURES][FM_CLASSES];
    float b[FM_CLASSES];
} fm_model_t;

/* Reads one float32 dataset of the expected shape. */
static bool fm_read_dataset(hid_t file, const char *name, int rank, const hsize_t *dims, float *out,
                            bson_error_t *error)
{
    bool ok = false;
    hid_t dset = H5Dopen2(file, name, H5P_DEFAULT), space = H5I_INVALID_HID;
    hsize_t got[2] = {0, 0};
    if (dset < 0 || (space = H5Dget_space(dset)) < 0 || H5Sget_simple_extent_ndims(space) != rank ||
        H5Sget_simple_extent_dims(space, got, NULL) != rank || got[0] != dims[0] || (rank > 1 && got[1] != dims[1])) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "model: no float32 dataset /%s of the right shape",
                       name);
        goto out;
    }
    if (H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "model: reading /%s failed", name);
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

/* Opens the HDF5 file image data[0..len) in memory and reads the model from it. */
static bool fm_model_load(fm_model_t *m, const uint8_t *data, size_t len, bson_error_t *error)
{
    static const uint8_t signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    const hsize_t wdims[2] = {FM_FEATURES, FM_CLASSES}, bdims[1] = {FM_CLASSES};
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
    ok = fm_read_dataset(file, "weights", 2, wdims, &m->w[0][0], error) &&
         fm_read_dataset(file, "bias", 1, bdims, m->b, error);
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
        x[i] = bytes[i] * (1.0f / 255.0f);
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

/* Softmax probabilities of x under m; returns the most likely class. */
static int fm_forward(const fm_model_t *m, const float x[FM_FEATURES], float p[FM_CLASSES])
{
    float z[FM_CLASSES];
    memcpy(z, m->b, sizeof z);
    for (int i = 0; i < FM_FEATURES; i++) {
        float xi = x[i];
        if (xi == 0.0f)
            continue;
        for (int k = 0; k < FM_CLASSES; k++)
            z[k] += xi * m->w[i][k];
    }
    int best = 0;
    for (int k = 1; k < FM_CLASSES; k++)
        if (z[k] > z[best])
            best = k;
    float sum = 0.0f;
    for (int k = 0; k < FM_CLASSES; k++)
        sum += (p[k] = expf(z[k] - z[best]));
    for (int k = 0; k < FM_CLASSES; k++)
        p[k] /= sum;
    return best;
}

#endif
