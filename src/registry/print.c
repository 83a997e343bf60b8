/* Reading stored documents tolerantly and writing reports: JSON for scripts, text for tables, no secrets. */
#include "registry/registry.h"

#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "config/options.h"
#include "util/clock.h"
#include "util/errors.h"

void nem_reg_push_doc(bson_t *arr, uint32_t *n, bson_t *child)
{
    char key[16];
    const char *k;
    bson_uint32_to_string((*n)++, &k, key, sizeof key);
    BSON_APPEND_DOCUMENT_BEGIN(arr, k, child);
}

void nem_reg_push_str(bson_t *arr, uint32_t *n, const char *s)
{
    char key[16];
    const char *k;
    bson_uint32_to_string((*n)++, &k, key, sizeof key);
    BSON_APPEND_UTF8(arr, k, s);
}

void nem_reg_print_json(FILE *out, const bson_t *report)
{
    char *json = bson_as_relaxed_extended_json(report, NULL);
    fprintf(out, "%s\n", json ? json : "{}");
    bson_free(json);
}

void nem_reg_json_open(FILE *out, const char *key)
{
    fprintf(out, "{ \"%s\" : [ ", key);
}

void nem_reg_json_item(FILE *out, uint32_t *n, const bson_t *item)
{
    char *json = bson_as_relaxed_extended_json(item, NULL);
    fprintf(out, "%s%s", (*n)++ ? ", " : "", json ? json : "{}");
    bson_free(json);
}

void nem_reg_json_close(FILE *out, const bson_t *tail)
{
    char *json = tail && !bson_empty(tail) ? bson_as_relaxed_extended_json(tail, NULL) : NULL;
    /* "[ ITEM, ITEM ]", "[  ]" empty: libbson's spacing; then tail's fields after the array: its text without its
     * opening brace ("{ "a" : 1 }" -> ", "a" : 1 }") */
    fprintf(out, " ]%s%s\n", json ? ", " : " }", json ? json + 2 : "");
    bson_free(json);
}

/* Dates go out as ISO text (null when missing): what a script compares and a person reads. */
void nem_reg_append_date(bson_t *doc, const char *key, int64_t ms)
{
    char buf[32];
    if (ms == INT64_MIN)
        BSON_APPEND_NULL(doc, key);
    else
        BSON_APPEND_UTF8(doc, key, nem_iso_ms(ms, buf));
}

static bool find(const bson_t *doc, const char *path, bson_iter_t *out)
{
    bson_iter_t it;
    return doc && bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, out);
}

const char *nem_reg_str(const bson_t *doc, const char *path, const char *dflt)
{
    bson_iter_t it;
    return find(doc, path, &it) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : dflt;
}

int64_t nem_reg_int(const bson_t *doc, const char *path, int64_t dflt)
{
    bson_iter_t it;
    return find(doc, path, &it) && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : dflt;
}

int64_t nem_reg_date(const bson_t *doc, const char *path)
{
    bson_iter_t it;
    return find(doc, path, &it) && BSON_ITER_HOLDS_DATE_TIME(&it) ? bson_iter_date_time(&it) : INT64_MIN;
}

bool nem_reg_sub(const bson_t *doc, const char *path, bson_t *view)
{
    bson_iter_t it;
    uint32_t len;
    const uint8_t *data;
    if (!find(doc, path, &it))
        return false;
    if (BSON_ITER_HOLDS_DOCUMENT(&it))
        bson_iter_document(&it, &len, &data);
    else if (BSON_ITER_HOLDS_ARRAY(&it))
        bson_iter_array(&it, &len, &data);
    else
        return false;
    return bson_init_static(view, data, len);
}

static bool is_secret(const char *key)
{
    int id = nem_option_find(key);
    if (id >= 0 && (nem_options[id].flags & NEM_F_SECRET))
        return true;
    for (const char *p = key; *p; p++) /* any key naming a password, in any case */
        if (strncasecmp(p, "password", 8) == 0)
            return true;
    return false;
}

void nem_reg_clean_options(const bson_t *in, bson_t *out)
{
    bson_iter_t it;
    bson_init(out);
    if (in && bson_iter_init(&it, in))
        while (bson_iter_next(&it))
            if (!is_secret(bson_iter_key(&it)))
                bson_append_iter(out, NULL, 0, &it);
}

static bool holds_metric(const bson_iter_t *it)
{
    return BSON_ITER_HOLDS_DOUBLE(it) || BSON_ITER_HOLDS_INT32(it) || BSON_ITER_HOLDS_INT64(it);
}

/* A sub-document of numbers (and lists and documents of them) is a group of metrics ({"history": {"loss": [...]}});
 * one holding anything else is not ({"args": {...}}, the options a 2.0.6 learner copies into its metadata). */
static bool all_numbers(bson_iter_t *it, int depth)
{
    while (bson_iter_next(it)) {
        bson_iter_t sub;
        if (holds_metric(it))
            continue;
        if (!(BSON_ITER_HOLDS_ARRAY(it) || BSON_ITER_HOLDS_DOCUMENT(it)) || depth >= 4 || !bson_iter_recurse(it, &sub) ||
            !all_numbers(&sub, depth + 1))
            return false;
    }
    return true;
}

