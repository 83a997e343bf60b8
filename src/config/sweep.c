/* Sweeps (--sweep FILE --sweep-index N): FILE holds option sets, one JSON object of option overrides a line
 *   {"dl-batch-size": 64, "dl-epochs": [2, 3]}    # keys: long option names (dashes optional); lists as arrays
 * blank lines and lines starting with # are skipped; set N (counted from 0 over the other lines) is the highest
 * layer of the configuration (NEM_SRC_SWEEP, "sweep FILE:LINE"), above the command line. Every set of the file is
 * checked as the run would be with it (so one bad line fails every task at once, not only its own, hours later);
 * only set N is applied. The index is --sweep-index, else SLURM_ARRAY_TASK_ID (an array task's). */
#include "config-private.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/fs.h"
#include "util/text.h"

const char *nem_sweep_refuses(nem_opt_id_t id)
{
    switch (id) {
    case NEM_OPT_SWEEP:
    case NEM_OPT_SWEEP_INDEX:
    case NEM_OPT_SWEEP_NAME:
    case NEM_OPT_SWEEP_RESUME:
        return "it says which sweep and set this is (give it on the command line, in N_* or a config file)";
    case NEM_OPT_CONFIG:
        return "config files are read before the sweep (put the options themselves in the set)";
    case NEM_OPT_RESUME:
        return "a run to resume is named on the command line, or found by --sweep-resume";
    case NEM_OPT_PRINT_CONFIG:
    case NEM_OPT_CHECK:
    case NEM_OPT_CHECK_SERVER:
    case NEM_OPT_LIST_RUNS:
    case NEM_OPT_UPDATE:
    case NEM_OPT_PREVENT_UPDATE:
        return "it says what the command does, not how one run of the sweep differs";
    case NEM_OPT_DB_BATCH_SIZE:
    case NEM_OPT_DB_COLLECTION_NAME:
    case NEM_OPT_DB_PIPELINE:
        return NULL; /* read by stage scripts, as any stage option */
    default:
        break;
    }
    const nem_option_t *o = &nem_options[id];
    if (o->group == NEM_G_DB || o->group == NEM_G_TLS || o->group == NEM_G_REPLICA || (o->flags & NEM_F_SECRET))
        return "every run of a sweep reports to one store: the server, the connection and the credentials are the "
               "sweep's, not one set's";
    return NULL;
}

static const char *json_type_name(const bson_iter_t *it)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8: return "a string";
    case BSON_TYPE_BOOL: return "a boolean";
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64: return "an integer";
    case BSON_TYPE_DOUBLE: return "a number with a fraction";
    case BSON_TYPE_DOCUMENT: return "an object";
    case BSON_TYPE_ARRAY: return "a list";
    case BSON_TYPE_NULL: return "null";
    default: return "a value of another type";
    }
}

static const char *type_wanted(const nem_option_t *o)
{
    switch (o->type) {
    case NEM_T_BOOL: return "true or false";
    case NEM_T_INT: return "an integer";
    case NEM_T_JSON: return "a JSON object or array (inline), or a string";
    default: return "a string";
    }
}

/* One JSON value as the option's text, or NULL when its type is wrong for the option. */
static char *value_text(const nem_option_t *o, const bson_iter_t *it)
{
    switch (o->type) {
    case NEM_T_BOOL:
        return BSON_ITER_HOLDS_BOOL(it) ? bson_strdup(bson_iter_bool(it) ? "true" : "false") : NULL;
    case NEM_T_INT:
        if (BSON_ITER_HOLDS_INT32(it) || BSON_ITER_HOLDS_INT64(it))
            return bson_strdup_printf("%" PRId64, bson_iter_as_int64(it));
        return NULL;
    case NEM_T_JSON:
        if (BSON_ITER_HOLDS_DOCUMENT(it) || BSON_ITER_HOLDS_ARRAY(it)) {
            uint32_t len;
            const uint8_t *data;
            bson_t sub;
            if (BSON_ITER_HOLDS_DOCUMENT(it))
                bson_iter_document(it, &len, &data);
            else
                bson_iter_array(it, &len, &data);
            if (!bson_init_static(&sub, data, len))
                return NULL;
            char *json = BSON_ITER_HOLDS_DOCUMENT(it) ? bson_as_relaxed_extended_json(&sub, NULL)
                                                      : bson_array_as_json(&sub, NULL);
            char *out = bson_strdup(json);
            bson_free(json);
            return out;
        }
        /* else a string: a pipeline's file, or inline JSON as text */
        return BSON_ITER_HOLDS_UTF8(it) ? bson_strdup(bson_iter_utf8(it, NULL)) : NULL;
    default:
        return BSON_ITER_HOLDS_UTF8(it) ? bson_strdup(bson_iter_utf8(it, NULL)) : NULL;
    }
}

/* A list of a JSON option is a list of pipelines only when every element is one (an array) or a string: a list of
 * objects is one pipeline. */
