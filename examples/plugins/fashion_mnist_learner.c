/* Fashion-MNIST learner as a C plugin: a multilayer perceptron 784-256-10 (ReLU hidden layer, softmax output,
 * cross-entropy loss; see fashion_mnist_model.h) trained with Adam on mini-batches for --dl-epochs epochs over the
 * documents of --dl-data-collection that --dl-data-pipeline selects, --dl-batch-size at a time through
 * nemesyst_batches_* (each epoch streams the data again: memory stays bounded whatever the data size). The matrix
 * products go through OpenBLAS (cblas_sgemm). When the run retrains (--dl-input-model-collection with
 * --dl-input-model-pipeline) it starts from that model, an MLP of the same layout (the old softmax-regression layout
 * is refused; Adam's moment estimates are not in a model, so they start again from zero); else from He-initialised
 * weights drawn from a fixed-seed generator, so that runs are reproducible. The model is saved as an HDF5 file built
 * in memory and stored in GridFS (--dl-output-model-collection) with the metadata
 * {model, train_accuracy, loss, epochs, examples, ...}; train_accuracy and loss are those of the last epoch, measured
 * on each batch before its update (the learner never reads the test split: the predictor measures test accuracy).
 * FASHION_MNIST_LR sets Adam's learning rate for the first epoch (default 0.002); later epochs take less of it, on a
 * cosine schedule.
 * With --dl-data-parallel K it trains as one of K members of a learner group: each reads its own shard, takes
 * batches of ceil(--dl-batch-size / K) so that a step still sees about --dl-batch-size examples, and every step
 * adds the members' gradient sums and example counts with nemesyst_allreduce before the same Adam update, so the
 * members keep identical weights. A member whose shard is used up contributes nothing to the steps that remain;
 * the epoch ends at the first step to which no member contributed.
 * Checkpoints (README "Long training"): after each epoch it stores, with nemesyst_checkpoint_save and step = the
 * epochs done, one buffer: a small versioned header (format, Adam's step count, the epochs done, the --dl-epochs and
 * learning rate the cosine schedule was computed for, the last epoch's statistics, whether it retrains) and then the
 * weights and Adam's two moment estimates, float32 each (about 2.4 MB). At its start it loads the newest one
 * (nemesyst_checkpoint_load) and, when there is one, restores all of that and goes on with the next epoch, so a run
 * stopped and resumed (--resume RUN) trains as an uninterrupted one would. When a stop is coming
 * (nemesyst_checkpoint_requested; in a group, when any member is asked) it ends after that epoch's checkpoint with
 * the error "stopping: checkpoint after epoch N", so that the run is recorded as interrupted. In a learner group
 * member 0 stores the checkpoint and every member loads the same one. FASHION_MNIST_HOLD_AFTER=N (for tests) waits
 * after epoch N's checkpoint in the run's first attempt (NEMESYST_ATTEMPT 1), up to 10 minutes, until it is asked to
 * stop, so that a test can stop the run at that point.
 *
 * Build: cc -shared -fPIC -o fashion_mnist_learner.so fashion_mnist_learner.c \
 *            $(pkg-config --cflags --libs nemesyst hdf5-serial openblas) -lm
 * Run:   nemesyst --dl-learn --dl-learner ./fashion_mnist_learner.so --dl-data-collection fashion_mnist \
 *            --dl-data-pipeline '[{"$match": {"split": "train"}}]' --dl-output-model-collection fashion_models */
#include "fashion_mnist_model.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define DEFAULT_LR 0.002
#define ADAM_BETA1 0.9f
#define ADAM_BETA2 0.999f
#define ADAM_EPS 1e-8f
#define INIT_SEED UINT64_C(20170825) /* any fixed value: the same seed gives the same initial weights */

/* --- initial weights --- */

/* splitmix64: a small, fast generator whose whole state is one integer, so the initial weights depend on the seed
 * alone (not on the C library's rand). */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* A standard normal deviate (Box-Muller; u1 is kept away from 0 so that log(u1) is finite). */
static double normal_random(uint64_t *state)
{
    const double two_pi = 6.283185307179586;
    double u1 = ((next_random(state) >> 11) + 1.0) * 0x1p-53; /* 53 random bits: (0, 1] */
    double u2 = (next_random(state) >> 11) * 0x1p-53;         /* [0, 1) */
    return sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
}

