/* Checks on resolved values that no option's type covers: sizes, encodings, ranges, choices, MongoDB's naming rules
 * and the files and scripts options name. Every failure is one line naming the option, the source of its value and
 * the rule broken. Nothing here names an option: ranges and choices are the rule column of options.def; which
 * options name a database, a collection or a GridFS bucket, a file nemesyst reads or stage scripts is a flag there
 * (NEM_F_DB, NEM_F_COLLECTION, NEM_F_BUCKET, NEM_F_FILE, NEM_F_SCRIPT). */
#include "config-private.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/text.h"

/* " 3" for the third value of a list option, "" for a single value. */
static const char *nth(const nem_value_t *v, size_t k, char *buf, size_t size)
{
    if (v->n > 1)
        snprintf(buf, size, " %zu", k + 1);
    else
        buf[0] = '\0';
    return buf;
}

bool nem_config_check_values(const nem_config_t *cfg, bson_error_t *err)
{
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_option_t *o = &nem_options[i];
        const nem_value_t *v = &cfg->values[i];
        size_t max = o->type == NEM_T_JSON ? NEM_JSON_VALUE_MAX : NEM_VALUE_MAX;
        bool secret = o->flags & NEM_F_SECRET;
        char q[128], k_text[24];
        if (v->n > NEM_LIST_MAX) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s has %zu values, more than %d",
                           v->where, o->name, v->n, NEM_LIST_MAX);
            return false;
        }
        for (size_t k = 0; k < v->n; k++) {
            size_t len = strlen(v->v[k]), bad = 0;
            if (len > max) {
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                               "%s: option --%s: value%s is %zu bytes, more than the limit of %zu", v->where,
                               o->name, nth(v, k, k_text, sizeof k_text), len, max);
                return false;
            }
            if (!nem_utf8_valid(v->v[k], len, &bad)) {
                if (secret)
                    bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                                   "%s: option --%s: the value is not valid UTF-8 (byte %zu)", v->where, o->name,
                                   bad + 1);
                else
                    bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                                   "%s: option --%s: value%s '%s' is not valid UTF-8 (byte %zu)", v->where, o->name,
                                   nth(v, k, k_text, sizeof k_text), nem_text_quote(v->v[k], q, sizeof q), bad + 1);
                return false;
            }
            /* Names get the naming rule's message; an empty NEM_F_PROMPT secret (--db-password) means none. */
            if (len == 0 && !(o->flags & (NEM_F_PROMPT | NEM_F_EMPTY_NONE | NEM_F_DB | NEM_F_COLLECTION |
                                          NEM_F_BUCKET))) {
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s: value%s is empty",
                               v->where, o->name, nth(v, k, k_text, sizeof k_text));
                return false;
            }
        }
    }
    return true;
}

/* One integer against its option's range (the rule column of options.def). */
static bool range_ok(const nem_option_t *o, const char *where, int64_t iv, bson_error_t *err)
{
    const nem_range_t *r = &o->range;
    if ((iv >= r->min && iv <= r->max) || (r->has_off && iv == r->off))
        return true;
    if (r->has_off)
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                       "%s: option --%s must be %" PRId64 " (none) or at least %" PRId64 "%s%s, got %" PRId64, where,
                       o->name, r->off, r->min, r->unit ? " " : "", r->unit ? r->unit : "", iv);
    else if (r->span)
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                       "%s: option --%s must be %" PRId64 "-%" PRId64 ", got %" PRId64, where, o->name, r->min, r->max,
                       iv);
    else
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s must be %s %" PRId64 ", got %" PRId64,
                       where, o->name, iv < r->min ? ">=" : "<=", iv < r->min ? r->min : r->max, iv);
    return false;
}

bool nem_config_check_ranges(const nem_config_t *cfg, bson_error_t *err)
{
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_value_t *v = &cfg->values[i];
        if (!nem_options[i].range.set)
            continue;
        for (size_t k = 0; k < v->n; k++) {
            int64_t iv = 0;
            nem_parse_int(v->v[k], &iv);
            if (!range_ok(&nem_options[i], v->where, iv, err))
                return false;
        }
    }
    return true;
}