static bool json_list_of_values(const bson_iter_t *it)
{
    bson_iter_t sub;
    if (!bson_iter_recurse(it, &sub))
        return false;
    while (bson_iter_next(&sub))
        if (!BSON_ITER_HOLDS_ARRAY(&sub) && !BSON_ITER_HOLDS_UTF8(&sub))
            return false;
    return true;
}

static bool wrong_type(const char *where, const nem_option_t *o, const bson_iter_t *it, bool element,
                       bson_error_t *err)
{
    bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s expects %s%s, got %s", where, o->name,
                   element ? "a list of " : "", type_wanted(o), json_type_name(it));
    return false;
}

/* One "KEY: VALUE" of a set into layer. */
static bool set_one(nem_config_t *layer, const char *where, bson_iter_t *it, bson_error_t *err)
{
    const char *key = bson_iter_key(it);
    int id = nem_option_find(key);
    char q[128];
    if (id < 0) {
        const char *sug = nem_option_suggest(key);
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: unknown option '%s'%s%s%s", where,
                       nem_text_quote(key, q, sizeof q), sug ? " (did you mean " : "", sug ? sug : "", sug ? "?)" : "");
        return false;
    }
    const nem_option_t *o = &nem_options[id];
    const char *why = nem_sweep_refuses((nem_opt_id_t)id);
    if (why) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s cannot be set by a sweep: %s", where,
                       o->name, why);
        return false;
    }
    if (layer->values[id].src != NEM_SRC_UNSET) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: option '%s' is given twice in one set", where,
                       o->name);
        return false;
    }
    char **items = NULL;
    size_t n = 0;
    bool ok = true;
    if (BSON_ITER_HOLDS_ARRAY(it) && !(o->type == NEM_T_JSON && !json_list_of_values(it))) {
        bson_iter_t sub;
        if (!(o->flags & NEM_F_LIST))
            return wrong_type(where, o, it, false, err);
        bson_iter_recurse(it, &sub);
        while (ok && bson_iter_next(&sub)) {
            char *t = value_text(o, &sub);
            if (!t) {
                ok = wrong_type(where, o, &sub, true, err);
                break;
            }
            items = bson_realloc(items, (n + 1) * sizeof *items);
            items[n++] = t;
        }
        if (ok && n == 0) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s needs a value, got an empty list",
                           where, o->name);
            ok = false;
        }
    } else {
        char *t = value_text(o, it);
        if (!t)
            return wrong_type(where, o, it, false, err);
        items = bson_malloc(sizeof *items);
        items[n++] = t;
    }
    if (ok)
        nem_value_set(&layer->values[id], items, n, NEM_SRC_SWEEP, where);
    for (size_t i = 0; i < n; i++)
        bson_free(items[i]);
    bson_free(items);
    return ok;
}

/* One line of the file: a JSON object into layer (empty: a set that changes nothing, a baseline). */
static bool parse_set(nem_config_t *layer, const char *line, const char *where, bson_error_t *err)
{
    bson_t doc;
    bson_error_t jerr;
    bson_iter_t it;
    if (*line != '{') {
        char q[64];
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE,
                       "%s: malformed line '%s': an option set is one JSON object a line ({\"dl-epochs\": 2})", where,
                       nem_text_quote(line, q, sizeof q));
        return false;
    }
    if (!bson_init_from_json(&doc, line, -1, &jerr)) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: malformed line: not one JSON object (%s)", where,
                       jerr.message);
        return false;
    }
    bool ok = bson_iter_init(&it, &doc);
    while (ok && bson_iter_next(&it))
        ok = set_one(layer, where, &it, err);
    bson_destroy(&doc);
    return ok;
}

/* Where the index comes from: --sweep-index (any source), else SLURM_ARRAY_TASK_ID, which then becomes the value of
 * --sweep-index (so --print-config and the run's options show it). */
static bool sweep_index(nem_config_t *cfg, const char *file, int64_t *index, bson_error_t *err)
{
    nem_value_t *v = &cfg->values[NEM_OPT_SWEEP_INDEX];
    char q[128];
    if (v->n == 0) {
        const char *task = getenv("SLURM_ARRAY_TASK_ID");
        if (!task || !*task) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE,
                           "%s: --sweep %s needs --sweep-index N (the set to run, from 0), or SLURM_ARRAY_TASK_ID in "
                           "an array task", cfg->values[NEM_OPT_SWEEP].where, file);
            return false;
        }
        if (!nem_config_set_text(cfg, NEM_OPT_SWEEP_INDEX, task, NEM_SRC_ENV, "env SLURM_ARRAY_TASK_ID", err))
            return false;
    }
    if (!nem_parse_int(v->v[0], index) || *index < 0 || *index > INT32_MAX) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                       "%s: option --sweep-index expects an integer from 0 to %d, got '%s'", v->where, INT32_MAX,
                       nem_text_quote(v->v[0], q, sizeof q));
        return false;
    }
    return true;
}