/* He initialisation, suited to ReLU layers: weights ~ N(0, 2 / inputs), biases 0. */
static void init_model(fm_model_t *m, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    double s1 = sqrt(2.0 / FM_FEATURES), s2 = sqrt(2.0 / FM_HIDDEN);
    for (int i = 0; i < FM_FEATURES * FM_HIDDEN; i++)
        FM_W1(m)[i] = (float)(s1 * normal_random(&seed));
    for (int i = 0; i < FM_HIDDEN * FM_CLASSES; i++)
        FM_W2(m)[i] = (float)(s2 * normal_random(&seed));
}

/* --- saving --- */

/* Writes a root attribute of the given type from value (count values; count 0 for a scalar). */
static bool write_attr(hid_t file, const char *name, hid_t type, size_t count, const void *value)
{
    hsize_t dims[1] = {count};
    hid_t space = count ? H5Screate_simple(1, dims, NULL) : H5Screate(H5S_SCALAR), attr = H5I_INVALID_HID;
    bool ok = space >= 0 && (attr = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
              H5Awrite(attr, type, value) >= 0;
    if (attr >= 0)
        H5Aclose(attr);
    if (space >= 0)
        H5Sclose(space);
    return ok;
}

/* A variable-length UTF-8 string attribute: what h5py reads back as a str. */
static bool write_string_attr(hid_t file, const char *name, const char *value)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    bool ok = type >= 0 && H5Tset_size(type, H5T_VARIABLE) >= 0 && H5Tset_cset(type, H5T_CSET_UTF8) >= 0 &&
              write_attr(file, name, type, 0, &value);
    if (type >= 0)
        H5Tclose(type);
    return ok;
}

/* The attributes that say the architecture (fashion_mnist_model.h lists them). */
static bool write_architecture(hid_t file)
{
    const int32_t sizes[3] = {FM_FEATURES, FM_HIDDEN, FM_CLASSES}, version = FM_FORMAT_VERSION;
    const double scale = FM_PIXEL_SCALE;
    return write_string_attr(file, "model", FM_MODEL_NAME) &&
           write_attr(file, "format_version", H5T_NATIVE_INT32, 0, &version) &&
           write_attr(file, "layer_sizes", H5T_NATIVE_INT32, 3, sizes) &&
           write_string_attr(file, "hidden_activation", "relu") &&
           write_string_attr(file, "output_activation", "softmax") &&
           write_attr(file, "pixel_scale", H5T_NATIVE_DOUBLE, 0, &scale);
}

/* Writes one parameter dataset as float32 little-endian; dcpl leaves out the object times (see fm_model_save). */
static bool write_dataset(hid_t file, hid_t dcpl, const fm_dataset_t *ds, const float *values)
{
    hid_t space = H5Screate_simple(ds->rank, ds->dims, NULL), dset = H5I_INVALID_HID;
    bool ok = space >= 0 &&
              (dset = H5Dcreate2(file, ds->name, H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) >= 0 &&
              H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0;
    if (dset >= 0)
        H5Dclose(dset);
    if (space >= 0)
        H5Sclose(space);
    return ok;
}

/* Saves m as an HDF5 file image in memory; *data is freed with bson_free. HDF5 would stamp the objects with their
 * creation times: left out, so that the same weights give the same bytes (and the same sha256 in GridFS). */
static bool fm_model_save(const fm_model_t *m, uint8_t **data, size_t *len, bson_error_t *error)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fcpl = H5Pcreate(H5P_FILE_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t file = H5I_INVALID_HID;
    bool ok = fapl >= 0 && fcpl >= 0 && dcpl >= 0 && H5Pset_fapl_core(fapl, 1 << 20, 0) >= 0 &&
              H5Pset_obj_track_times(fcpl, 0) >= 0 && H5Pset_obj_track_times(dcpl, 0) >= 0 &&
              (file = H5Fcreate(FM_H5_NAME, H5F_ACC_TRUNC, fcpl, fapl)) >= 0 && write_architecture(file);
    for (size_t i = 0; ok && i < sizeof fm_datasets / sizeof fm_datasets[0]; i++)
        ok = write_dataset(file, dcpl, &fm_datasets[i], m->p + fm_datasets[i].offset);
    *data = NULL;
    if (!ok || H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "model: writing the HDF5 image failed");
        ok = false;
        goto out;
    }
    ssize_t size = H5Fget_file_image(file, NULL, 0);
    if (size <= 0 || !(*data = bson_malloc((size_t)size)) || H5Fget_file_image(file, *data, (size_t)size) != size) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "model: cannot get the HDF5 file image");
        bson_free(*data);
        *data = NULL;
        ok = false;
        goto out;
    }
    *len = (size_t)size;
