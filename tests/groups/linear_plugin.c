/* A linear model trained by full-batch gradient descent, as a learner group's C plugin: each member reads its shard
 * (nemesyst_batches_new applies it), sums its squared-error gradient, and nemesyst_allreduce adds the members'
 * sums and counts, so every member takes the same step as one process over all the data would. Used by
 * tests/groups/groups.sh for exactness at K = 1, 2 and 3, lineage and failure.
 *   documents: {"x": [d numbers], "y": number}; model: the weights (d + 1 doubles, the bias last), also in the
 *   metadata as "w". Options: --dl-epochs (steps), --dl-data-collection, --dl-data-pipeline.
 *   NEM_T_CRASH_MEMBER=M with NEM_T_CRASH_FILE=F (F exists): member M aborts at step 3.
 * The entry point linear_ckpt is the same training with checkpoints (tests/groups/groups-checkpoint.sh): steps are
 * numbered 1..epochs (the metric "step" of step k is w[0] after it); every member loads the newest checkpoint
 * (nemesyst_checkpoint_load: the weights, d + 1 doubles) and checks with nemesyst_allreduce that the whole group
 * loaded the same step and weights, and logs "member M goes on from step S (weights W)"; every NEM_T_EVERY steps
 * (default 25) the group saves one (member 0 stores it); each step the members agree (MAX) on whether any was asked
 * to checkpoint, and then save where they are and end; NEM_T_DIE_AT=S with NEM_T_DIE_MEMBER=M: member M fails at
 * step S in the run's first attempt (NEMESYST_ATTEMPT 1); NEM_T_SLEEP_MS: a pause after each step;
 * NEM_T_IGNORE_STOP=1: a request to checkpoint is ignored (the group is stopped when its grace is over). */
#include <nemesyst.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LR 0.5
#define MAXD 16

bool linear(nemesyst_ctx_t *ctx, bson_error_t *error);
bool linear_ckpt(nemesyst_ctx_t *ctx, bson_error_t *error);

static bool read_shard(nemesyst_ctx_t *ctx, double **xs, double **ys, size_t *n, size_t *d, bson_error_t *error)
{
    const char *coll;
    bson_t pipeline;
    const bson_t *const *docs;
    size_t got, cap = 0;
    if (!nemesyst_opt_str(ctx, "dl-data-collection", &coll, error) ||
        !nemesyst_opt_json(ctx, "dl-data-pipeline", &pipeline, error))
        return false;
    nemesyst_batches_t *b = nemesyst_batches_new(ctx, coll, &pipeline, 256, error);
    bson_destroy(&pipeline);
    if (!b)
        return false;
    *n = 0;
    *d = 0;
    while (nemesyst_batches_next(b, &docs, &got, error)) {
        for (size_t i = 0; i < got; i++) {
            bson_iter_t it, x;
            size_t j = 0;
            if (*n == cap) {
                cap = cap ? cap * 2 : 256;
                *xs = realloc(*xs, cap * MAXD * sizeof **xs);
                *ys = realloc(*ys, cap * sizeof **ys);
            }
            if (bson_iter_init_find(&it, docs[i], "x") && bson_iter_recurse(&it, &x))
                while (bson_iter_next(&x) && j < MAXD)
                    (*xs)[*n * MAXD + j++] = bson_iter_as_double(&x);
            if (!*d)
                *d = j;
            (*ys)[*n] = bson_iter_init_find(&it, docs[i], "y") ? bson_iter_as_double(&it) : 0;
            (*n)++;
        }
    }
    nemesyst_batches_destroy(b);
    return error->code == 0;
}

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

/* linear_ckpt: goes on from the newest checkpoint, the same one on every member (checked); *start is its step. */
static bool resume(nemesyst_ctx_t *ctx, int rank, double *w, size_t d, int64_t *start, bson_error_t *error)
{
    uint8_t *data = NULL;
    size_t len = 0;
    *start = 0;
    if (!nemesyst_checkpoint_load(ctx, &data, &len, start, NULL, error)) {
        if (error->code != NEMESYST_ENOCHECKPOINT)
            return false;
        memset(error, 0, sizeof *error);
        *start = 0;
    } else if (len != (d + 1) * sizeof *w) {
        bson_set_error(error, 1, 1, "member %d: a checkpoint of %zu bytes, want %zu", rank, len, (d + 1) * sizeof *w);
        bson_free(data);
        return false;
    } else {
        memcpy(w, data, len);
        bson_free(data);
    }
    /* the same step and the same weights on every member: their MIN and MAX over the group agree */
    double lo[MAXD + 2] = {0}, hi[MAXD + 2];
    memcpy(lo, w, (d + 1) * sizeof *w);
    lo[d + 1] = (double)*start;
    memcpy(hi, lo, sizeof lo);
    if (!nemesyst_allreduce(ctx, lo, d + 2, NEMESYST_FLOAT64, NEMESYST_MIN, error) ||
        !nemesyst_allreduce(ctx, hi, d + 2, NEMESYST_FLOAT64, NEMESYST_MAX, error))
        return false;
    if (memcmp(lo, hi, (d + 2) * sizeof *lo) != 0) {
        bson_set_error(error, 1, 1, "member %d: the members loaded different checkpoints (steps %.0f to %.0f)", rank,
                       lo[d + 1], hi[d + 1]);
        return false;
    }
    uint64_t sum = 0; /* the loaded weights' bits, for the log */
    for (size_t j = 0; j <= d; j++) {
        uint64_t bits;
        memcpy(&bits, &w[j], sizeof bits);
        sum = sum * 1000003u ^ bits;
    }
    nemesyst_log(ctx, NEMESYST_LOG_INFO, "member %d goes on from step %" PRId64 " (weights %016" PRIx64 ")", rank,
                 *start, sum);
    return true;
}

