/* `models [--bucket B] [--best METRIC --min|--max]`: the models nemesyst stored in GridFS (files documents whose
 * metadata holds _nemesyst, stage/worker/writer.c) with their metrics, and the best one by a metric. */
#include "registry/registry.h"

#include <string.h>

#include "config/config.h"
#include "runrec/runrec.h"
#include "util/exitcodes.h"

/* A bucket the user named must exist: a typo would otherwise look like "no models". */
static bool check_bucket(nem_store_t *store, const char *bucket, bson_error_t *err)
{
    char why[128];
    bool exists = false;
    char *files = bson_strdup_printf("%s.files", bucket);
    bool ok = true;
    if (!nem_collection_name_ok(bucket, why, sizeof why)) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "--bucket '%s': not a collection name (%s)", bucket,
                       why);
        ok = false;
    } else if (!(ok = nem_reg_collection_exists(store, files, &exists, err))) {
    } else if (!exists) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "--bucket '%s': no GridFS bucket of that name in %s "
                       "(no collection %s)", bucket, nem_store_db_name(store), files);
        ok = false;
    }
    bson_free(files);
    return ok;
}

static void append_id(bson_t *out, const char *key, const bson_iter_t *it)
{
    if (BSON_ITER_HOLDS_OID(it)) {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(it), hex);
        BSON_APPEND_UTF8(out, key, hex);
    } else {
        BSON_APPEND_VALUE(out, key, bson_iter_value((bson_iter_t *)it));
    }
}

void nem_reg_model_row(const char *bucket, const bson_t *file, bson_t *row)
{
    bson_t meta, metrics;
    bson_iter_t it;
    char key[32];
    if (bson_iter_init_find(&it, file, "_id"))
        append_id(row, "id", &it);
    BSON_APPEND_UTF8(row, "bucket", bucket);
    BSON_APPEND_UTF8(row, "filename", nem_reg_str(file, "filename", "?"));
    BSON_APPEND_INT64(row, "length", nem_reg_int(file, "length", 0));
    nem_reg_append_date(row, "uploaded", nem_reg_date(file, "uploadDate"));
    bool has_meta = nem_reg_sub(file, "metadata", &meta);
    BSON_APPEND_UTF8(row, "run", has_meta ? nem_reg_str(&meta, "_nemesyst.run", "?") : "?");
    snprintf(key, sizeof key, "%s-%" PRId64, has_meta ? nem_reg_str(&meta, "_nemesyst.stage", "?") : "?",
             has_meta ? nem_reg_int(&meta, "_nemesyst.position", 0) : 0);
    BSON_APPEND_UTF8(row, "script", key);
    bson_iter_t parent;
    if (has_meta && bson_iter_init(&it, &meta) && bson_iter_find_descendant(&it, "_nemesyst.parent.id", &parent))
        append_id(row, "parent", &parent);
    else
        BSON_APPEND_NULL(row, "parent");
    nem_reg_metrics(has_meta ? &meta : NULL, &metrics);
    BSON_APPEND_DOCUMENT(row, "metrics", &metrics);
    bson_destroy(&metrics);
}

/* Each model of one bucket, or of every bucket (bucket NULL), optionally only those of one run (run_id) or of the
 * runs r->model_runs names, oldest first (bucket by bucket, in their sorted order): its files document to cb with its
 * bucket, a document at a time (store.h nem_store_find's batches). */
typedef bool (*model_cb)(const char *bucket, const bson_t *file, void *ud, bson_error_t *err);
#define MODELS_BATCH 64

typedef struct {
    const char *bucket;
    model_cb cb;
    void *ud;
} each_t;

static bool each_file(const bson_t *file, void *ud, bson_error_t *err)
{
    each_t *e = ud;
    return e->cb(e->bucket, file, e->ud, err);
}

/* The buckets to look in: --bucket (checked) or every bucket of --db-name. */
static bool model_buckets(nem_reg_t *r, const char *bucket, nem_strv_t *buckets, bson_error_t *err)
{
    if (!bucket)
        return nem_reg_buckets(r->store, buckets, err);
    nem_strv_push(buckets, bucket);
    return check_bucket(r->store, bucket, err);
}