out:
    if (file >= 0)
        H5Fclose(file);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (fcpl >= 0)
        H5Pclose(fcpl);
    if (fapl >= 0)
        H5Pclose(fapl);
    return ok;
}

/* --- training --- */

/* The model, Adam's state and the work arrays for batches of up to batch rows. */
typedef struct {
    fm_model_t model, grad, moment1, moment2;
    uint64_t steps;
    float lr; /* this epoch's */
    size_t batch;
    float *x, *h, *p, *dh; /* [batch, 784], [batch, 256], [batch, 10], [batch, 256] */
    int *y;                /* [batch] */
    nemesyst_ctx_t *ctx;   /* learner groups: the members' gradient sums and counts, [FM_PARAMS + 1] */
    int members;
    float *sum;
} trainer_t;

static trainer_t *trainer_new(size_t batch, float lr)
{
    trainer_t *t = bson_malloc0(sizeof *t);
    t->batch = batch;
    t->lr = lr;
    t->x = bson_malloc(batch * FM_FEATURES * sizeof(float));
    t->h = bson_malloc(batch * FM_HIDDEN * sizeof(float));
    t->p = bson_malloc(batch * FM_CLASSES * sizeof(float));
    t->dh = bson_malloc(batch * FM_HIDDEN * sizeof(float));
    t->y = bson_malloc(batch * sizeof(int));
    t->sum = bson_malloc((FM_PARAMS + 1) * sizeof(float));
    return t;
}

static void trainer_destroy(trainer_t *t)
{
    if (!t)
        return;
    bson_free(t->x);
    bson_free(t->h);
    bson_free(t->p);
    bson_free(t->dh);
    bson_free(t->y);
    bson_free(t->sum);
    bson_free(t);
}

typedef struct {
    uint64_t examples, correct;
    double loss;
} epoch_stats_t;

/* Counts the batch's correct predictions and cross-entropy, then turns p into dL/dlogits of the loss summed over
 * the batch divided by divisor: (p - onehot(y)) / divisor (n: the mean; 1 in a group, which divides by the members'
 * total once their sums are added). */
static void output_gradient(float *p, const int *y, size_t n, float divisor, epoch_stats_t *st)
{
    for (size_t r = 0; r < n; r++) {
        float *pr = p + r * FM_CLASSES;
        st->correct += fm_argmax(pr, FM_CLASSES) == y[r];
        st->loss -= log(pr[y[r]] > 1e-30f ? pr[y[r]] : 1e-30f);
        pr[y[r]] -= 1.0f;
        for (int k = 0; k < FM_CLASSES; k++)
            pr[k] /= divisor;
    }
    st->examples += n;
}

/* bias[c] = sum over the n rows of m[r][c]: a bias's gradient. */
static void column_sums(const float *m, size_t n, int cols, float *bias)
{
    memset(bias, 0, cols * sizeof *bias);
    for (size_t r = 0; r < n; r++)
        for (int c = 0; c < cols; c++)
            bias[c] += m[r * cols + c];
}

