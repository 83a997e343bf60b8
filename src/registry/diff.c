/* `diff A B`: two runs, or two models, side by side, showing only what differs. Each side is first made into one
 * flat document of named fields (dotted names, "[i]" for the elements of a list of records), from the run record
 * and the models' _nemesyst metadata as stored now; then every field either side has is compared. What names a run
 * or a model rather than describes it (its id, start and end times, stamps, file names, upload dates) is left out:
 * two runs of the same thing on the same data differ only in their durations.
 *
 * A run's fields: status, version, ranks, hosts, duration_ms, sweep.name, sweep.index and sweep.overrides.OPTION (a
 * run of a --sweep), options.NAME (secrets removed), and per script KEY
 * ("learn-0"): KEY.path, status, host, rank, duration_ms, documents, models, error, consumed.count and .digest, the
 * final value of each metric it reported (KEY.metrics.NAME), and for each model it stored (KEY.model, then
 * KEY.model#2, ...) the model's fields below except options, stage and position (the run's own say them).
 * A model's fields: bucket, length, stage, position, host, rank, script.path, script.sha256, code.* (interpreter,
 * git, modules: provenance/code.h), data.collection, data.pipeline, consumed[i].* (collection, pipeline, count,
 * digest, ...), parent.id and parent.bucket, metrics.NAME (its metadata's numbers, nem_reg_metrics), options.NAME;
 * and from its run's record, sweep.* (as for a run), script.status, script.duration_ms and script.metrics.NAME. */
#include "registry/registry.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "provenance/provenance.h"
#include "runrec/runrec.h"
#include "util/exitcodes.h"
#include "util/table.h"

/* ---- one side as flat fields ---- */

static void put_value(bson_t *flat, const char *prefix, const char *key, const bson_value_t *v)
{
    char *name = prefix && *prefix ? bson_strdup_printf("%s.%s", prefix, key) : bson_strdup(key);
    if (v->value_type == BSON_TYPE_OID) { /* ids as their hex digits, as every report shows them */
        char hex[25];
        bson_oid_to_string(&v->value.v_oid, hex);
        BSON_APPEND_UTF8(flat, name, hex);
    } else {
        BSON_APPEND_VALUE(flat, name, v);
    }
    bson_free(name);
}

static void put_str(bson_t *flat, const char *prefix, const char *key, const char *s)
{
    bson_value_t v = {.value_type = BSON_TYPE_UTF8};
    if (!s)
        return;
    v.value.v_utf8.str = (char *)s;
    v.value.v_utf8.len = (uint32_t)strlen(s);
    put_value(flat, prefix, key, &v);
}

static void put_int(bson_t *flat, const char *prefix, const char *key, int64_t n)
{
    bson_value_t v = {.value_type = BSON_TYPE_INT64, .value.v_int64 = n};
    put_value(flat, prefix, key, &v);
}

/* A field of doc at path, when it is there. */
static void put_field(bson_t *flat, const char *prefix, const char *key, const bson_t *doc, const char *path)
{
    bson_iter_t it, f;
    if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &f))
        put_value(flat, prefix, key, bson_iter_value(&f));
}

/* The span from started to ended of doc, in ms, when both are there. */
static void put_duration(bson_t *flat, const char *prefix, const bson_t *doc)
{
    int64_t started = nem_reg_date(doc, "started"), ended = nem_reg_date(doc, "ended");
    if (started != INT64_MIN && ended != INT64_MIN)
        put_int(flat, prefix, "duration_ms", ended - started);
}

static bool all_scalars(const bson_t *arr)
{
    bson_iter_t it;
    if (bson_iter_init(&it, arr))
        while (bson_iter_next(&it))
            if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it))
                return false;
    return true;
}

/* Every leaf of doc as PREFIX.KEY...: sub-documents by their keys, lists of records by "[i]"; a list of plain
 * values (hosts, a list option) is one field. */
static void flatten(bson_t *flat, const char *prefix, const bson_t *doc, bool is_array)
{
    bson_iter_t it;
    if (!bson_iter_init(&it, doc))
        return;
    while (bson_iter_next(&it)) {
        char *name = is_array ? bson_strdup_printf("%s[%s]", prefix, bson_iter_key(&it))
                              : prefix && *prefix ? bson_strdup_printf("%s.%s", prefix, bson_iter_key(&it))
                                                  : bson_strdup(bson_iter_key(&it));
        bson_t sub;
        bool arr = BSON_ITER_HOLDS_ARRAY(&it);
        if ((BSON_ITER_HOLDS_DOCUMENT(&it) || arr) && nem_reg_sub(doc, bson_iter_key(&it), &sub) &&
            !(arr && all_scalars(&sub)) && !bson_empty(&sub))
            flatten(flat, name, &sub, arr);
        else
            put_value(flat, NULL, name, bson_iter_value(&it));
        bson_free(name);
    }
}

