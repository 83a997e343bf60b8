/* `run ID`: one run in full: its row, its scripts in the order they ran, the options (secrets removed), the errors,
 * the models it stored and the predictions its predict scripts made, as stored now. */
#include "registry/registry.h"

#include <stdlib.h>
#include <string.h>

#include "util/exitcodes.h"
#include "util/stages.h"
#include "util/table.h"

typedef struct {
    nem_stage_t stage;
    int64_t position;
    const char *key;
    const uint8_t *data; /* the entry, in the record: a static bson_t points into itself, so it is never copied */
    uint32_t len;
} script_ref_t;

static int by_stage_position(const void *a, const void *b)
{
    const script_ref_t *x = a, *y = b;
    if (x->stage != y->stage)
        return (int)x->stage - (int)y->stage;
    return x->position < y->position ? -1 : x->position > y->position;
}

/* The scripts of a record in stage order, then position: the order they ran in. */
static script_ref_t *sorted_scripts(const bson_t *record, size_t *n)
{
    bson_t scripts;
    bson_iter_t it;
    script_ref_t *v = NULL;
    size_t cap = 0;
    *n = 0;
    if (!nem_reg_sub(record, "scripts", &scripts) || !bson_iter_init(&it, &scripts))
        return NULL;
    while (bson_iter_next(&it)) {
        script_ref_t s = {0};
        bson_t entry;
        if (!BSON_ITER_HOLDS_DOCUMENT(&it))
            continue;
        bson_iter_document(&it, &s.len, &s.data);
        if (!bson_init_static(&entry, s.data, s.len))
            continue;
        if (!nem_stage_from_name(nem_reg_str(&entry, "stage", ""), &s.stage))
            s.stage = NEM_STAGE__COUNT;
        s.position = nem_reg_int(&entry, "position", 0);
        s.key = bson_iter_key(&it);
        if (*n == cap)
            v = bson_realloc(v, (cap = cap ? cap * 2 : 8) * sizeof *v);
        v[(*n)++] = s;
    }
    if (*n)
        qsort(v, *n, sizeof *v, by_stage_position);
    return v;
}

static void script_row(const script_ref_t *s, bson_t *out)
{
    bson_t view, *entry = &view;
    bson_init_static(&view, s->data, s->len);
    int64_t started = nem_reg_date(entry, "started"), ended = nem_reg_date(entry, "ended");
    bson_iter_t it;
    BSON_APPEND_UTF8(out, "script", s->key);
    BSON_APPEND_UTF8(out, "stage", nem_reg_str(entry, "stage", "?"));
    BSON_APPEND_INT64(out, "position", s->position);
    BSON_APPEND_UTF8(out, "path", nem_reg_str(entry, "path", "?"));
    BSON_APPEND_UTF8(out, "status", nem_reg_str(entry, "status", "?"));
    BSON_APPEND_INT64(out, "rank", nem_reg_int(entry, "rank", -1));
    BSON_APPEND_UTF8(out, "host", nem_reg_str(entry, "host", "?"));
    nem_runlist_append_span(out, started, ended, ended, "ms");
    BSON_APPEND_INT64(out, "documents", nem_reg_int(entry, "documents", 0));
    BSON_APPEND_INT64(out, "models", nem_reg_int(entry, "models", 0));
    const char *error = nem_reg_str(entry, "error", NULL);
    if (error)
        BSON_APPEND_UTF8(out, "error", error);
    else
        BSON_APPEND_NULL(out, "error");
    if (bson_iter_init_find(&it, entry, "stamp") && BSON_ITER_HOLDS_OID(&it)) {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(&it), hex);
        BSON_APPEND_UTF8(out, "stamp", hex);
    } else {
        BSON_APPEND_NULL(out, "stamp"); /* a run of the first stamp format, or --provenance false */
    }
}

typedef struct {
    bson_t *out;
    uint32_t *n;
    const char *script, *collection;
} pred_t;