/* Back-propagation from dz = t->p (dL/dlogits, [n, 10]) into t->grad. */
static void backward(trainer_t *t, size_t n)
{
    fm_model_t *m = &t->model, *g = &t->grad;
    /* output layer: dw2 = h^T dz, db2 = sum dz, dh = dz w2^T */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, FM_HIDDEN, FM_CLASSES, (int)n, 1.0f, t->h, FM_HIDDEN, t->p,
                FM_CLASSES, 0.0f, FM_W2(g), FM_CLASSES);
    column_sums(t->p, n, FM_CLASSES, FM_B2(g));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, FM_HIDDEN, FM_CLASSES, 1.0f, t->p, FM_CLASSES,
                FM_W2(m), FM_CLASSES, 0.0f, t->dh, FM_HIDDEN);
    /* through the ReLU: no gradient where the unit was off (h holds relu's output, so h > 0 means on) */
    for (size_t i = 0; i < n * FM_HIDDEN; i++)
        if (t->h[i] <= 0.0f)
            t->dh[i] = 0.0f;
    /* hidden layer: dw1 = x^T dh, db1 = sum dh */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, FM_FEATURES, FM_HIDDEN, (int)n, 1.0f, t->x, FM_FEATURES,
                t->dh, FM_HIDDEN, 0.0f, FM_W1(g), FM_HIDDEN);
    column_sums(t->dh, n, FM_HIDDEN, FM_B1(g));
}

/* One Adam step over every parameter (Kingma & Ba, with the bias corrections folded into the step size). */
static void adam_step(trainer_t *t)
{
    t->steps++;
    float step = t->lr * sqrtf(1.0f - powf(ADAM_BETA2, (float)t->steps)) / (1.0f - powf(ADAM_BETA1, (float)t->steps));
    float *w = t->model.p, *g = t->grad.p, *m1 = t->moment1.p, *m2 = t->moment2.p;
    for (size_t i = 0; i < FM_PARAMS; i++) {
        m1[i] = ADAM_BETA1 * m1[i] + (1.0f - ADAM_BETA1) * g[i];
        m2[i] = ADAM_BETA2 * m2[i] + (1.0f - ADAM_BETA2) * g[i] * g[i];
        w[i] -= step * m1[i] / (sqrtf(m2[i]) + ADAM_EPS);
    }
}

/* Forward, loss and backward over a batch of n <= t->batch documents, the gradient into t->grad. */
static bool batch_gradient(trainer_t *t, const bson_t *const *docs, size_t n, float divisor, epoch_stats_t *st,
                           bson_error_t *error)
{
    if (!fm_batch_input(docs, n, t->x, t->y, error))
        return false;
    for (size_t d = 0; d < n; d++)
        if (t->y[d] < 0) {
            bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "a training document has no label y in 0..%d",
                           FM_CLASSES - 1);
            return false;
        }
    fm_forward(&t->model, t->x, t->h, t->p, n);
    output_gradient(t->p, t->y, n, divisor, st);
    backward(t, n);
    return true;
}

/* One step over a batch of n <= t->batch documents: forward, loss, backward, update. */
static bool train_batch(trainer_t *t, const bson_t *const *docs, size_t n, epoch_stats_t *st, bson_error_t *error)
{
    if (!batch_gradient(t, docs, n, (float)n, st, error))
        return false;
    adam_step(t);
    return true;
}

/* A learner group's step: this member's gradient sum over its batch of n (0 once its shard is used up) and n,
 * added over the members; the update with their mean. *more: false when no member had a batch (the epoch's end,
 * which every member sees at the same step). */
static bool group_step(trainer_t *t, const bson_t *const *docs, size_t n, epoch_stats_t *st, bool *more,
                       bson_error_t *error)
{
    if (n && !batch_gradient(t, docs, n, 1.0f, st, error))
        return false;
    if (n)
        memcpy(t->sum, t->grad.p, FM_PARAMS * sizeof(float));
    else
        memset(t->sum, 0, FM_PARAMS * sizeof(float));
    t->sum[FM_PARAMS] = (float)n;
    if (!nemesyst_allreduce(t->ctx, t->sum, FM_PARAMS + 1, NEMESYST_FLOAT32, NEMESYST_SUM, error))
        return false;
    float total = t->sum[FM_PARAMS];
    *more = total > 0.0f;
    if (!*more)
        return true;
    for (size_t i = 0; i < FM_PARAMS; i++)
        t->grad.p[i] = t->sum[i] / total;
    adam_step(t);
    return true;
}

/* One pass of a group member over its shard, in steps with the other members; then the epoch's statistics are
 * the group's. */
