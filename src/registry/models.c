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

typedef struct {
    const char *bucket;
    bson_t *out;
    uint32_t n;
} rows_t;

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

static bool add_model(const bson_t *file, void *ud, bson_error_t *err)
{
    rows_t *rows = ud;
    bson_t row;
    (void)err;
    nem_reg_push_doc(rows->out, &rows->n, &row);
    nem_reg_model_row(rows->bucket, file, &row);
    bson_append_document_end(rows->out, &row);
    return true;
}

bool nem_reg_model_rows(nem_reg_t *r, const char *bucket, const char *run_id, bson_t *out, bson_error_t *err)
{
    nem_strv_t buckets = {0};
    bson_t filter = BSON_INITIALIZER, exists;
    bson_t *opts = BCON_NEW("sort", "{", "uploadDate", BCON_INT32(1), "_id", BCON_INT32(1), "}");
    bool ok = true;
    bson_init(out);
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
    if (bucket) {
        ok = check_bucket(r->store, bucket, err);
        nem_strv_push(&buckets, bucket);
    } else {
        ok = nem_reg_buckets(r->store, &buckets, err);
    }
    rows_t rows = {NULL, out, 0};
    for (size_t i = 0; ok && i < buckets.n; i++) {
        char *files = bson_strdup_printf("%s.files", buckets.v[i]);
        rows.bucket = buckets.v[i];
        ok = nem_store_find(r->store, files, &filter, opts, add_model, &rows, err);
        bson_free(files);
    }
    nem_strv_free(&buckets);
    bson_destroy(opts);
    bson_destroy(&filter);
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

/* The model whose metric is least (order -1) or greatest (+1); the oldest wins a tie. Its index in rows, or -1. */
static int pick_best(const bson_t *rows, const char *metric, int order, bson_value_t *value, nem_strv_t *names)
{
    bson_iter_t it;
    int best = -1, i = 0;
    double best_v = 0;
    if (!bson_iter_init(&it, rows))
        return -1;
    for (; bson_iter_next(&it); i++) {
        bson_t row, metrics;
        bson_iter_t m;
        if (!nem_reg_sub(rows, bson_iter_key(&it), &row) || !nem_reg_sub(&row, "metrics", &metrics) ||
            !bson_iter_init(&m, &metrics))
            continue;
        while (bson_iter_next(&m)) {
            bool known = false;
            for (size_t k = 0; k < names->n && !known; k++)
                known = strcmp(names->v[k], bson_iter_key(&m)) == 0;
            if (!known && names->n < 12)
                nem_strv_push(names, bson_iter_key(&m));
        }
        /* exact key: a metric's name may hold dots (history.loss) */
        if (!bson_iter_init_find(&m, &metrics, metric) || !BSON_ITER_HOLDS_NUMBER(&m))
            continue;
        double v = bson_iter_as_double(&m);
        if (best < 0 || (order < 0 ? v < best_v : v > best_v)) {
            best = i;
            best_v = v;
            *value = *bson_iter_value(&m); /* a number: nothing to copy deeper */
        }
    }
    return best;
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

/* Each row with its run's sweep index (sweep_index). */
static void add_sweep_index(bson_t *rows, const bson_t *index)
{
    bson_t out = BSON_INITIALIZER;
    bson_iter_t it, ix;
    uint32_t n = 0;
    if (bson_iter_init(&it, rows))
        while (bson_iter_next(&it)) {
            bson_t copy, orig;
            if (!nem_reg_sub(rows, bson_iter_key(&it), &orig))
                continue;
            nem_reg_push_doc(&out, &n, &copy);
            bson_concat(&copy, &orig);
            if (bson_iter_init_find(&ix, index, nem_reg_str(&orig, "run", "")) && BSON_ITER_HOLDS_NUMBER(&ix))
                BSON_APPEND_INT64(&copy, "sweep_index", bson_iter_as_int64(&ix));
            bson_append_document_end(&out, &copy);
        }
    bson_destroy(rows);
    bson_steal(rows, &out);
}

int nem_reg_models(nem_reg_t *r)
{
    bson_t rows, report = BSON_INITIALIZER, chosen, sweep_ids, sweep_index;
    bson_error_t err;
    bool ok = true;
    if (r->sweep) {
        if (!sweep_runs(r, &sweep_ids, &sweep_index, &err)) {
            bson_destroy(&sweep_ids);
            bson_destroy(&sweep_index);
            bson_destroy(&report);
            return nem_reg_fail(&err);
        }
        r->model_runs = &sweep_ids;
    }
    ok = nem_reg_model_rows(r, r->bucket, NULL, &rows, &err);
    r->model_runs = NULL;
    if (r->sweep) {
        if (ok)
            add_sweep_index(&rows, &sweep_index);
        bson_destroy(&sweep_ids);
        bson_destroy(&sweep_index);
    }
    if (!ok) {
        bson_destroy(&report);
        return nem_reg_fail(&err);
    }
    if (r->best) {
        nem_strv_t names = {0};
        bson_value_t value = {0};
        int best = pick_best(&rows, r->best, r->best_order, &value, &names);
        if (best < 0) {
            bson_string_t *known = bson_string_new("");
            for (size_t i = 0; i < names.n; i++)
                bson_string_append_printf(known, "%s%s", i ? ", " : "", names.v[i]);
            char *where = bson_strdup_printf("%s%s%s%s", r->bucket ? " in bucket " : "", r->bucket ? r->bucket : "",
                                             r->sweep ? " of sweep " : "", r->sweep ? r->sweep : "");
            bson_set_error(&err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "--best %s: no model%s has a number '%s' in "
                           "its metadata (metrics found: %s)", r->best, where, r->best, known->len ? known->str : "none");
            bson_free(where);
            bson_string_free(known, true);
            nem_strv_free(&names);
            bson_destroy(&rows);
            bson_destroy(&report);
            return nem_reg_fail(&err);
        }
        nem_strv_free(&names);
        char key[16];
        const char *k;
        bson_uint32_to_string((uint32_t)best, &k, key, sizeof key);
        nem_reg_sub(&rows, k, &chosen);
        bson_t arr, b;
        BSON_APPEND_ARRAY_BEGIN(&report, "models", &arr);
        BSON_APPEND_DOCUMENT(&arr, "0", &chosen);
        bson_append_array_end(&report, &arr);
        BSON_APPEND_DOCUMENT_BEGIN(&report, "best", &b);
        BSON_APPEND_UTF8(&b, "metric", r->best);
        BSON_APPEND_UTF8(&b, "order", r->best_order < 0 ? "min" : "max");
        BSON_APPEND_VALUE(&b, "value", &value); /* as the metadata holds it */
        bson_append_document_end(&report, &b);
    } else {
        BSON_APPEND_ARRAY(&report, "models", &rows);
    }
    bson_destroy(&rows);
    if (r->json) {
        nem_reg_print_json(r->out, &report);
    } else {
        bson_t arr, row;
        bson_iter_t it;
        nem_table_t *t = nem_reg_models_table();
        if (nem_reg_sub(&report, "models", &arr) && bson_iter_init(&it, &arr))
            while (bson_iter_next(&it))
                if (nem_reg_sub(&arr, bson_iter_key(&it), &row))
                    nem_reg_models_add(t, &row);
        nem_table_print(t, r->out, NULL);
        nem_table_destroy(t);
        if (r->best && r->sweep)
            fprintf(r->out, "best by %s (%s): %s (sweep %s, index %" PRId64 ")\n", r->best,
                    r->best_order < 0 ? "least" : "greatest", nem_reg_str(&report, "models.0.id", "?"), r->sweep,
                    nem_reg_int(&report, "models.0.sweep_index", -1));
        else if (r->best)
            fprintf(r->out, "best by %s (%s): %s\n", r->best, r->best_order < 0 ? "least" : "greatest",
                    nem_reg_str(&report, "models.0.id", "?"));
    }
    bson_destroy(&report);
    return NEM_EXIT_OK;
}