/* A run of a sweep (runrec.h): sweep.name, sweep.index and sweep.overrides.OPTION. */
static void sweep_fields(bson_t *flat, const bson_t *record)
{
    bson_t sweep, overrides;
    if (!nem_reg_sub(record, "sweep", &sweep))
        return;
    put_str(flat, "sweep", "name", nem_reg_str(&sweep, "name", NULL));
    put_field(flat, "sweep", "index", &sweep, "index");
    if (nem_reg_sub(&sweep, "overrides", &overrides))
        flatten(flat, "sweep.overrides", &overrides, false);
}

/* What a run record's script entry says: see the head of this file. */
static void script_fields(bson_t *flat, const char *key, const bson_t *entry)
{
    bson_t arr, m;
    bson_iter_t it;
    put_str(flat, key, "path", nem_reg_str(entry, "path", NULL));
    put_str(flat, key, "status", nem_reg_str(entry, "status", NULL));
    put_str(flat, key, "host", nem_reg_str(entry, "host", NULL));
    put_field(flat, key, "rank", entry, "rank");
    put_duration(flat, key, entry);
    put_field(flat, key, "documents", entry, "documents");
    put_field(flat, key, "models", entry, "models");
    put_str(flat, key, "error", nem_reg_str(entry, "error", NULL));
    put_field(flat, key, "group_size", entry, "group_size");
    put_field(flat, key, "consumed.count", entry, "consumed.count");
    put_field(flat, key, "consumed.digest", entry, "consumed.digest");
    if (nem_reg_sub(entry, "metrics", &arr) && bson_iter_init(&it, &arr))
        while (bson_iter_next(&it))
            if (nem_reg_sub(&arr, bson_iter_key(&it), &m) && nem_reg_str(&m, "name", NULL)) {
                char *name = bson_strdup_printf("metrics.%s", nem_reg_str(&m, "name", "?"));
                put_field(flat, key, name, &m, "value");
                bson_free(name);
            }
}

/* A model's fields (the head of this file); whole: a model compared as itself, with its options, stage, position
 * and what its run's record says of the script that stored it. */