static bool add_prediction(const bson_t *group, void *ud, bson_error_t *err)
{
    pred_t *p = ud;
    bson_t child;
    bson_iter_t it;
    (void)err;
    nem_reg_push_doc(p->out, p->n, &child);
    BSON_APPEND_UTF8(&child, "script", p->script);
    BSON_APPEND_UTF8(&child, "collection", p->collection);
    if (bson_iter_init_find(&it, group, "_id") && BSON_ITER_HOLDS_OID(&it)) {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(&it), hex);
        BSON_APPEND_UTF8(&child, "model", hex);
    } else if (bson_iter_init_find(&it, group, "_id") && !BSON_ITER_HOLDS_NULL(&it)) {
        BSON_APPEND_VALUE(&child, "model", bson_iter_value(&it));
    } else {
        BSON_APPEND_NULL(&child, "model");
    }
    BSON_APPEND_INT64(&child, "count", nem_reg_int(group, "n", 0));
    bson_append_document_end(p->out, &child);
    return true;
}

/* The predictions of the run's predict scripts as stored now: by stamp, in the collections they wrote, grouped by
 * the model they were made with. */
static bool run_predictions(nem_reg_t *r, const char *run_id, bson_t *out, bson_error_t *err)
{
    bson_t stamps = BSON_INITIALIZER, ids = BSON_INITIALIZER;
    bson_iter_t it;
    uint32_t n = 0;
    /* the run's own predict scripts: its record by _id, not every record read */
    BSON_APPEND_UTF8(&ids, "0", run_id);
    bool ok = nem_reg_run_stamps(r->store, &ids, true, &stamps, err);
    bson_destroy(&ids);
    if (ok && bson_iter_init(&it, &stamps))
        while (ok && bson_iter_next(&it)) {
            bson_t s, colls;
            bson_iter_t st, c;
            if (!nem_reg_sub(&stamps, bson_iter_key(&it), &s) || strcmp(nem_reg_str(&s, "run", ""), run_id) != 0 ||
                !bson_iter_init_find(&st, &s, "stamp") || !nem_reg_sub(&s, "collections", &colls) ||
                !bson_iter_init(&c, &colls))
                continue;
            while (ok && bson_iter_next(&c)) {
                pred_t p = {out, &n, nem_reg_str(&s, "script", "?"), bson_iter_utf8(&c, NULL)};
                ok = nem_reg_count_by(r->store, p.collection, "_nemesyst.s", bson_iter_value(&st), "_nemesyst.model",
                                      add_prediction, &p, err);
            }
        }
    bson_destroy(&stamps);
    return ok;
}

/* The run's attempts (one per job that ran it: the first, then each --resume or requeue), as the record keeps them:
 * {n, job, restart, host, ranks, started, ended, status}; a run of an earlier version has none. */
void nem_reg_append_attempts(const bson_t *record, bson_t *out)
{
    bson_t arr, list, a, child;
    bson_iter_t it;
    uint32_t k = 0;
    BSON_APPEND_ARRAY_BEGIN(out, "attempts", &arr);
    if (nem_reg_sub(record, "attempts", &list) && bson_iter_init(&it, &list))
        while (bson_iter_next(&it)) {
            if (!nem_reg_sub(&list, bson_iter_key(&it), &a))
                continue;
            nem_reg_push_doc(&arr, &k, &child);
            BSON_APPEND_INT64(&child, "n", nem_reg_int(&a, "n", k));
            const char *job = nem_reg_str(&a, "job", NULL);
            if (job)
                BSON_APPEND_UTF8(&child, "job", job);
            else
                BSON_APPEND_NULL(&child, "job");
            BSON_APPEND_INT64(&child, "restart", nem_reg_int(&a, "restart", 0));
            BSON_APPEND_UTF8(&child, "host", nem_reg_str(&a, "host", "?"));
            BSON_APPEND_INT64(&child, "ranks", nem_reg_int(&a, "ranks", 0));
            nem_reg_append_date(&child, "started", nem_reg_date(&a, "started"));
            nem_reg_append_date(&child, "ended", nem_reg_date(&a, "ended"));
            BSON_APPEND_UTF8(&child, "status", nem_reg_str(&a, "status", "running"));
            bson_append_document_end(&arr, &child);
        }
    bson_append_array_end(out, &arr);
}