/* Depth 4 reaches {"history": {"val": {"loss": [...]}}} and stops a pathological nesting. */
static void metrics_into(bson_iter_t *it, const char *prefix, int depth, bson_t *out)
{
    while (bson_iter_next(it)) {
        const char *key = bson_iter_key(it);
        if (!prefix && strcmp(key, "_nemesyst") == 0)
            continue;
        char *name = prefix ? bson_strdup_printf("%s.%s", prefix, key) : bson_strdup(key);
        bson_iter_t sub, ev, v;
        if (!prefix && strcmp(key, "evaluation") == 0 && BSON_ITER_HOLDS_DOCUMENT(it) && bson_iter_recurse(it, &ev)) {
            /* what predictors measured on the model (stage/worker/writer.c): evaluation.NAME = {value, step, run, script} */
            while (bson_iter_next(&ev))
                if (BSON_ITER_HOLDS_DOCUMENT(&ev) && bson_iter_recurse(&ev, &v) && bson_iter_find(&v, "value") &&
                    holds_metric(&v)) {
                    char *en = bson_strdup_printf("evaluation.%s", bson_iter_key(&ev));
                    BSON_APPEND_VALUE(out, en, bson_iter_value(&v));
                    bson_free(en);
                }
        } else if (holds_metric(it)) {
            BSON_APPEND_VALUE(out, name, bson_iter_value(it));
        } else if (BSON_ITER_HOLDS_ARRAY(it) && bson_iter_recurse(it, &sub)) {
            /* a history: its final number is the model's value */
            const bson_value_t *last = NULL;
            while (bson_iter_next(&sub))
                last = holds_metric(&sub) ? bson_iter_value(&sub) : NULL;
            if (last)
                BSON_APPEND_VALUE(out, name, last);
        } else if (BSON_ITER_HOLDS_DOCUMENT(it) && depth < 4 && bson_iter_recurse(it, &sub) &&
                   all_numbers(&sub, depth + 1) && bson_iter_recurse(it, &sub)) {
            metrics_into(&sub, name, depth + 1, out);
        }
        bson_free(name);
    }
}

void nem_reg_metrics(const bson_t *metadata, bson_t *out)
{
    bson_iter_t it;
    bson_init(out);
    if (metadata && bson_iter_init(&it, metadata))
        metrics_into(&it, NULL, 0, out);
}

void nem_reg_print_options(FILE *out, const bson_t *opts)
{
    static const nem_table_col_t pair[] = {{NULL, NEM_TABLE_LEFT, 0}, {NULL, NEM_TABLE_LEFT, 0}};
    nem_table_t *t = nem_table_new(pair, 2);
    bson_iter_t it;
    if (bson_iter_init(&it, opts))
        while (bson_iter_next(&it)) {
            char *v = nem_reg_value_text(&it, 200);
            nem_table_add(t, bson_iter_key(&it));
            nem_table_add(t, v);
            bson_free(v);
        }
    nem_table_print(t, out, "  ");
    nem_table_destroy(t);
}

char *nem_reg_value_text(const bson_iter_t *it, size_t max)
{
    char *text;
    if (BSON_ITER_HOLDS_UTF8(it)) {
        text = bson_strdup(bson_iter_utf8(it, NULL));
    } else if (BSON_ITER_HOLDS_DOUBLE(it)) {
        text = bson_strdup_printf("%.6g", bson_iter_double(it));
    } else if (BSON_ITER_HOLDS_INT32(it) || BSON_ITER_HOLDS_INT64(it)) {
        text = bson_strdup_printf("%" PRId64, bson_iter_as_int64(it));
    } else if (BSON_ITER_HOLDS_BOOL(it)) {
        text = bson_strdup(bson_iter_bool(it) ? "true" : "false");
    } else if (BSON_ITER_HOLDS_NULL(it)) {
        text = bson_strdup("null");
    } else if (BSON_ITER_HOLDS_OID(it)) {
        text = bson_malloc(25);
        bson_oid_to_string(bson_iter_oid(it), text);
    } else {
        /* through a one-key wrapper, as provenance.c writes pipelines: any type gets its JSON form */
        bson_t wrap = BSON_INITIALIZER;
        bson_append_value(&wrap, "v", 1, bson_iter_value((bson_iter_t *)it));
        char *json = bson_as_relaxed_extended_json(&wrap, NULL);
        bson_destroy(&wrap);
        size_t len = json ? strlen(json) : 0;
        text = len > 9 ? bson_strndup(json + 8, len - 10) : bson_strdup("?"); /* { "v" : X } */
        bson_free(json);
    }
    if (strlen(text) > max && max > 3) {
        size_t cut = max - 3;
        while (cut && ((unsigned char)text[cut] & 0xC0) == 0x80) /* not inside a UTF-8 character */
            cut--;
        strcpy(text + cut, "...");
    }
    return text;
}

int nem_reg_fail(const bson_error_t *err)
{
    fprintf(stderr, "nemesyst-registry: error: %s\n", err->message);
    return nem_exit_status(err);
}

void nem_reg_warn(const char *fmt, ...)
{
    va_list ap;
    fputs("nemesyst-registry: warning: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

char *nem_reg_id_text(const bson_value_t *id)
{
    if (id->value_type == BSON_TYPE_OID) {
        char *hex = bson_malloc(25);
        bson_oid_to_string(&id->value.v_oid, hex);
        return hex;
    }
    bson_t wrap = BSON_INITIALIZER;
    bson_iter_t it;
    BSON_APPEND_VALUE(&wrap, "v", id);
    bson_iter_init_find(&it, &wrap, "v");
    char *text = nem_reg_value_text(&it, 60);
    bson_destroy(&wrap);
    return text;
}
