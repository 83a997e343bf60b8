/* A linear model trained by full-batch gradient descent, as a learner group's C plugin: each member reads its shard
 * (nemesyst_batches_new applies it), sums its squared-error gradient, and nemesyst_allreduce adds the members'
 * sums and counts, so every member takes the same step as one process over all the data would. Used by
 * tests/groups/groups.sh for exactness at K = 1, 2 and 3, lineage and failure.
 *   documents: {"x": [d numbers], "y": number}; model: the weights (d + 1 doubles, the bias last), also in the
 *   metadata as "w". Options: --dl-epochs (steps), --dl-data-collection, --dl-data-pipeline.
 *   NEM_T_CRASH_MEMBER=M with NEM_T_CRASH_FILE=F (F exists): member M aborts at step 3. */
#include <nemesyst.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LR 0.5
#define MAXD 16

bool linear(nemesyst_ctx_t *ctx, bson_error_t *error);

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

bool linear(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    double *xs = NULL, *ys = NULL, w[MAXD + 1] = {0}, g[MAXD + 2];
    size_t n = 0, d = 0;
    int64_t epochs;
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
    for (int64_t e = 0; e < epochs; e++) {
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
        if (rank == 0 && !nemesyst_log_metric(ctx, "step", e, w[0], error))
            goto out;
    }
    bson_t *meta = BCON_NEW("kind", BCON_UTF8("linear"), "member", BCON_INT32(rank), "size", BCON_INT32(size),
                            "local_count", BCON_INT64((int64_t)n), "total", BCON_INT64(total));
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