bool nem_reg_run_report(nem_reg_t *r, const char *run_id, bson_t *out, bson_error_t *err)
{
    bson_t record, row, arr, child, opts, view;
    size_t n;
    uint32_t k = 0;
    if (!nem_reg_load_run(r->store, run_id, &record, err))
        return false;
    bson_init(out);
    nem_runlist_row(&record, r->now_ms, &row);
    BSON_APPEND_DOCUMENT(out, "run", &row);
    bson_destroy(&row);
    nem_reg_append_date(out, "resumed", nem_reg_date(&record, "resumed"));
    BSON_APPEND_INT64(out, "stamp_format", nem_reg_int(&record, "stamp_format", 1));
    nem_reg_append_attempts(&record, out);

    script_ref_t *scripts = sorted_scripts(&record, &n);
    BSON_APPEND_ARRAY_BEGIN(out, "scripts", &arr);
    for (size_t i = 0; i < n; i++) {
        nem_reg_push_doc(&arr, &k, &child);
        script_row(&scripts[i], &child);
        bson_append_document_end(&arr, &child);
    }
    bson_append_array_end(out, &arr);

    nem_reg_clean_options(nem_reg_sub(&record, "options", &view) ? &view : NULL, &opts);
    BSON_APPEND_DOCUMENT(out, "options", &opts);
    bson_destroy(&opts);
    if (nem_reg_sub(&record, "resume_options", &view)) {
        nem_reg_clean_options(&view, &opts);
        BSON_APPEND_DOCUMENT(out, "resume_options", &opts);
        bson_destroy(&opts);
    }

    /* errors: the run's own, then each failed script's */
    k = 0;
    BSON_APPEND_ARRAY_BEGIN(out, "errors", &arr);
    const char *error = nem_reg_str(&record, "error", NULL);
    if (error) {
        nem_reg_push_doc(&arr, &k, &child);
        BSON_APPEND_NULL(&child, "script");
        BSON_APPEND_UTF8(&child, "error", error);
        bson_append_document_end(&arr, &child);
    }
    for (size_t i = 0; i < n; i++) {
        bson_t entry;
        if (bson_init_static(&entry, scripts[i].data, scripts[i].len) && (error = nem_reg_str(&entry, "error", NULL))) {
            nem_reg_push_doc(&arr, &k, &child);
            BSON_APPEND_UTF8(&child, "script", scripts[i].key);
            BSON_APPEND_UTF8(&child, "error", error);
            bson_append_document_end(&arr, &child);
        }
    }
    bson_append_array_end(out, &arr);
    bson_free(scripts);

    bson_t models, preds = BSON_INITIALIZER;
    bool ok = nem_reg_model_rows(r, r->bucket, run_id, &models, err);
    if (ok) {
        BSON_APPEND_ARRAY(out, "models", &models);
        bson_destroy(&models);
        ok = run_predictions(r, run_id, &preds, err);
        BSON_APPEND_ARRAY(out, "predictions", &preds);
    }
    bson_destroy(&preds);
    bson_destroy(&record);
    if (!ok)
        bson_destroy(out);
    return ok;
}

/* ---- the table of one run ---- */

/* Each element of the array report[key] into t through add. */
static void add_each(nem_table_t *t, const bson_t *report, const char *key, void (*add)(nem_table_t *, const bson_t *))
{
    bson_t arr, item;
    bson_iter_t it;
    if (nem_reg_sub(report, key, &arr) && bson_iter_init(&it, &arr))
        while (bson_iter_next(&it))
            if (nem_reg_sub(&arr, bson_iter_key(&it), &item))
                add(t, &item);
}

/* The per-script table is the end-of-run summary's (provenance/runlist.h), with the whole path. */
static void add_script(nem_table_t *t, const bson_t *s)
{
    nem_runlist_scripts_add(t, &(nem_runlist_script_t){
        .key = nem_reg_str(s, "script", "?"), .status = nem_reg_str(s, "status", "?"),
        .host = nem_reg_str(s, "host", "?"), .file = nem_reg_str(s, "path", "?"), .error = nem_reg_str(s, "error", NULL),
        .rank = nem_reg_int(s, "rank", -1), .ms = nem_reg_int(s, "ms", -1), .documents = nem_reg_int(s, "documents", 0),
        .models = nem_reg_int(s, "models", 0)});
}