static bool group_epoch(nemesyst_ctx_t *ctx, trainer_t *t, const char *coll, const bson_t *pipeline,
                        epoch_stats_t *st, bson_error_t *error)
{
    nemesyst_batches_t *b = nemesyst_batches_new(ctx, coll, pipeline, t->batch, error);
    if (!b)
        return false;
    const bson_t *const *docs = NULL;
    size_t n;
    bool ok = true, mine = true, more = true;
    memset(st, 0, sizeof *st);
    while (ok && more) {
        n = 0;
        if (mine && !(mine = nemesyst_batches_next(b, &docs, &n, error)) && error->code != 0)
            ok = false; /* the others wait for this member's sum: it fails, and its group with it */
        if (ok)
            ok = group_step(t, docs, n, st, &more, error);
    }
    nemesyst_batches_destroy(b);
    double totals[3] = {(double)st->examples, (double)st->correct, st->loss};
    if (!ok || !nemesyst_allreduce(ctx, totals, 3, NEMESYST_FLOAT64, NEMESYST_SUM, error))
        return false;
    st->examples = (uint64_t)totals[0], st->correct = (uint64_t)totals[1], st->loss = totals[2];
    if (st->examples == 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                       "no training documents in '%s' through --dl-data-pipeline", coll);
        return false;
    }
    return true;
}

/* One pass over the training data, streamed again from the database. */
static bool train_epoch(nemesyst_ctx_t *ctx, trainer_t *t, const char *coll, const bson_t *pipeline,
                        epoch_stats_t *st, bson_error_t *error)
{
    if (t->members > 1)
        return group_epoch(ctx, t, coll, pipeline, st, error);
    nemesyst_batches_t *b = nemesyst_batches_new(ctx, coll, pipeline, t->batch, error);
    if (!b)
        return false;
    const bson_t *const *docs;
    size_t n;
    bool ok = true;
    memset(st, 0, sizeof *st);
    while (ok && nemesyst_batches_next(b, &docs, &n, error))
        ok = train_batch(t, docs, n, st, error);
    nemesyst_batches_destroy(b);
    if (!ok || error->code != 0)
        return false;
    if (st->examples == 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                       "no training documents in '%s' through --dl-data-pipeline", coll);
        return false;
    }
    return true;
}

/* The learning rate of epoch e (from 0) of epochs: lr * (1 + cos(pi e / epochs)) / 2, from lr down towards 0.
 * Smaller steps in the last epochs settle the weights, worth about half a point of test accuracy here; a one-epoch
 * run (a retraining step, say) keeps lr. */
static float epoch_learning_rate(double lr, int64_t e, int64_t epochs)
{
    return (float)(lr * 0.5 * (1.0 + cos(3.141592653589793 * (double)e / (double)epochs)));
}

/* --- the entry point --- */

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

/* Starts from the parent model when retraining, else from the seeded initial weights. */
static bool starting_model(nemesyst_ctx_t *ctx, fm_model_t *m, bool *retrained, bson_error_t *error)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    bson_error_t why;
    *retrained = false;
    if (!nemesyst_input_model(ctx, &bytes, &len, &why)) {
        if (why.domain != NEMESYST_ERROR_DOMAIN || why.code != NEMESYST_ENOMODEL) {
            *error = why;
            return false;
        }
        init_model(m, INIT_SEED);
        return true;
    }
    bool ok = fm_model_load(m, bytes, len, error);
    bson_free(bytes);
    if (ok) {
        *retrained = true;
        nemesyst_log(ctx, NEMESYST_LOG_INFO, "retraining the input model (%zu bytes)", len);
    }
    return ok;
}

/* --- checkpoints --- */

/* A checkpoint is this header followed by the weights, Adam's first and then second moment estimates: FM_PARAMS
 * float32 each, in this machine's byte order (byte_order says which). */