static bool each_model(nem_reg_t *r, const nem_strv_t *buckets, const char *run_id, model_cb cb, void *ud,
                       bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER, exists;
    /* a batch of a bounded size: the reply the driver holds does not grow with the number of models either */
    bson_t *opts = BCON_NEW("sort", "{", "uploadDate", BCON_INT32(1), "_id", BCON_INT32(1), "}", "batchSize",
                            BCON_INT32(MODELS_BATCH));
    bool ok = true;
    if (run_id) {
        BSON_APPEND_UTF8(&filter, "metadata._nemesyst.run", run_id);
    } else if (r->model_runs) {
        bson_t in;
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "metadata._nemesyst.run", &in);
        BSON_APPEND_ARRAY(&in, "$in", r->model_runs);
        bson_append_document_end(&filter, &in);
    } else {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "metadata._nemesyst", &exists);
        BSON_APPEND_BOOL(&exists, "$exists", true);
        bson_append_document_end(&filter, &exists);
    }
    each_t e = {NULL, cb, ud};
    for (size_t i = 0; ok && i < buckets->n; i++) {
        char *files = bson_strdup_printf("%s.files", buckets->v[i]);
        e.bucket = buckets->v[i];
        ok = nem_store_find(r->store, files, &filter, opts, each_file, &e, err);
        bson_free(files);
    }
    bson_destroy(opts);
    bson_destroy(&filter);
    return ok;
}

typedef struct {
    bson_t *out;
    uint32_t n;
} rows_t;

static bool add_model(const char *bucket, const bson_t *file, void *ud, bson_error_t *err)
{
    rows_t *rows = ud;
    bson_t row;
    (void)err;
    nem_reg_push_doc(rows->out, &rows->n, &row);
    nem_reg_model_row(bucket, file, &row);
    bson_append_document_end(rows->out, &row);
    return true;
}

bool nem_reg_model_rows(nem_reg_t *r, const char *bucket, const char *run_id, bson_t *out, bson_error_t *err)
{
    nem_strv_t buckets = {0};
    rows_t rows = {out, 0};
    bson_init(out);
    bool ok = model_buckets(r, bucket, &buckets, err) && each_model(r, &buckets, run_id, add_model, &rows, err);
    nem_strv_free(&buckets);
    if (!ok)
        bson_destroy(out);
    return ok;
}

static char *metrics_text(const bson_t *row, size_t max)
{
    bson_t metrics;
    bson_iter_t it;
    bson_string_t *s = bson_string_new("");
    if (nem_reg_sub(row, "metrics", &metrics) && bson_iter_init(&it, &metrics))
        while (bson_iter_next(&it)) {
            char *v = nem_reg_value_text(&it, 40);
            bson_string_append_printf(s, "%s%s=%s", s->len ? " " : "", bson_iter_key(&it), v);
            bson_free(v);
        }
    if (s->len > max)
        bson_string_truncate(s, (uint32_t)max);
    return bson_string_free(s, false);
}

static const nem_table_col_t model_columns[] = {
    {"model", NEM_TABLE_LEFT, 0}, {"bucket", NEM_TABLE_LEFT, 0}, {"uploaded", NEM_TABLE_LEFT, 0},
    {"run", NEM_TABLE_LEFT, 0},   {"script", NEM_TABLE_LEFT, 0}, {"metrics", NEM_TABLE_LEFT, 0},
};

nem_table_t *nem_reg_models_table(void)
{
    return nem_table_new(model_columns, sizeof model_columns / sizeof *model_columns);
}

void nem_reg_models_add(nem_table_t *t, const bson_t *row)
{
    char *metrics = metrics_text(row, 160);
    nem_table_add(t, nem_reg_str(row, "id", "?"));
    nem_table_add(t, nem_reg_str(row, "bucket", "?"));
    nem_table_add(t, nem_reg_str(row, "uploaded", "-"));
    nem_table_add(t, nem_reg_str(row, "run", "?"));
    nem_table_add(t, nem_reg_str(row, "script", "?"));
    nem_table_add(t, metrics);
    bson_free(metrics);
}

/* models --sweep NAME: the runs of the sweep, as ids (for the query) and {id: index} (for the rows). */
typedef struct {
    bson_t *ids, *index;
    uint32_t n;
} sweep_runs_t;

static bool add_sweep_run(const bson_t *run, void *ud, bson_error_t *err)
{
    sweep_runs_t *s = ud;
    bson_iter_t it, ix;
    char key[16];
    const char *k;
    (void)err;
    if (!bson_iter_init_find(&it, run, "_id") || !BSON_ITER_HOLDS_UTF8(&it))
        return true;
    bson_uint32_to_string(s->n++, &k, key, sizeof key);
    BSON_APPEND_UTF8(s->ids, k, bson_iter_utf8(&it, NULL));
    if (bson_iter_init(&ix, run) && bson_iter_find_descendant(&ix, "sweep.index", &ix) && BSON_ITER_HOLDS_NUMBER(&ix))
        BSON_APPEND_INT64(s->index, bson_iter_utf8(&it, NULL), bson_iter_as_int64(&ix));
    return true;
}