bool nem_config_check_choices(const nem_config_t *cfg, bson_error_t *err)
{
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_value_t *v = &cfg->values[i];
        if (!nem_options[i].choices)
            continue;
        for (size_t k = 0; k < v->n; k++) {
            char allowed[256], q[128];
            if (nem_option_choice((nem_opt_id_t)i, v->v[k]) >= 0 ||
                (!*v->v[k] && (nem_options[i].flags & NEM_F_EMPTY_NONE)))
                continue;
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s must be one of %s, got '%s'",
                           v->where, nem_options[i].name,
                           nem_option_choices_text((nem_opt_id_t)i, allowed, sizeof allowed),
                           nem_text_quote(v->v[k], q, sizeof q));
            return false;
        }
    }
    return true;
}

/* MongoDB forbids these in database names (the Windows set included, so a name works on every server). */
static const char db_forbidden[] = "/\\. \"$*<>:|?";

/* What every name must be: non-empty UTF-8. */
static bool name_text_ok(const char *name, size_t len, char *why, size_t why_len)
{
    size_t bad;
    if (len == 0) {
        snprintf(why, why_len, "is empty");
        return false;
    }
    if (!nem_utf8_valid(name, len, &bad)) {
        snprintf(why, why_len, "is not valid UTF-8 (byte %zu)", bad + 1);
        return false;
    }
    return true;
}

bool nem_db_name_ok(const char *name, bool allow_external, char *why, size_t why_len)
{
    size_t len = strlen(name);
    if (!name_text_ok(name, len, why, why_len))
        return false;
    if (len > NEM_DB_NAME_MAX) {
        snprintf(why, why_len, "is %zu bytes: MongoDB database names must be shorter than %d bytes", len,
                 NEM_DB_NAME_MAX + 1);
        return false;
    }
    if (allow_external && strcmp(name, "$external") == 0)
        return true;
    const char *p = strpbrk(name, db_forbidden);
    if (p) {
        snprintf(why, why_len, "contains '%c'%s: MongoDB database names cannot contain any of /\\. \"$*<>:|?", *p,
                 *p == ' ' ? " (a space)" : "");
        return false;
    }
    return true;
}

bool nem_collection_name_ok(const char *name, char *why, size_t why_len)
{
    size_t len = strlen(name);
    if (!name_text_ok(name, len, why, why_len))
        return false;
    if (strchr(name, '$')) {
        snprintf(why, why_len, "contains '$': MongoDB collection names cannot");
        return false;
    }
    if (strncmp(name, "system.", 7) == 0) {
        snprintf(why, why_len, "starts with 'system.', which MongoDB reserves for its own collections");
        return false;
    }
    if (name[0] == '.' || name[len - 1] == '.') {
        snprintf(why, why_len, "%s with '.': MongoDB collection names cannot", name[0] == '.' ? "starts" : "ends");
        return false;
    }
    if (strstr(name, "..")) {
        snprintf(why, why_len, "has an empty segment ('..'): MongoDB collection names cannot");
        return false;
    }
    return true;
}

/* Where a stage writes: not into nemesyst's own collections (a cleaner writing run records would forge them), and
 * not into a GridFS bucket's files or chunks collection (documents there break every model of the bucket). */
static bool output_name_ok(const char *name, bool bucket, char *why, size_t why_len)
{
    size_t len = strlen(name);
    if (strncmp(name, NEM_OWN_PREFIX, strlen(NEM_OWN_PREFIX)) == 0) {
        snprintf(why, why_len, "starts with '" NEM_OWN_PREFIX "', which nemesyst keeps for its own collections (run "
                 "records, metrics, lineage, checkpoints): choose another name");
        return false;
    }
    static const char *const parts[] = {".files", ".chunks"};
    for (size_t p = 0; p < 2; p++) {
        size_t n = strlen(parts[p]);
        if (len > n && strcmp(name + len - n, parts[p]) == 0) {
            snprintf(why, why_len, "is the %s collection of the GridFS bucket '%.*s'%s: choose another name",
                     parts[p] + 1, (int)(len - n), name,
                     bucket ? " (a bucket's name is its prefix)" : ", and documents written there break its models");
            return false;
        }
    }
    return true;
}