#define CKPT_MAGIC "FMMLPCKP"
#define CKPT_VERSION 1
#define CKPT_BYTE_ORDER UINT32_C(0x01020304)
typedef struct {
    char magic[8];        /* CKPT_MAGIC, without its NUL */
    uint32_t version;     /* CKPT_VERSION */
    uint32_t byte_order;  /* CKPT_BYTE_ORDER as written */
    uint32_t params;      /* FM_PARAMS: the length of each array */
    uint32_t members;     /* the learner group's size when it was saved (for the log) */
    uint32_t retrained;   /* 1: the training started from an input model */
    uint32_t reserved;    /* 0 */
    uint64_t steps;       /* Adam's step count (its bias corrections) */
    int64_t epochs_done;  /* the epochs trained: the next one is epochs_done (from 0) */
    int64_t epochs;       /* the --dl-epochs the cosine schedule was computed for */
    uint64_t examples;    /* the last epoch's statistics: the model's metadata, should every epoch be done */
    uint64_t correct;
    double loss;
    double lr;            /* the first epoch's learning rate, from which the schedule goes */
} ckpt_header_t;
_Static_assert(sizeof(ckpt_header_t) == 88, "the checkpoint header has no padding");
#define CKPT_BYTES (sizeof(ckpt_header_t) + 3 * FM_PARAMS * sizeof(float))

/* Stores the state after epochs_done epochs; false (logged, the training goes on) when it could not be stored. */
static bool save_checkpoint(nemesyst_ctx_t *ctx, const trainer_t *t, int64_t epochs_done, int64_t epochs, double lr,
                            const epoch_stats_t *st, bool retrained, bson_error_t *error)
{
    ckpt_header_t h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CKPT_MAGIC, sizeof h.magic);
    h.version = CKPT_VERSION;
    h.byte_order = CKPT_BYTE_ORDER;
    h.params = FM_PARAMS;
    h.members = (uint32_t)t->members;
    h.retrained = retrained;
    h.steps = t->steps;
    h.epochs_done = epochs_done;
    h.epochs = epochs;
    h.examples = st->examples;
    h.correct = st->correct;
    h.loss = st->loss;
    h.lr = lr;
    uint8_t *buf = bson_malloc(CKPT_BYTES), *at = buf;
    memcpy(at, &h, sizeof h);
    at += sizeof h;
    const fm_model_t *arrays[3] = {&t->model, &t->moment1, &t->moment2};
    for (int i = 0; i < 3; i++) {
        memcpy(at, arrays[i]->p, sizeof arrays[i]->p);
        at += sizeof arrays[i]->p;
    }
    bson_t *meta = BCON_NEW("model", BCON_UTF8(FM_MODEL_NAME), "checkpoint_version", BCON_INT32(CKPT_VERSION),
                            "epochs_done", BCON_INT64(epochs_done), "epochs", BCON_INT64(epochs),
                            "adam_steps", BCON_INT64((int64_t)t->steps));
    bool ok = nemesyst_checkpoint_save(ctx, buf, CKPT_BYTES, epochs_done, meta, error);
    bson_destroy(meta);
    bson_free(buf);
    if (!ok)
        nemesyst_log(ctx, NEMESYST_LOG_WARN, "the checkpoint after epoch %lld was not stored (%s): going on",
                     (long long)epochs_done, error->message);
    return ok;
}

/* Restores the newest checkpoint, when this learner has one: *first is then the next epoch (from 0), else 0 and
 * nothing is changed. */