static bool sweep_runs(nem_reg_t *r, bson_t *ids, bson_t *index, bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER;
    sweep_runs_t s = {ids, index, 0};
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "sweep", BCON_INT32(1), "}");
    bson_init(ids);
    bson_init(index);
    BSON_APPEND_UTF8(&filter, "sweep.name", r->sweep);
    bool ok = nem_store_find(r->store, NEM_RUNS_COLLECTION, &filter, opts, add_sweep_run, &s, err);
    bson_destroy(opts);
    bson_destroy(&filter);
    if (ok && s.n == 0) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "--sweep %s: no run of a sweep of that name in %s",
                       r->sweep, nem_store_db_name(r->store));
        ok = false;
    }
    return ok;
}

/* ---- the listing, streamed: a model at a time, whatever the number of models ---- */

typedef struct {
    nem_reg_t *r;
    const bson_t *sweep_index; /* models --sweep: {run id: index}, else NULL */
    nem_table_t *t;            /* the table, or NULL: --json or --best */
    uint32_t n;                /* rows printed (--json) */
    /* --best: the best row so far (the first of equals: the oldest wins a tie), its metric's value, and the first
     * metric names seen (for the error when no model has it) */
    bson_t best;
    bool have_best;
    double best_v;
    bson_value_t value;
    nem_strv_t names;
} listing_t;

/* --best: the row replaces the best so far when its metric (a number, by its exact key: a metric's name may hold
 * dots, history.loss) is less (order -1) or greater (+1). One row is kept, whatever the number of models. */
static void best_of(listing_t *l, const bson_t *row)
{
    bson_t metrics;
    bson_iter_t m;
    if (!nem_reg_sub(row, "metrics", &metrics) || !bson_iter_init(&m, &metrics))
        return;
    while (bson_iter_next(&m)) {
        bool known = false;
        for (size_t k = 0; k < l->names.n && !known; k++)
            known = strcmp(l->names.v[k], bson_iter_key(&m)) == 0;
        if (!known && l->names.n < 12)
            nem_strv_push(&l->names, bson_iter_key(&m));
    }
    if (!bson_iter_init_find(&m, &metrics, l->r->best) || !BSON_ITER_HOLDS_NUMBER(&m))
        return;
    double v = bson_iter_as_double(&m);
    if (l->have_best && !(l->r->best_order < 0 ? v < l->best_v : v > l->best_v))
        return;
    l->best_v = v;
    l->value = *bson_iter_value(&m); /* a number: nothing to copy deeper */
    if (l->have_best)
        bson_destroy(&l->best);
    bson_copy_to(row, &l->best);
    l->have_best = true;
}

static bool list_model(const char *bucket, const bson_t *file, void *ud, bson_error_t *err)
{
    listing_t *l = ud;
    bson_t row = BSON_INITIALIZER;
    bson_iter_t ix;
    (void)err;
    nem_reg_model_row(bucket, file, &row);
    /* a model of a sweep: its run's index in the sweep */
    if (l->sweep_index && bson_iter_init_find(&ix, l->sweep_index, nem_reg_str(&row, "run", "")) &&
        BSON_ITER_HOLDS_NUMBER(&ix))
        BSON_APPEND_INT64(&row, "sweep_index", bson_iter_as_int64(&ix));
    if (l->r->best) {
        best_of(l, &row);
    } else if (l->r->json) {
        nem_reg_json_item(l->r->out, &l->n, &row);
    } else {
        nem_reg_models_add(l->t, &row);
        nem_table_flush_full(l->t, l->r->out, NULL);
    }
    bson_destroy(&row);
    return true;
}

/* The table of a listing that may be long (util/table.h): its fixed-width columns as wide as they get. */
static nem_table_t *listing_table(const nem_strv_t *buckets)
{
    nem_table_t *t = nem_reg_models_table();
    size_t bucket = 0, stage = 0;
    for (size_t i = 0; i < buckets->n; i++)
        bucket = strlen(buckets->v[i]) > bucket ? strlen(buckets->v[i]) : bucket;
    for (int s = 0; s < NEM_STAGE__COUNT; s++)
        stage = strlen(nem_stage_name((nem_stage_t)s)) > stage ? strlen(nem_stage_name((nem_stage_t)s)) : stage;
    nem_table_min_width(t, 0, 24);                                  /* an ObjectId's hex digits */
    nem_table_min_width(t, 1, bucket);
    nem_table_min_width(t, 2, strlen("2026-01-02T03:04:05.000Z"));
    nem_table_min_width(t, 3, strlen("20260102T030405Z-0123abcd"));
    nem_table_min_width(t, 4, stage + strlen("-0"));
    return t;
}