static bool model_fields(nem_reg_t *r, const char *bucket, const bson_t *file, const char *prefix, bool whole,
                         bson_t *flat, bson_error_t *err)
{
    bson_t prov, sub, meta, metrics;
    bool has = nem_reg_sub(file, "metadata." NEM_PROVENANCE_FIELD, &prov);
    if (!has)
        bson_init(&prov);
    put_str(flat, prefix, "bucket", bucket);
    put_field(flat, prefix, "length", file, "length");
    if (whole) {
        put_str(flat, prefix, "stage", nem_reg_str(&prov, "stage", NULL));
        put_field(flat, prefix, "position", &prov, "position");
    }
    put_str(flat, prefix, "host", nem_reg_str(&prov, "host", NULL));
    put_field(flat, prefix, "rank", &prov, "rank");
    if (whole)
        put_str(flat, prefix, "script.path", nem_reg_str(&prov, "script", NULL));
    put_str(flat, prefix, "script.sha256", nem_reg_str(&prov, "script_sha256", NULL));
    char *p = bson_strdup_printf("%s%scode", prefix ? prefix : "", prefix && *prefix ? "." : "");
    if (nem_reg_sub(&prov, "code", &sub))
        flatten(flat, p, &sub, false);
    bson_free(p);
    put_str(flat, prefix, "data.collection", nem_reg_str(&prov, "data_collection", NULL));
    put_field(flat, prefix, "data.pipeline", &prov, "data_pipeline");
    p = bson_strdup_printf("%s%sconsumed", prefix ? prefix : "", prefix && *prefix ? "." : "");
    if (nem_reg_sub(&prov, "consumed", &sub))
        flatten(flat, p, &sub, true);
    bson_free(p);
    put_field(flat, prefix, "parent.id", &prov, "parent.id");
    put_str(flat, prefix, "parent.bucket", nem_reg_str(&prov, "parent.bucket", NULL));
    nem_reg_metrics(nem_reg_sub(file, "metadata", &meta) ? &meta : NULL, &metrics);
    p = bson_strdup_printf("%s%smetrics", prefix ? prefix : "", prefix && *prefix ? "." : "");
    flatten(flat, p, &metrics, false);
    bson_free(p);
    bson_destroy(&metrics);
    bool ok = true;
    if (whole) {
        bson_t opts, record, entry;
        nem_reg_clean_options(nem_reg_sub(&prov, "options", &sub) ? &sub : NULL, &opts);
        flatten(flat, "options", &opts, false);
        bson_destroy(&opts);
        /* the script that stored it, as its run's record says: gone with the record, which is no error */
        const char *run = nem_reg_str(&prov, "run", NULL);
        char *key = bson_strdup_printf("scripts.%s-%" PRId64, nem_reg_str(&prov, "stage", "?"),
                                       nem_reg_int(&prov, "position", 0));
        if (run && nem_reg_load_run(r->store, run, &record, err)) {
            sweep_fields(flat, &record);
            if (nem_reg_sub(&record, key, &entry)) {
                bson_t part = BSON_INITIALIZER;
                bson_iter_t it;
                script_fields(&part, "script", &entry);
                static const char *const own[] = {"script.path", "script.host", "script.rank", "script.documents",
                                                  "script.models"}; /* the model's own, above, or not its */
                if (bson_iter_init(&it, &part))
                    while (bson_iter_next(&it)) {
                        bool skip = false;
                        for (size_t i = 0; i < sizeof own / sizeof *own && !skip; i++)
                            skip = strcmp(bson_iter_key(&it), own[i]) == 0;
                        if (!skip)
                            bson_append_iter(flat, NULL, 0, &it);
                    }
                bson_destroy(&part);
            }
            bson_destroy(&record);
        } else if (run && !(err->domain == NEM_ERROR_PROVENANCE && err->code == NEM_PROVENANCE_ENORUN)) {
            ok = false;
        }
        bson_free(key);
    }
    if (!has)
        bson_destroy(&prov);
    return ok;
}

typedef struct {
    nem_stage_t stage;
    int64_t position;
    const char *key;
} script_key_t;

static int by_stage_position(const void *a, const void *b)
{
    const script_key_t *x = a, *y = b;
    if (x->stage != y->stage)
        return (int)x->stage - (int)y->stage;
    return x->position < y->position ? -1 : x->position > y->position;
}

/* A run's fields (the head of this file), its scripts in the order they ran. */
static bool run_fields(nem_reg_t *r, const char *run_id, bson_t *flat, bson_error_t *err)
{
    bson_t record, row, sub, opts, scripts, rows;
    bson_iter_t it;
    if (!nem_reg_load_run(r->store, run_id, &record, err))
        return false;
    nem_runlist_row(&record, r->now_ms, &row);
    put_str(flat, NULL, "status", nem_reg_str(&row, "status", NULL));
    bson_destroy(&row);
    put_str(flat, NULL, "version", nem_reg_str(&record, "version", NULL));
    put_str(flat, NULL, "user", nem_reg_str(&record, "user", NULL));
    put_field(flat, NULL, "ranks", &record, "ranks");
    put_field(flat, NULL, "hosts", &record, "hosts");
    put_duration(flat, NULL, &record);
    sweep_fields(flat, &record);
    nem_reg_clean_options(nem_reg_sub(&record, "options", &sub) ? &sub : NULL, &opts);
    flatten(flat, "options", &opts, false);
    bson_destroy(&opts);

    bool ok = nem_reg_model_rows(r, r->bucket, run_id, &rows, err);
    script_key_t *keys = NULL;
    size_t n = 0, cap = 0;
    if (ok && nem_reg_sub(&record, "scripts", &scripts) && bson_iter_init(&it, &scripts))
        while (bson_iter_next(&it)) {
            bson_t entry;
            script_key_t k = {NEM_STAGE__COUNT, 0, bson_iter_key(&it)};
            if (!nem_reg_sub(&scripts, k.key, &entry))
                continue;
            if (!nem_stage_from_name(nem_reg_str(&entry, "stage", ""), &k.stage))
                k.stage = NEM_STAGE__COUNT;
            k.position = nem_reg_int(&entry, "position", 0);
            if (n == cap)
                keys = bson_realloc(keys, (cap = cap ? cap * 2 : 8) * sizeof *keys);
            keys[n++] = k;
        }
    if (n)
        qsort(keys, n, sizeof *keys, by_stage_position);
    for (size_t i = 0; ok && i < n; i++) {
        bson_t entry, mrow;
        int m = 0;
        nem_reg_sub(&scripts, keys[i].key, &entry);
        script_fields(flat, keys[i].key, &entry);
        /* the models it stored, oldest first */
        if (bson_iter_init(&it, &rows))
            while (ok && bson_iter_next(&it)) {
                bson_oid_t oid;
                bson_value_t id = {.value_type = BSON_TYPE_OID};
                bson_t file;
                char *bucket = NULL;
                bool found = false;
                const char *hex;
                if (!nem_reg_sub(&rows, bson_iter_key(&it), &mrow) ||
                    strcmp(nem_reg_str(&mrow, "script", ""), keys[i].key) != 0 || !(hex = nem_reg_str(&mrow, "id", NULL)) ||
                    strlen(hex) != 24 || !bson_oid_is_valid(hex, 24))
                    continue;
                bson_oid_init_from_string(&oid, hex);
                id.value.v_oid = oid;
                ok = nem_reg_find_model(r->store, nem_reg_str(&mrow, "bucket", NULL), &id, &file, &bucket, &found, err);
                if (ok && found) {
                    char *prefix = ++m == 1 ? bson_strdup_printf("%s.model", keys[i].key)
                                            : bson_strdup_printf("%s.model#%d", keys[i].key, m);
                    ok = model_fields(r, bucket, &file, prefix, false, flat, err);
                    bson_free(prefix);
                    bson_destroy(&file);
                }
                bson_free(bucket);
            }
    }
    bson_free(keys);
    if (ok)
        bson_destroy(&rows);
    bson_destroy(&record);
    return ok;
}