static bool load_checkpoint(nemesyst_ctx_t *ctx, trainer_t *t, int64_t epochs, double lr, int64_t *first,
                            epoch_stats_t *st, bool *retrained, bson_error_t *error)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int64_t step = 0;
    bson_error_t why;
    *first = 0;
    if (!nemesyst_checkpoint_load(ctx, &buf, &len, &step, NULL, &why)) {
        if (why.domain == NEMESYST_ERROR_DOMAIN && why.code == NEMESYST_ENOCHECKPOINT)
            return true;
        *error = why;
        return false;
    }
    ckpt_header_t h;
    bool ok = false;
    if (len != CKPT_BYTES || (memcpy(&h, buf, sizeof h), memcmp(h.magic, CKPT_MAGIC, sizeof h.magic) != 0) ||
        h.version != CKPT_VERSION || h.byte_order != CKPT_BYTE_ORDER || h.params != FM_PARAMS) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                       "checkpoint at step %lld: not a version %d checkpoint of this %s learner on a machine of this "
                       "byte order (%zu bytes, want %zu)", (long long)step, CKPT_VERSION, FM_MODEL_NAME, len,
                       (size_t)CKPT_BYTES);
        goto out;
    }
    if (h.epochs_done != step || h.epochs_done < 1 || h.epochs_done > epochs) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                       "checkpoint at step %lld holds %lld epochs done, but --dl-epochs is %lld", (long long)step,
                       (long long)h.epochs_done, (long long)epochs);
        goto out;
    }
    if (h.epochs != epochs || h.lr != lr)
        nemesyst_log(ctx, NEMESYST_LOG_WARN,
                     "the checkpoint was made for --dl-epochs %lld and learning rate %g, this attempt has %lld and %g: "
                     "the cosine schedule follows this attempt's", (long long)h.epochs, h.lr, (long long)epochs, lr);
    const uint8_t *at = buf + sizeof h;
    fm_model_t *arrays[3] = {&t->model, &t->moment1, &t->moment2};
    for (int i = 0; i < 3; i++) {
        memcpy(arrays[i]->p, at, sizeof arrays[i]->p);
        at += sizeof arrays[i]->p;
    }
    t->steps = h.steps;
    *first = h.epochs_done;
    st->examples = h.examples;
    st->correct = h.correct;
    st->loss = h.loss;
    *retrained = h.retrained != 0;
    nemesyst_log(ctx, NEMESYST_LOG_INFO,
                 "goes on from its checkpoint after epoch %lld of %lld (Adam step %llu, saved by a group of %u)",
                 (long long)h.epochs_done, (long long)epochs, (unsigned long long)h.steps, h.members);
    ok = true;
out:
    bson_free(buf);
    return ok;
}

/* FASHION_MNIST_HOLD_AFTER=N, for tests: after epoch N's checkpoint in the run's first attempt, wait until a stop is
 * requested (10 minutes at most). */
static void hold_for_stop(nemesyst_ctx_t *ctx, int64_t epochs_done)
{
    const char *hold = getenv("FASHION_MNIST_HOLD_AFTER"), *attempt = getenv("NEMESYST_ATTEMPT");
    if (!hold || !*hold || strtoll(hold, NULL, 10) != epochs_done || (attempt && strcmp(attempt, "1") != 0))
        return;
    nemesyst_log(ctx, NEMESYST_LOG_INFO, "FASHION_MNIST_HOLD_AFTER=%s: waiting to be asked to stop", hold);
    const struct timespec tick = {0, 20 * 1000 * 1000};
    for (int64_t end = bson_get_monotonic_time() + INT64_C(600000000);
         !nemesyst_checkpoint_requested(ctx) && bson_get_monotonic_time() < end;)
        nanosleep(&tick, NULL);
}

/* Whether to stop now: a stop is coming (for a group member, to any member: they stop at the same epoch). */
static bool stop_requested(nemesyst_ctx_t *ctx, const trainer_t *t, bool *stop, bson_error_t *error)
{
    float asked = nemesyst_checkpoint_requested(ctx) ? 1.0f : 0.0f;
    if (t->members > 1 && !nemesyst_allreduce(ctx, &asked, 1, NEMESYST_FLOAT32, NEMESYST_MAX, error))
        return false;
    *stop = asked > 0.0f;
    return true;
}