bool nem_config_check_names(const nem_config_t *cfg, bson_error_t *err)
{
    char why[160], q[128], k_text[24];
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_value_t *v = &cfg->values[i];
        if (!(nem_options[i].flags & NEM_F_DB))
            continue;
        for (size_t k = 0; k < v->n; k++)
            if (!nem_db_name_ok(v->v[k], i == NEM_OPT_DB_AUTHENTICATION_DATABASE, why, sizeof why)) {
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s: database name%s '%s' %s",
                               v->where, nem_options[i].name, nth(v, k, k_text, sizeof k_text),
                               nem_text_quote(v->v[k], q, sizeof q), why);
                return false;
            }
    }
    const char *db = nem_cfg_str(cfg, NEM_OPT_DB_NAME, 0);
    size_t db_len = db ? strlen(db) : 0;
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_value_t *v = &cfg->values[i];
        bool bucket = nem_options[i].flags & NEM_F_BUCKET;
        if (!(nem_options[i].flags & (NEM_F_COLLECTION | NEM_F_BUCKET)))
            continue;
        for (size_t k = 0; k < v->n; k++) {
            const char *kind = bucket ? "GridFS bucket name" : "collection name";
            if (!nem_collection_name_ok(v->v[k], why, sizeof why)) {
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s: %s%s '%s' %s", v->where,
                               nem_options[i].name, kind, nth(v, k, k_text, sizeof k_text),
                               nem_text_quote(v->v[k], q, sizeof q), why);
                return false;
            }
            if ((nem_options[i].flags & NEM_F_OUTPUT) && !output_name_ok(v->v[k], bucket, why, sizeof why)) {
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s: %s%s '%s' %s", v->where,
                               nem_options[i].name, kind, nth(v, k, k_text, sizeof k_text),
                               nem_text_quote(v->v[k], q, sizeof q), why);
                return false;
            }
            /* A bucket's collections are BUCKET.files and BUCKET.chunks; .chunks is the longer. */
            const char *suffix = bucket ? ".chunks" : "";
            size_t ns = db_len + 1 + strlen(v->v[k]) + strlen(suffix);
            if (ns > NEM_NAMESPACE_MAX) {
                char qdb[128];
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                               "%s: option --%s: %s%s '%s' in database '%s' makes a namespace of %zu bytes%s, more "
                               "than MongoDB's limit of %d", v->where, nem_options[i].name, kind,
                               nth(v, k, k_text, sizeof k_text), nem_text_quote(v->v[k], q, sizeof q),
                               nem_text_quote(db ? db : "", qdb, sizeof qdb), ns, bucket ? " (with .chunks)" : "",
                               NEM_NAMESPACE_MAX);
                return false;
            }
        }
    }
    return true;
}

bool nem_config_check_files(const nem_config_t *cfg, bson_error_t *err)
{
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_value_t *v = &cfg->values[i];
        if (!(nem_options[i].flags & NEM_F_FILE))
            continue;
        for (size_t k = 0; k < v->n; k++) {
            char what[96];
            struct stat st;
            char *path = nem_cfg_path(cfg, (nem_opt_id_t)i, k);
            snprintf(what, sizeof what, "--%s", nem_options[i].name);
            int fd = nem_open_regular_file(path, 0, what, &st, err);
            if (fd < 0) {
                nem_config_rewrap(err, v->where, NEM_CONFIG_EFILE);
                bson_free(path);
                return false;
            }
            close(fd);
            if (st.st_size == 0) {
                char q[128];
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: %s '%s' is empty", v->where, what,
                               nem_text_quote(path, q, sizeof q));
                bson_free(path);
                return false;
            }
            bson_free(path);
        }
    }
    return true;
}

bool nem_config_check_scripts(const nem_config_t *cfg, bson_error_t *err)
{
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_option_t *o = &nem_options[i];
        const nem_value_t *v = &cfg->values[i];
        if (!(o->flags & NEM_F_SCRIPT) || !nem_cfg_bool(cfg, o->stage))
            continue;
        if (v->n == 0) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE, "%s: --%s is given but no --%s script",
                           cfg->values[o->stage].where, nem_options[o->stage].name, o->name);
            return false;
        }
        for (size_t k = 0; k < v->n; k++) {
            struct stat st;
            if (stat(v->v[k], &st) != 0) {
                int e = errno;
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: --%s script '%s' %s (%s)", v->where,
                               o->name, v->v[k], e == ENOENT || e == ENOTDIR ? "does not exist" : "cannot be reached",
                               strerror(e));
                return false;
            }
            if (!S_ISREG(st.st_mode)) {
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE,
                               "%s: --%s script '%s' is %s, not a regular file", v->where, o->name, v->v[k],
                               nem_file_kind(st.st_mode));
                return false;
            }
            if (access(v->v[k], R_OK) != 0) {
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: --%s script '%s' cannot be read (%s)",
                               v->where, o->name, v->v[k], strerror(errno));
                return false;
            }
        }
    }
    return true;
}