bool nem_config_apply_sweep(nem_config_t *cfg, bson_error_t *err)
{
    const nem_value_t *sv = &cfg->values[NEM_OPT_SWEEP];
    if (cfg->skip_sweep)
        return true;
    if (sv->n == 0) {
        static const nem_opt_id_t needs[] = {NEM_OPT_SWEEP_INDEX, NEM_OPT_SWEEP_NAME, NEM_OPT_SWEEP_RESUME};
        for (size_t i = 0; i < sizeof needs / sizeof *needs; i++) {
            const nem_value_t *v = &cfg->values[needs[i]];
            if (v->src > NEM_SRC_DEFAULT && (needs[i] != NEM_OPT_SWEEP_RESUME || nem_cfg_bool(cfg, needs[i]))) {
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE, "%s: option --%s needs --sweep FILE",
                               v->where, nem_options[needs[i]].name);
                return false;
            }
        }
        return true;
    }
    const char *file = sv->v[0];
    int64_t index;
    if (!sweep_index(cfg, file, &index, err))
        return false;
    char *path = nem_cfg_path(cfg, NEM_OPT_SWEEP, 0), *text = NULL;
    size_t len = 0;
    bool ok = nem_read_regular_file(path, NEM_SWEEP_FILE_MAX, "sweep file", &text, &len, err);
    bson_free(path);
    if (!ok) {
        char where[256];
        snprintf(where, sizeof where, "%s: option --sweep", sv->where);
        nem_config_rewrap(err, where, NEM_CONFIG_EFILE);
        return false;
    }
    /* The set to apply, and every set checked on a copy of the configuration with it applied. */
    nem_config_t *chosen = NULL;
    int64_t sets = 0;
    int lineno = 0;
    char *p = text, *end = text + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (ok && p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *line = p;
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p), bad;
        char where[PATH_MAX + 32];
        p = nl ? nl + 1 : end;
        lineno++;
        snprintf(where, sizeof where, "sweep %s:%d", file, lineno);
        if (memchr(line, '\0', n)) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: NUL byte in a sweep file (is it binary?)",
                           where);
            ok = false;
            break;
        }
        if (!nem_utf8_valid(line, n, &bad)) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: invalid UTF-8 (byte %zu of the line)", where,
                           bad + 1);
            ok = false;
            break;
        }
        line[n] = '\0';
        while (isspace((unsigned char)*line))
            line++;
        size_t m = strlen(line);
        while (m && isspace((unsigned char)line[m - 1]))
            line[--m] = '\0';
        if (!*line || *line == '#')
            continue;
        nem_config_t *layer = nem_config_new(), *check = nem_config_new();
        ok = parse_set(layer, line, where, err);
        if (ok) {
            nem_config_merge(check, cfg);
            nem_config_merge(check, layer);
            nem_config_empty_means_none(check);
            ok = nem_config_validate(check, err);
        }
        nem_config_destroy(check);
        if (ok && sets == index)
            chosen = layer;
        else
            nem_config_destroy(layer);
        sets++;
    }
    bson_free(text);
    if (ok && !chosen) {
        const nem_value_t *iv = &cfg->values[NEM_OPT_SWEEP_INDEX];
        if (sets)
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                           "sweep %s: --sweep-index %" PRId64 " (%s) is out of range: the file holds %" PRId64
                           " option set%s (indexes 0-%" PRId64 ")", file, index, iv->where, sets, sets == 1 ? "" : "s",
                           sets - 1);
        else
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                           "sweep %s: the file holds no option set (one JSON object a line)", file);
        ok = false;
    }
    char *name = ok ? nem_cfg_sweep_name(cfg) : NULL, why[160];
    if (ok && !nem_label_ok(name, NEM_LABEL_MAX, why, sizeof why)) {
        char q[160];
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                       "sweep %s: the sweep's name '%s' (from the file's name) %s: give one with --sweep-name", file,
                       nem_text_quote(name, q, sizeof q), why);
        ok = false;
    }
    bson_free(name);
    if (ok)
        nem_config_merge(cfg, chosen);
    nem_config_destroy(chosen);
    return ok;
}

char *nem_cfg_sweep_name(const nem_config_t *cfg)
{
    const char *name = nem_cfg_str(cfg, NEM_OPT_SWEEP_NAME, 0), *file = nem_cfg_str(cfg, NEM_OPT_SWEEP, 0);
    if (name)
        return bson_strdup(name);
    if (!file)
        return NULL;
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    return bson_strndup(base, n);
}

void nem_cfg_sweep_overrides(const nem_config_t *cfg, bson_t *out)
{
    bson_init(out);
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_option_t *o = &nem_options[i];
        const nem_value_t *v = &cfg->values[i];
        if (v->src != NEM_SRC_SWEEP || v->n == 0)
            continue;
        if (o->flags & NEM_F_LIST) {
            bson_t arr;
            char key[16];
            const char *k;
            BSON_APPEND_ARRAY_BEGIN(out, o->name, &arr);
            for (size_t j = 0; j < v->n; j++) {
                bson_uint32_to_string((uint32_t)j, &k, key, sizeof key);
                nem_config_append_typed(&arr, k, o, v->v[j]);
            }
            bson_append_array_end(out, &arr);
        } else {
            nem_config_append_typed(out, o->name, o, v->v[0]);
        }
    }
}
