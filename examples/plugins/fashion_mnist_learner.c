/* Fashion-MNIST learner as a C plugin: softmax regression (784 x 10 float32 weights and 10 biases) trained with
 * mini-batch stochastic gradient descent for --dl-epochs epochs over the documents of --dl-data-collection that
 * --dl-data-pipeline selects, --dl-batch-size at a time (each epoch streams the data again: memory stays bounded
 * whatever the data size). When the run retrains (--dl-input-model-collection with --dl-input-model-pipeline) it
 * starts from that model, else from zeros. The model is saved as an HDF5 file built in memory (see
 * fashion_mnist_model.h) and stored in GridFS (--dl-output-model-collection) with the metadata
 * {model, train_accuracy, loss, epochs, examples, ...}; train_accuracy and loss are those of the last epoch, measured
 * on each batch before its update. FASHION_MNIST_LR sets the learning rate (default 0.1).
 *
 * Build: cc -shared -fPIC -o fashion_mnist_learner.so fashion_mnist_learner.c \
 *            $(pkg-config --cflags --libs nemesyst hdf5-serial) -lm
 * Run:   nemesyst --dl-learn --dl-learner ./fashion_mnist_learner.so --dl-data-collection fashion_mnist \
 *            --dl-data-pipeline '[{"$match": {"split": "train"}}]' --dl-output-model-collection fashion_models */
#include "fashion_mnist_model.h"

#include <errno.h>
#include <stdlib.h>

#define DEFAULT_LR 0.1