/* ---- the comparison ---- */

static bool is_number(const bson_iter_t *it)
{
    return BSON_ITER_HOLDS_INT32(it) || BSON_ITER_HOLDS_INT64(it) || BSON_ITER_HOLDS_DOUBLE(it);
}

/* Two values are the same when they are equal numbers (3 and 3.0), or of one kind with the same text. */
static bool same_value(const bson_iter_t *a, const bson_iter_t *b)
{
    if (is_number(a) || is_number(b))
        return is_number(a) && is_number(b) && bson_iter_as_double((bson_iter_t *)a) == bson_iter_as_double((bson_iter_t *)b) &&
               bson_iter_as_int64((bson_iter_t *)a) == bson_iter_as_int64((bson_iter_t *)b);
    if (bson_iter_type(a) != bson_iter_type(b))
        return false;
    char *x = nem_reg_value_text(a, SIZE_MAX), *y = nem_reg_value_text(b, SIZE_MAX);
    bool same = strcmp(x, y) == 0;
    bson_free(x);
    bson_free(y);
    return same;
}

static void append_side(bson_t *d, const char *key, const bson_iter_t *it)
{
    if (it)
        BSON_APPEND_VALUE(d, key, bson_iter_value((bson_iter_t *)it));
    else
        BSON_APPEND_NULL(d, key);
}

static void push_difference(bson_t *arr, uint32_t *n, const char *field, const bson_iter_t *a, const bson_iter_t *b)
{
    bson_t d;
    nem_reg_push_doc(arr, n, &d);
    BSON_APPEND_UTF8(&d, "field", field);
    append_side(&d, "a", a);
    append_side(&d, "b", b);
    bson_append_document_end(arr, &d);
}

/* The fields of a that b lacks or holds otherwise, in a's order, then those only b has. */
static uint32_t compare(const bson_t *a, const bson_t *b, bson_t *arr, uint32_t *compared)
{
    bson_iter_t ia, ib;
    uint32_t n = 0;
    *compared = 0;
    if (bson_iter_init(&ia, a))
        while (bson_iter_next(&ia)) {
            bool found = bson_iter_init_find(&ib, b, bson_iter_key(&ia));
            ++*compared;
            if (!found || !same_value(&ia, &ib))
                push_difference(arr, &n, bson_iter_key(&ia), &ia, found ? &ib : NULL);
        }
    if (bson_iter_init(&ib, b))
        while (bson_iter_next(&ib))
            if (!bson_iter_init_find(&ia, a, bson_iter_key(&ib))) {
                ++*compared;
                push_difference(arr, &n, bson_iter_key(&ib), NULL, &ib);
            }
    return n;
}

