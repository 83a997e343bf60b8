/* `run ID`: one run in full: its row, its scripts in the order they ran, the options (secrets removed), the errors,
 * the models it stored and the predictions its predict scripts made, as stored now. */
#include "registry/registry.h"

#include <stdlib.h>
#include <string.h>

#include "util/exitcodes.h"
#include "util/stages.h"

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
    nem_reg_append_date(out, "started", started);
    nem_reg_append_date(out, "ended", ended);
    if (started != INT64_MIN && ended != INT64_MIN)
        BSON_APPEND_INT64(out, "ms", ended - started);
    else
        BSON_APPEND_NULL(out, "ms");
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
    bson_t stamps = BSON_INITIALIZER;
    bson_iter_t it;
    uint32_t n = 0;
    bool ok = nem_reg_stamps(r->store, true, &stamps, err);
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

static void print_attempt(FILE *out, const bson_t *a)
{
    bson_iter_t it;
    char started[40] = "-", ended[40] = "-";
    if (bson_iter_init_find(&it, a, "started") && BSON_ITER_HOLDS_UTF8(&it))
        bson_strncpy(started, bson_iter_utf8(&it, NULL), sizeof started);
    if (bson_iter_init_find(&it, a, "ended") && BSON_ITER_HOLDS_UTF8(&it))
        bson_strncpy(ended, bson_iter_utf8(&it, NULL), sizeof ended);
    fprintf(out, "  %3" PRId64 "  %-12s %7" PRId64 "  %-12s %5" PRId64 "  %-24s %-24s %s\n", nem_reg_int(a, "n", 0),
            nem_reg_str(a, "job", "-"), nem_reg_int(a, "restart", 0), nem_reg_str(a, "host", "?"),
            nem_reg_int(a, "ranks", 0), started, ended, nem_reg_str(a, "status", "?"));
}

bool nem_reg_run_report(nem_reg_t *r, const char *run_id, bson_t *out, bson_error_t *err)
{
    bson_t record, row, arr, child, opts, view;
    size_t n;
    uint32_t k = 0;
    if (!nem_reg_load_run(r->store, run_id, &record, err))
        return false;
    bson_init(out);
    nem_reg_run_row(r, &record, &row);
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

static void print_each(FILE *out, const bson_t *report, const char *key, void (*fn)(FILE *, const bson_t *))
{
    bson_t arr, item;
    bson_iter_t it;
    if (nem_reg_sub(report, key, &arr) && bson_iter_init(&it, &arr))
        while (bson_iter_next(&it))
            if (nem_reg_sub(&arr, bson_iter_key(&it), &item))
                fn(out, &item);
}

static void print_script(FILE *out, const bson_t *s)
{
    bson_iter_t it;
    char secs[32] = "-";
    if (bson_iter_init_find(&it, s, "ms") && BSON_ITER_HOLDS_INT64(&it))
        snprintf(secs, sizeof secs, "%.3f", (double)bson_iter_int64(&it) / 1000.0);
    fprintf(out, "  %-10s %-10s %4" PRId64 " %-12s %9s %9" PRId64 " %6" PRId64 "  %s\n", nem_reg_str(s, "script", "?"),
            nem_reg_str(s, "status", "?"), nem_reg_int(s, "rank", -1), nem_reg_str(s, "host", "?"), secs,
            nem_reg_int(s, "documents", 0), nem_reg_int(s, "models", 0), nem_reg_str(s, "path", "?"));
}

static void print_error(FILE *out, const bson_t *e)
{
    fprintf(out, "  %s: %s\n", nem_reg_str(e, "script", "run"), nem_reg_str(e, "error", "?"));
}

static void print_prediction(FILE *out, const bson_t *p)
{
    fprintf(out, "  %-10s %-24s %8" PRId64 " made with model %s\n", nem_reg_str(p, "script", "?"),
            nem_reg_str(p, "collection", "?"), nem_reg_int(p, "count", 0), nem_reg_str(p, "model", "(none recorded)"));
}

static void print_options(FILE *out, const bson_t *opts)
{
    bson_iter_t it;
    if (bson_iter_init(&it, opts))
        while (bson_iter_next(&it)) {
            char *v = nem_reg_value_text(&it, 200);
            fprintf(out, "  %-34s %s\n", bson_iter_key(&it), v);
            bson_free(v);
        }
}

static bool has_items(const bson_t *report, const char *key)
{
    bson_t arr;
    return nem_reg_sub(report, key, &arr) && !bson_empty(&arr);
}

static void print_run(FILE *out, const bson_t *report)
{
    bson_t row, opts;
    nem_reg_sub(report, "run", &row);
    nem_reg_print_run_header(out);
    nem_reg_print_run_row(out, &row);
    fprintf(out, "\nscripts:\n  %-10s %-10s %4s %-12s %9s %9s %6s  %s\n", "script", "status", "rank", "host", "seconds",
            "documents", "models", "path");
    print_each(out, report, "scripts", print_script);
    if (has_items(report, "attempts")) {
        fprintf(out, "\nattempts:\n  %3s  %-12s %7s  %-12s %5s  %-24s %-24s %s\n", "n", "slurm_job", "restart", "host",
                "ranks", "started", "ended", "status");
        print_each(out, report, "attempts", print_attempt);
    }
    fprintf(out, "\nerrors:%s\n", has_items(report, "errors") ? "" : " none");
    print_each(out, report, "errors", print_error);
    fprintf(out, "\nmodels:%s\n", has_items(report, "models") ? "" : " none");
    print_each(out, report, "models", nem_reg_print_model_row);
    fprintf(out, "\npredictions:%s\n", has_items(report, "predictions") ? "" : " none");
    print_each(out, report, "predictions", print_prediction);
    fprintf(out, "\noptions (secrets removed):\n");
    if (nem_reg_sub(report, "options", &opts))
        print_options(out, &opts);
    if (nem_reg_sub(report, "resume_options", &opts)) {
        fprintf(out, "\noptions of the resume (secrets removed):\n");
        print_options(out, &opts);
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