/* Saves m as an HDF5 file image in memory; *data is freed with bson_free. */
static bool fm_model_save(const fm_model_t *m, uint8_t **data, size_t *len, bson_error_t *error)
{
    const hsize_t wdims[2] = {FM_FEATURES, FM_CLASSES}, bdims[1] = {FM_CLASSES};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), file = H5I_INVALID_HID;
    hid_t wspace = H5Screate_simple(2, wdims, NULL), bspace = H5Screate_simple(1, bdims, NULL);
    hid_t wset = H5I_INVALID_HID, bset = H5I_INVALID_HID;
    bool ok = false;
    *data = NULL;
    if (fapl < 0 || wspace < 0 || bspace < 0 || H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 ||
        (file = H5Fcreate(FM_H5_NAME, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0 ||
        (wset = H5Dcreate2(file, "weights", H5T_IEEE_F32LE, wspace, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        (bset = H5Dcreate2(file, "bias", H5T_IEEE_F32LE, bspace, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Dwrite(wset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, &m->w[0][0]) < 0 ||
        H5Dwrite(bset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m->b) < 0 ||
        H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "model: writing the HDF5 image failed");
        goto out;
    }
    ssize_t size = H5Fget_file_image(file, NULL, 0);
    if (size <= 0 || !(*data = bson_malloc((size_t)size)) || H5Fget_file_image(file, *data, (size_t)size) != size) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "model: cannot get the HDF5 file image");
        bson_free(*data);
        *data = NULL;
        goto out;
    }
    *len = (size_t)size;
    ok = true;
out:
    if (bset >= 0)
        H5Dclose(bset);
    if (wset >= 0)
        H5Dclose(wset);
    if (file >= 0)
        H5Fclose(file);
    if (bspace >= 0)
        H5Sclose(bspace);
    if (wspace >= 0)
        H5Sclose(wspace);
    if (fapl >= 0)
        H5Pclose(fapl);
    return ok;
}

typedef struct {
    uint64_t examples, correct;
    double loss;
} epoch_stats_t;

/* One SGD step over a batch: the mean cross-entropy gradient, computed with the weights before the step. */
static bool train_batch(fm_model_t *m, fm_model_t *grad, const bson_t *const *docs, size_t n, float lr,
                        epoch_stats_t *st, bson_error_t *error)
{
    float x[FM_FEATURES], p[FM_CLASSES];
    memset(grad, 0, sizeof *grad);
    for (size_t d = 0; d < n; d++) {
        int y = fm_label(docs[d]);
        if (y < 0) {
            bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "a training document has no label y in 0..%d",
                           FM_CLASSES - 1);
            return false;
        }
        if (!fm_pixels(docs[d], x, error))
            return false;
        int best = fm_forward(m, x, p);
        st->correct += best == y;
        st->loss -= log(p[y] > 1e-30f ? p[y] : 1e-30f);
        st->examples++;
        p[y] -= 1.0f; /* dL/dz */
        for (int k = 0; k < FM_CLASSES; k++)
            grad->b[k] += p[k];
        for (int i = 0; i < FM_FEATURES; i++) {
            float xi = x[i];
            if (xi == 0.0f)
                continue;
            for (int k = 0; k < FM_CLASSES; k++)
                grad->w[i][k] += xi * p[k];
        }
    }
    float step = lr / (float)n;
    for (int i = 0; i < FM_FEATURES; i++)
        for (int k = 0; k < FM_CLASSES; k++)
            m->w[i][k] -= step * grad->w[i][k];
    for (int k = 0; k < FM_CLASSES; k++)
        m->b[k] -= step * grad->b[k];
    return true;
}

static bool learning_rate(double *lr, bson_error_t *error)
{
    const char *env = getenv("FASHION_MNIST_LR");
    *lr = DEFAULT_LR;
    if (!env || !*env)
        return true;
    char *end;
    errno = 0;
    *lr = strtod(env, &end);
    if (errno || *end || !(*lr > 0) || !isfinite(*lr)) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "FASHION_MNIST_LR=%s is not a positive number",
                       env);
        return false;
    }
    return true;
}

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error);

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *coll;
    int64_t batch_size, epochs;
    double lr;
    bson_t pipeline;
    bool ok = false, retrained = false;
    uint8_t *bytes = NULL;
    size_t len = 0;
    epoch_stats_t st = {0, 0, 0.0};

    if (!nemesyst_opt_str(ctx, "dl-data-collection", &coll, error) ||
        !nemesyst_opt_int(ctx, "dl-batch-size", &batch_size, error) ||
        !nemesyst_opt_int(ctx, "dl-epochs", &epochs, error) || !learning_rate(&lr, error))
        return false;
    if (batch_size < 1 || epochs < 1) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "--dl-batch-size and --dl-epochs must be >= 1");
        return false;
    }
    if (!nemesyst_opt_json(ctx, "dl-data-pipeline", &pipeline, error)) {
        bson_destroy(&pipeline);
        return false;
    }
    fm_model_t *m = bson_malloc0(sizeof *m), *grad = bson_malloc0(sizeof *grad);

    /* the parent model when retraining */
    bson_error_t why;
    if (nemesyst_input_model(ctx, &bytes, &len, &why)) {
        ok = fm_model_load(m, bytes, len, error);
        bson_free(bytes);
        bytes = NULL;
        if (!ok)
            goto out;
        retrained = true;
        nemesyst_log(ctx, NEMESYST_LOG_INFO, "retraining the input model (%zu bytes)", len);
    } else if (why.domain != NEMESYST_ERROR_DOMAIN || why.code != NEMESYST_ENOMODEL) {
        *error = why;
        goto out;
    }
    ok = false;

    for (int64_t e = 0; e < epochs; e++) {
        int64_t t0 = bson_get_monotonic_time();
        nemesyst_batches_t *b = nemesyst_batches_new(ctx, coll, &pipeline, (size_t)batch_size, error);
        if (!b)
            goto out;
        const bson_t *const *docs;
        size_t n;
        memset(&st, 0, sizeof st);
        bool step_ok = true;
        while (step_ok && nemesyst_batches_next(b, &docs, &n, error))
            step_ok = train_batch(m, grad, docs, n, (float)lr, &st, error);
        nemesyst_batches_destroy(b);
        if (!step_ok || error->code != 0)
            goto out;
        if (st.examples == 0) {
            bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                           "no training documents in '%s' through --dl-data-pipeline", coll);
            goto out;
        }
        nemesyst_log(ctx, NEMESYST_LOG_INFO, "epoch %lld/%lld: %llu examples, loss %.4f, accuracy %.4f (%.2f s)",
                     (long long)e + 1, (long long)epochs, (unsigned long long)st.examples, st.loss / st.examples,
                     (double)st.correct / st.examples, (bson_get_monotonic_time() - t0) / 1e6);
    }

    if (!fm_model_save(m, &bytes, &len, error))
        goto out;
    bson_t *meta = BCON_NEW("model", BCON_UTF8("fashion_mnist_softmax_regression"),
                            "format", BCON_UTF8("HDF5: /weights float32 784x10, /bias float32 10; x = pixels / 255"),
                            "train_accuracy", BCON_DOUBLE((double)st.correct / st.examples),
                            "loss", BCON_DOUBLE(st.loss / st.examples), "epochs", BCON_INT64(epochs),
                            "examples", BCON_INT64((int64_t)st.examples), "batch_size", BCON_INT64(batch_size),
                            "learning_rate", BCON_DOUBLE(lr), "retrained", BCON_BOOL(retrained));
    ok = nemesyst_emit_model(ctx, meta, bytes, len, error);
    bson_destroy(meta);
    if (ok)
        nemesyst_log(ctx, NEMESYST_LOG_INFO, "saved the model: %zu bytes of HDF5", len);
out:
    bson_free(bytes);
    bson_free(grad);
    bson_free(m);
    bson_destroy(&pipeline);
    return ok;
}