/* ---- labels: --run-name and --tag (NEM_F_LABEL, NEM_F_TAG) ---- */

bool nem_label_ok(const char *s, size_t max, char *why, size_t why_len)
{
    size_t len = strlen(s), bad;
    if (len == 0) {
        snprintf(why, why_len, "is empty");
        return false;
    }
    if (len > max) {
        snprintf(why, why_len, "is %zu bytes, more than %zu", len, max);
        return false;
    }
    if (!nem_utf8_valid(s, len, &bad)) {
        snprintf(why, why_len, "is not valid UTF-8 (byte %zu)", bad + 1);
        return false;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            snprintf(why, why_len, "holds a control character (byte %zu)", i + 1);
            return false;
        }
    return true;
}

bool nem_tag_key_ok(const char *key, char *why, size_t why_len)
{
    if (!nem_label_ok(key, NEM_TAG_KEY_MAX, why, why_len))
        return false;
    if (strchr(key, '.')) {
        snprintf(why, why_len, "contains '.', which a stored key cannot");
        return false;
    }
    if (key[0] == '$') {
        snprintf(why, why_len, "starts with '$', which a stored key cannot");
        return false;
    }
    return true;
}

bool nem_tag_split(const char *tag, char *key, size_t key_len, const char **value, char *why, size_t why_len)
{
    const char *eq = strchr(tag, '=');
    char inner[96];
    if (!eq) {
        snprintf(why, why_len, "is not KEY=VALUE (no '=')");
        return false;
    }
    size_t n = (size_t)(eq - tag);
    if (n >= key_len) /* longer than any key may be: say so with its length */
        n = key_len - 1;
    memcpy(key, tag, n);
    key[n] = '\0';
    *value = eq + 1;
    if ((size_t)(eq - tag) > NEM_TAG_KEY_MAX) {
        snprintf(why, why_len, "has a key of %zu bytes, more than %d", (size_t)(eq - tag), NEM_TAG_KEY_MAX);
        return false;
    }
    if (!nem_tag_key_ok(key, inner, sizeof inner)) {
        snprintf(why, why_len, "has a key that %s", inner);
        return false;
    }
    if (!nem_label_ok(*value, NEM_TAG_VALUE_MAX, inner, sizeof inner)) {
        snprintf(why, why_len, "has a value that %s", inner);
        return false;
    }
    return true;
}

bool nem_config_check_labels(const nem_config_t *cfg, bson_error_t *err)
{
    char why[160], q[128], k_text[24];
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_option_t *o = &nem_options[i];
        const nem_value_t *v = &cfg->values[i];
        if (!(o->flags & (NEM_F_LABEL | NEM_F_TAG)))
            continue;
        for (size_t k = 0; k < v->n; k++) {
            char key[NEM_TAG_KEY_MAX + 1];
            const char *value;
            bool ok = (o->flags & NEM_F_TAG) ? nem_tag_split(v->v[k], key, sizeof key, &value, why, sizeof why)
                                             : nem_label_ok(v->v[k], NEM_LABEL_MAX, why, sizeof why);
            if (!ok) {
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s: %s%s '%s' %s", v->where,
                               o->name, (o->flags & NEM_F_TAG) ? "tag" : "value", nth(v, k, k_text, sizeof k_text),
                               nem_text_quote(v->v[k], q, sizeof q), why);
                return false;
            }
            if (!(o->flags & NEM_F_TAG))
                continue;
            for (size_t j = 0; j < k; j++) {
                size_t n = strlen(key);
                if (strncmp(v->v[j], key, n) == 0 && v->v[j][n] == '=') {
                    bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                                   "%s: option --%s: tag key '%s' is given twice (tags %zu and %zu): give each once",
                                   v->where, o->name, nem_text_quote(key, q, sizeof q), j + 1, k + 1);
                    return false;
                }
            }
        }
    }
    return true;
}