static bool save_model(nemesyst_ctx_t *ctx, const trainer_t *t, const epoch_stats_t *st, int64_t epochs, double lr,
                       bool retrained, bson_error_t *error)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (!fm_model_save(&t->model, &bytes, &len, error))
        return false;
    bson_t *meta = BCON_NEW(
        "model", BCON_UTF8(FM_MODEL_NAME), "architecture", BCON_UTF8("784-256-10 MLP, relu hidden, softmax output"),
        "format", BCON_UTF8("HDF5: /w1 float32 784x256, /b1 256, /w2 256x10, /b2 10; h = relu(x w1 + b1), "
                            "p = softmax(h w2 + b2); x = pixels / 255"),
        "format_version", BCON_INT32(FM_FORMAT_VERSION),
        "train_accuracy", BCON_DOUBLE((double)st->correct / st->examples),
        "loss", BCON_DOUBLE(st->loss / st->examples), "epochs", BCON_INT64(epochs),
        "examples", BCON_INT64((int64_t)st->examples), "batch_size", BCON_INT64((int64_t)t->batch),
        "optimizer", BCON_UTF8("adam"), "learning_rate", BCON_DOUBLE(lr), "steps", BCON_INT64((int64_t)t->steps),
        "data_parallel", BCON_INT32(t->members),
        "learning_rate_schedule", BCON_UTF8("cosine over the epochs"), "seed", BCON_INT64((int64_t)INIT_SEED),
        "retrained", BCON_BOOL(retrained));
    bool ok = nemesyst_emit_model(ctx, meta, bytes, len, error);
    bson_destroy(meta);
    if (ok)
        nemesyst_log(ctx, NEMESYST_LOG_INFO, "saved the model: %zu bytes of HDF5", len);
    bson_free(bytes);
    return ok;
}

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error);

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *coll;
    int64_t batch_size, epochs;
    double lr;
    bson_t pipeline;
    bool ok = false, retrained = false;
    epoch_stats_t st = {0, 0, 0.0};

    if (!nemesyst_opt_str(ctx, "dl-data-collection", &coll, error) ||
        !nemesyst_opt_int(ctx, "dl-batch-size", &batch_size, error) ||
        !nemesyst_opt_int(ctx, "dl-epochs", &epochs, error) || !learning_rate(&lr, error))
        return false;
    if (batch_size < 1 || batch_size > INT32_MAX / FM_FEATURES || epochs < 1) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                       "--dl-epochs must be >= 1 and --dl-batch-size in 1..%d", INT32_MAX / FM_FEATURES);
        return false;
    }
    if (!nemesyst_opt_json(ctx, "dl-data-pipeline", &pipeline, error)) {
        bson_destroy(&pipeline);
        return false;
    }
    fm_blas_threads();
    int members = nemesyst_group_size(ctx);
    trainer_t *t = trainer_new(((size_t)batch_size + (size_t)members - 1) / (size_t)members, (float)lr);
    t->ctx = ctx;
    t->members = members;
    /* a checkpoint of this run (a resumed one) holds the model and Adam's state; else a fresh start */
    int64_t first = 0;
    if (!load_checkpoint(ctx, t, epochs, lr, &first, &st, &retrained, error))
        goto out;
    if (first == 0 && !starting_model(ctx, &t->model, &retrained, error))
        goto out;
    for (int64_t e = first; e < epochs; e++) {
        int64_t t0 = bson_get_monotonic_time();
        t->lr = epoch_learning_rate(lr, e, epochs);
        if (!train_epoch(ctx, t, coll, &pipeline, &st, error))
            goto out;
        /* the checkpoint (step: the epochs done), then this epoch's metrics (step: the epoch, from 0): a resumed
         * run keeps the metrics up to its checkpoint's step, so each epoch's appear once */
        bson_error_t save_error;
        bool saved = save_checkpoint(ctx, t, e + 1, epochs, lr, &st, retrained, &save_error), stop;
        /* the history, for nemesyst-registry metrics RUN_ID (the model's metadata keeps the last epoch's) */
        if (!nemesyst_log_metric(ctx, "loss", e, st.loss / st.examples, error) ||
            !nemesyst_log_metric(ctx, "train_accuracy", e, (double)st.correct / st.examples, error))
            goto out;
        nemesyst_log(ctx, NEMESYST_LOG_INFO,
                     "epoch %lld/%lld: %llu examples, loss %.4f, accuracy %.4f, learning rate %.5f (%.2f s)",
                     (long long)e + 1, (long long)epochs, (unsigned long long)st.examples, st.loss / st.examples,
                     (double)st.correct / st.examples, t->lr, (bson_get_monotonic_time() - t0) / 1e6);
        if (saved)
            hold_for_stop(ctx, e + 1);
        if (!stop_requested(ctx, t, &stop, error))
            goto out;
        if (stop) {
            if (saved)
                bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "stopping: checkpoint after epoch %lld",
                               (long long)e + 1);
            else
                bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                               "stopping after epoch %lld, whose checkpoint could not be stored: %s", (long long)e + 1,
                               save_error.message);
            goto out;
        }
    }
    ok = save_model(ctx, t, &st, epochs, lr, retrained, error);
out:
    trainer_destroy(t);
    bson_destroy(&pipeline);
    return ok;
}
