/* A learner group's C plugin member (README "Learner groups"): the mean of y over the whole collection, each
 * member summing its shard and nemesyst_allreduce adding the sums.
 * Build: cc -shared -fPIC -o mean_group.so mean_group.c $(pkg-config --cflags --libs nemesyst) */
#include <nemesyst.h>

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error);

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *coll;
    double sum[2] = {0, 0}; /* the sum of y, and the count */
    const bson_t *const *docs;
    size_t n;
    bson_iter_t it;
    if (!nemesyst_opt_str(ctx, "dl-data-collection", &coll, error))
        return false;
    nemesyst_batches_t *b = nemesyst_batches_new(ctx, coll, NULL, 256, error); /* this member's shard */
    if (!b)
        return false;
    while (nemesyst_batches_next(b, &docs, &n, error))
        for (size_t i = 0; i < n; i++, sum[1]++)
            if (bson_iter_init_find(&it, docs[i], "y"))
                sum[0] += bson_iter_as_double(&it);
    nemesyst_batches_destroy(b);
    if (error->code || !nemesyst_allreduce(ctx, sum, 2, NEMESYST_FLOAT64, NEMESYST_SUM, error))
        return false;
    double mean = sum[1] ? sum[0] / sum[1] : 0; /* the same on every member */
    bson_t *meta = BCON_NEW("mean", BCON_DOUBLE(mean), "members", BCON_INT32(nemesyst_group_size(ctx)));
    bool ok = nemesyst_emit_model(ctx, meta, (const uint8_t *)&mean, sizeof mean, error); /* member 0's is kept */
    bson_destroy(meta);
    return ok;
}