static const nem_table_col_t attempt_columns[] = {
    {"n", NEM_TABLE_RIGHT, 0},       {"slurm_job", NEM_TABLE_LEFT, 0}, {"restart", NEM_TABLE_RIGHT, 0},
    {"host", NEM_TABLE_LEFT, 0},     {"ranks", NEM_TABLE_RIGHT, 0},    {"started", NEM_TABLE_LEFT, 0},
    {"ended", NEM_TABLE_LEFT, 0},    {"status", NEM_TABLE_LEFT, 0},
};

static void add_attempt(nem_table_t *t, const bson_t *a)
{
    nem_table_addf(t, "%" PRId64, nem_reg_int(a, "n", 0));
    nem_table_add(t, nem_reg_str(a, "job", "-"));
    nem_table_addf(t, "%" PRId64, nem_reg_int(a, "restart", 0));
    nem_table_add(t, nem_reg_str(a, "host", "?"));
    nem_table_addf(t, "%" PRId64, nem_reg_int(a, "ranks", 0));
    nem_table_add(t, nem_reg_str(a, "started", "-"));
    nem_table_add(t, nem_reg_str(a, "ended", "-"));
    nem_table_add(t, nem_reg_str(a, "status", "?"));
}

static const nem_table_col_t prediction_columns[] = {
    {"script", NEM_TABLE_LEFT, 0}, {"collection", NEM_TABLE_LEFT, 0}, {"count", NEM_TABLE_RIGHT, 0},
    {"model", NEM_TABLE_LEFT, 0},
};

static void add_prediction_row(nem_table_t *t, const bson_t *p)
{
    nem_table_add(t, nem_reg_str(p, "script", "?"));
    nem_table_add(t, nem_reg_str(p, "collection", "?"));
    nem_table_addf(t, "%" PRId64, nem_reg_int(p, "count", 0));
    nem_table_add(t, nem_reg_str(p, "model", "(none recorded)"));
}

static void add_error(nem_table_t *t, const bson_t *e)
{
    nem_table_addf(t, "%s:", nem_reg_str(e, "script", "run"));
    nem_table_add(t, nem_reg_str(e, "error", "?"));
}

static const nem_table_col_t pair_columns[] = {{NULL, NEM_TABLE_LEFT, 0}, {NULL, NEM_TABLE_LEFT, 0}};

static bool has_items(const bson_t *report, const char *key)
{
    bson_t arr;
    return nem_reg_sub(report, key, &arr) && !bson_empty(&arr);
}

/* "NAME:" (or "NAME: none"), then the table of report[key] when it has rows. */
static void print_section(FILE *out, const bson_t *report, const char *key, const char *name, nem_table_t *t,
                          void (*add)(nem_table_t *, const bson_t *))
{
    bool any = has_items(report, key);
    fprintf(out, "\n%s:%s\n", name, any ? "" : " none");
    add_each(t, report, key, add);
    if (any)
        nem_table_print(t, out, "  ");
    nem_table_destroy(t);
}

static void print_run(FILE *out, const bson_t *report)
{
    bson_t row, opts;
    nem_reg_sub(report, "run", &row);
    nem_runlist_print_one(out, &row);
    print_section(out, report, "scripts", "scripts", nem_runlist_scripts_new(), add_script);
    if (has_items(report, "attempts"))
        print_section(out, report, "attempts", "attempts", nem_table_new(attempt_columns, 8), add_attempt);
    print_section(out, report, "errors", "errors", nem_table_new(pair_columns, 2), add_error);
    print_section(out, report, "models", "models", nem_reg_models_table(), nem_reg_models_add);
    print_section(out, report, "predictions", "predictions", nem_table_new(prediction_columns, 4), add_prediction_row);
    fprintf(out, "\noptions (secrets removed):\n");
    if (nem_reg_sub(report, "options", &opts))
        nem_reg_print_options(out, &opts);
    if (nem_reg_sub(report, "resume_options", &opts)) {
        fprintf(out, "\noptions of the resume (secrets removed):\n");
        nem_reg_print_options(out, &opts);
    }
}

int nem_reg_run(nem_reg_t *r, const char *run_id)
{
    bson_t report;
    bson_error_t err;
    if (!nem_reg_check_run_id(run_id, &err) || !nem_reg_run_report(r, run_id, &report, &err))
        return nem_reg_fail(&err);
    if (r->json)
        nem_reg_print_json(r->out, &report);
    else
        print_run(r->out, &report);
    bson_destroy(&report);
    return NEM_EXIT_OK;
}