/* --best found none: the metrics the models have (the first 12 names). */
static void no_best(nem_reg_t *r, const nem_strv_t *names, bson_error_t *err)
{
    bson_string_t *known = bson_string_new("");
    for (size_t i = 0; i < names->n; i++)
        bson_string_append_printf(known, "%s%s", i ? ", " : "", names->v[i]);
    char *where = bson_strdup_printf("%s%s%s%s", r->bucket ? " in bucket " : "", r->bucket ? r->bucket : "",
                                     r->sweep ? " of sweep " : "", r->sweep ? r->sweep : "");
    bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "--best %s: no model%s has a number '%s' in "
                   "its metadata (metrics found: %s)", r->best, where, r->best, known->len ? known->str : "none");
    bson_free(where);
    bson_string_free(known, true);
}

static void print_best(nem_reg_t *r, const listing_t *l)
{
    if (r->json) {
        bson_t report = BSON_INITIALIZER, arr, b;
        BSON_APPEND_ARRAY_BEGIN(&report, "models", &arr);
        BSON_APPEND_DOCUMENT(&arr, "0", &l->best);
        bson_append_array_end(&report, &arr);
        BSON_APPEND_DOCUMENT_BEGIN(&report, "best", &b);
        BSON_APPEND_UTF8(&b, "metric", r->best);
        BSON_APPEND_UTF8(&b, "order", r->best_order < 0 ? "min" : "max");
        BSON_APPEND_VALUE(&b, "value", &l->value); /* as the metadata holds it */
        bson_append_document_end(&report, &b);
        nem_reg_print_json(r->out, &report);
        bson_destroy(&report);
        return;
    }
    nem_table_t *t = nem_reg_models_table();
    nem_reg_models_add(t, &l->best);
    nem_table_print(t, r->out, NULL);
    nem_table_destroy(t);
    if (r->sweep)
        fprintf(r->out, "best by %s (%s): %s (sweep %s, index %" PRId64 ")\n", r->best,
                r->best_order < 0 ? "least" : "greatest", nem_reg_str(&l->best, "id", "?"), r->sweep,
                nem_reg_int(&l->best, "sweep_index", -1));
    else
        fprintf(r->out, "best by %s (%s): %s\n", r->best, r->best_order < 0 ? "least" : "greatest",
                nem_reg_str(&l->best, "id", "?"));
}

int nem_reg_models(nem_reg_t *r)
{
    bson_t sweep_ids = BSON_INITIALIZER, sweep_index = BSON_INITIALIZER;
    bson_error_t err;
    nem_strv_t buckets = {0};
    listing_t l = {r, NULL, NULL, 0, BSON_INITIALIZER, false, 0, {0}, {0}};
    bool ok = true, opened = false;
    if (r->sweep) {
        ok = sweep_runs(r, &sweep_ids, &sweep_index, &err);
        r->model_runs = &sweep_ids;
        l.sweep_index = &sweep_index;
    }
    ok = ok && model_buckets(r, r->bucket, &buckets, &err);
    if (ok && !r->best && !r->json)
        l.t = listing_table(&buckets);
    if (ok && !r->best && r->json) {
        nem_reg_json_open(r->out, "models");
        opened = true;
    }
    /* a model at a time: the rows printed as they come (the table in blocks), or only the best kept */
    ok = ok && each_model(r, &buckets, NULL, list_model, &l, &err);
    r->model_runs = NULL;
    if (opened)
        ok ? nem_reg_json_close(r->out, NULL) : (void)fputs("]}\n", r->out); /* cut short: still valid JSON */
    if (ok && l.t)
        nem_table_print(l.t, r->out, NULL);
    if (ok && r->best && !l.have_best) {
        no_best(r, &l.names, &err);
        ok = false;
    }
    if (ok && r->best)
        print_best(r, &l);
    nem_table_destroy(l.t);
    nem_strv_free(&l.names);
    nem_strv_free(&buckets);
    bson_destroy(&l.best);
    bson_destroy(&sweep_ids);
    bson_destroy(&sweep_index);
    return ok ? NEM_EXIT_OK : nem_reg_fail(&err);
}