static bool train(nemesyst_ctx_t *ctx, bool ckpt, bson_error_t *error)
{
    double *xs = NULL, *ys = NULL, w[MAXD + 1] = {0}, g[MAXD + 2];
    size_t n = 0, d = 0;
    int64_t epochs, start = 0;
    int rank = nemesyst_group_rank(ctx), size = nemesyst_group_size(ctx);
    const char *crash = getenv("NEM_T_CRASH_FILE"), *who = getenv("NEM_T_CRASH_MEMBER");
    bool ok = false;
    if (!nemesyst_opt_int(ctx, "dl-epochs", &epochs, error) || !read_shard(ctx, &xs, &ys, &n, &d, error))
        goto out;
    /* every member must agree on d (an empty shard has none): the largest */
    int32_t dd = (int32_t)d, top = rank;
    int64_t total = (int64_t)n;
    if (!nemesyst_allreduce(ctx, &dd, 1, NEMESYST_INT32, NEMESYST_MAX, error) ||
        !nemesyst_allreduce(ctx, &top, 1, NEMESYST_INT32, NEMESYST_MAX, error) ||
        !nemesyst_allreduce(ctx, &total, 1, NEMESYST_INT64, NEMESYST_SUM, error))
        goto out;
    d = (size_t)dd;
    if (top != size - 1) {
        bson_set_error(error, 1, 1, "MAX of the member ranks is %d, not %d", top, size - 1);
        goto out;
    }
    int every = env_int("NEM_T_EVERY", 25), die = env_int("NEM_T_DIE_AT", -1), dier = env_int("NEM_T_DIE_MEMBER", 1);
    int sleep_ms = env_int("NEM_T_SLEEP_MS", 0);
    bool first = env_int("NEMESYST_ATTEMPT", 1) == 1;
    if (ckpt && !resume(ctx, rank, w, d, &start, error))
        goto out;
    for (int64_t e = start; e < epochs; e++) {
        int64_t k = e + 1; /* linear_ckpt's step number: steps done */
        if (crash && who && atoi(who) == rank && e == 3 && access(crash, F_OK) == 0)
            abort();
        memset(g, 0, sizeof g);
        for (size_t i = 0; i < n; i++) {
            double p = w[d], *x = xs + i * MAXD;
            for (size_t j = 0; j < d; j++)
                p += w[j] * x[j];
            double r = p - ys[i];
            for (size_t j = 0; j < d; j++)
                g[j] += 2 * r * x[j];
            g[d] += 2 * r;
        }
        g[d + 1] = (double)n;
        if (!nemesyst_allreduce(ctx, g, d + 2, NEMESYST_FLOAT64, NEMESYST_SUM, error))
            goto out;
        for (size_t j = 0; j <= d; j++)
            w[j] -= LR * g[j] / g[d + 1];
        if (rank == 0 && !nemesyst_log_metric(ctx, "step", ckpt ? k : e, w[0], error))
            goto out;
        if (!ckpt)
            continue;
        if (every > 0 && k % every == 0 &&
            !nemesyst_checkpoint_save(ctx, (const uint8_t *)w, (d + 1) * sizeof *w, k, NULL, error))
            goto out;
        if (first && k == die && rank == dier) {
            bson_set_error(error, 1, 1, "member %d stopped at step %" PRId64 " (test)", rank, k);
            goto out;
        }
        /* asked to checkpoint: the whole group saves at the same step (any member asked is enough) and ends */
        int32_t asked = nemesyst_checkpoint_requested(ctx) && !getenv("NEM_T_IGNORE_STOP");
        if (!nemesyst_allreduce(ctx, &asked, 1, NEMESYST_INT32, NEMESYST_MAX, error))
            goto out;
        if (asked) {
            if (nemesyst_checkpoint_save(ctx, (const uint8_t *)w, (d + 1) * sizeof *w, k, NULL, error))
                bson_set_error(error, 1, 1, "member %d: asked to stop, checkpoint at step %" PRId64, rank, k);
            goto out;
        }
        if (sleep_ms > 0) {
            struct timespec ts = {sleep_ms / 1000, (long)(sleep_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    bson_t *meta = BCON_NEW("kind", BCON_UTF8("linear"), "member", BCON_INT32(rank), "size", BCON_INT32(size),
                            "local_count", BCON_INT64((int64_t)n), "total", BCON_INT64(total), "started_at",
                            BCON_INT64(start));
    bson_t arr;
    BSON_APPEND_ARRAY_BEGIN(meta, "w", &arr);
    for (size_t j = 0; j <= d; j++) {
        char key[16];
        const char *k;
        bson_uint32_to_string((uint32_t)j, &k, key, sizeof key);
        BSON_APPEND_DOUBLE(&arr, k, w[j]);
    }
    bson_append_array_end(meta, &arr);
    ok = nemesyst_emit_model(ctx, meta, (const uint8_t *)w, (d + 1) * sizeof *w, error);
    bson_destroy(meta);
out:
    free(xs);
    free(ys);
    return ok;
}

bool linear(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    return train(ctx, false, error);
}

bool linear_ckpt(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    return train(ctx, true, error);
}