/* ---- the verb ---- */

static const nem_table_col_t diff_columns[] = {
    {"field", NEM_TABLE_LEFT, 0}, {"A", NEM_TABLE_LEFT, 64}, {"B", NEM_TABLE_LEFT, 64},
};

static void cell(nem_table_t *t, const bson_t *d, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, d, key) && !BSON_ITER_HOLDS_NULL(&it)) {
        char *text = nem_reg_value_text(&it, 200);
        nem_table_add(t, text);
        bson_free(text);
    } else {
        nem_table_add(t, "(none)");
    }
}

static void print_diff(FILE *out, const bson_t *rep)
{
    const char *kind = nem_reg_str(rep, "kind", "?");
    const char *a = nem_reg_str(rep, "a", "?"), *b = nem_reg_str(rep, "b", "?");
    bson_t arr, d;
    bson_iter_t it;
    int64_t n = nem_reg_int(rep, "differences_count", 0);
    if (!n) {
        fprintf(out, "the same: %s %s and %s %s differ in none of the %" PRId64 " fields compared\n", kind, a, kind,
                b, nem_reg_int(rep, "compared", 0));
        return;
    }
    fprintf(out, "A  %s %s\nB  %s %s\n\n", kind, a, kind, b);
    nem_table_t *t = nem_table_new(diff_columns, 3);
    if (nem_reg_sub(rep, "differences", &arr) && bson_iter_init(&it, &arr))
        while (bson_iter_next(&it))
            if (nem_reg_sub(&arr, bson_iter_key(&it), &d)) {
                nem_table_add(t, nem_reg_str(&d, "field", "?"));
                cell(t, &d, "a");
                cell(t, &d, "b");
            }
    nem_table_print(t, out, NULL);
    nem_table_destroy(t);
    fprintf(out, "\ndifferent: %" PRId64 " of %" PRId64 " fields\n", n, nem_reg_int(rep, "compared", 0));
}

/* One side: the run or the model the id names, as flat fields. */
static bool side(nem_reg_t *r, bool runs, const char *id, bson_t *flat, bson_error_t *err)
{
    bson_init(flat);
    bool ok;
    if (runs) {
        ok = run_fields(r, id, flat, err);
    } else {
        bson_t file;
        char *bucket = NULL;
        ok = nem_reg_model_arg(r, id, &file, &bucket, err);
        if (ok) {
            ok = model_fields(r, bucket, &file, NULL, true, flat, err);
            bson_destroy(&file);
        }
        bson_free(bucket);
    }
    if (!ok)
        bson_destroy(flat);
    return ok;
}

int nem_reg_diff(nem_reg_t *r, const char *a, const char *b)
{
    bson_error_t err;
    bson_oid_t oid;
    bson_t fa, fb, rep = BSON_INITIALIZER, arr = BSON_INITIALIZER;
    bool runs = nem_reg_check_run_id(a, &err);
    if (!(runs ? nem_reg_check_run_id(b, &err) : nem_reg_check_model_id(a, &oid, &err) &&
                                                     nem_reg_check_model_id(b, &oid, &err)))
        return nem_reg_fail(&err); /* main.c checked them; kept for any other caller */
    if (!side(r, runs, a, &fa, &err))
        return nem_reg_fail(&err);
    if (!side(r, runs, b, &fb, &err)) {
        bson_destroy(&fa);
        return nem_reg_fail(&err);
    }
    uint32_t compared, n = compare(&fa, &fb, &arr, &compared);
    BSON_APPEND_UTF8(&rep, "kind", runs ? "run" : "model");
    BSON_APPEND_UTF8(&rep, "a", a);
    BSON_APPEND_UTF8(&rep, "b", b);
    BSON_APPEND_BOOL(&rep, "same", n == 0);
    BSON_APPEND_INT64(&rep, "compared", compared);
    BSON_APPEND_INT64(&rep, "differences_count", n);
    BSON_APPEND_ARRAY(&rep, "differences", &arr);
    if (r->json)
        nem_reg_print_json(r->out, &rep);
    else
        print_diff(r->out, &rep);
    bson_destroy(&arr);
    bson_destroy(&rep);
    bson_destroy(&fa);
    bson_destroy(&fb);
    return n ? NEM_EXIT_FAILURE : NEM_EXIT_OK;
}
