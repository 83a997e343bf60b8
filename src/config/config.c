/* The configuration's values: layers, accessors, printing and BSON round trip (resolve.c puts the layers together). */
#include "config-private.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/text.h"

static void value_clear(nem_value_t *v)
{
    for (size_t i = 0; i < v->n; i++)
        bson_free(v->v[i]);
    bson_free(v->v);
    bson_free(v->where);
    memset(v, 0, sizeof *v);
}

void nem_value_copy(nem_value_t *dst, const nem_value_t *src)
{
    value_clear(dst);
    dst->v = bson_malloc0((src->n + 1) * sizeof(char *));
    for (size_t i = 0; i < src->n; i++)
        dst->v[i] = bson_strdup(src->v[i]);
    dst->n = src->n;
    dst->src = src->src;
    dst->where = bson_strdup(src->where);
}


void nem_value_set(nem_value_t *v, char **items, size_t n, nem_source_t src, const char *where)
{
    value_clear(v);
    v->v = bson_malloc0((n + 1) * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        v->v[i] = bson_strdup(items[i]);
    v->n = n;
    v->src = src;
    v->where = bson_strdup(where);
}


void nem_value_append(nem_value_t *v, const char *item)
{
    v->v = bson_realloc(v->v, (v->n + 2) * sizeof(char *));
    v->v[v->n++] = bson_strdup(item);
    v->v[v->n] = NULL;
}

nem_config_t *nem_config_new(void)
{
    return bson_malloc0(sizeof(nem_config_t));
}

void nem_config_destroy(nem_config_t *cfg)
{
    if (!cfg)
        return;
    for (int i = 0; i < NEM_OPT__COUNT; i++)
        value_clear(&cfg->values[i]);
    for (size_t i = 0; i < cfg->n_files; i++)
        bson_free(cfg->files[i]);
    bson_free(cfg->files);
    if (cfg->password) {
        bson_zero_free(cfg->password, strlen(cfg->password));
    }
    bson_free(cfg);
}

bool nem_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "1", "on"};
    static const char *const no[] = {"false", "no", "0", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0)
            return *out = true, true;
        if (strcasecmp(text, no[i]) == 0)
            return *out = false, true;
    }
    return false;
}

bool nem_parse_int(const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0')
        return false;
    *out = v;
    return true;
}

static char *strip(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        s[n - 1] = '\0';
        s++;
    }
    return s;
}

/* Splits list text: "[a, b]" by commas, otherwise by whitespace. JSON options keep text that is whole JSON. */
static size_t split_list(const nem_option_t *o, const char *text, char ***out)
{
    char *copy = bson_strdup(text), *s = strip(copy);
    size_t n = 0, cap = 4;
    char **items = bson_malloc0(cap * sizeof(char *));
    bson_t probe;
    bson_error_t ignored;
    bool whole_json = false;

    if (o->type == NEM_T_JSON && (*s == '{' || *s == '[')) {
        whole_json = bson_init_from_json(&probe, s, -1, &ignored);
        if (whole_json)
            bson_destroy(&probe);
    }
    if (whole_json || !(o->flags & NEM_F_LIST)) {
        items[n++] = bson_strdup(s);
    } else {
        bool bracket = s[0] == '[' && s[strlen(s) - 1] == ']';
        char *p = s;
        if (bracket) {
            s[strlen(s) - 1] = '\0';
            p = s + 1;
        }
        char *save = NULL;
        for (char *tok = strtok_r(p, bracket ? "," : " \t", &save); tok; tok = strtok_r(NULL, bracket ? "," : " \t", &save)) {
            char *t = strip(tok);
            if (!*t)
                continue;
            if (n + 1 >= cap)
                items = bson_realloc(items, (cap *= 2) * sizeof(char *));
            items[n++] = bson_strdup(t);
        }
    }
    items[n] = NULL;
    bson_free(copy);
    *out = items;
    return n;
}

static void free_items(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        bson_free(items[i]);
    bson_free(items);
}

bool nem_config_set_text(nem_config_t *layer, nem_opt_id_t id, const char *text, nem_source_t src,
                         const char *where, bson_error_t *err)
{
    const nem_option_t *o = &nem_options[id];
    char **items;
    size_t n;

    if (o->type == NEM_T_BOOL) {
        bool b;
        if (!nem_parse_bool(text, &b)) {
            char q[128];
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                           "%s: option --%s expects true/false/yes/no/1/0, got '%s'", where, o->name,
                           nem_text_quote(text, q, sizeof q));
            return false;
        }
        char *v = (char *)(b ? "true" : "false");
        nem_value_set(&layer->values[id], &v, 1, src, where);
        return true;
    }
    if ((o->flags & NEM_F_LIST) && o->type != NEM_T_JSON) {
        /* "[a, b" is a list whose end was lost (a wrapped line, a missing bracket), not the names "[a," and "b". */
        char *copy = bson_strdup(text), *s = strip(copy);
        bool open_only = s[0] == '[' && s[strlen(s) - 1] != ']';
        bson_free(copy);
        if (open_only) {
            char q[128];
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s: list '%s' has no closing ']'",
                           where, o->name, nem_text_quote(text, q, sizeof q));
            return false;
        }
    }
    n = split_list(o, text, &items);
    if (n == 0 && !(o->flags & NEM_F_PROMPT)) {
        free_items(items, n);
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s needs a value", where, o->name);
        return false;
    }
    nem_value_set(&layer->values[id], items, n, src, where);
    free_items(items, n);
    return true;
}

size_t nem_cfg_count(const nem_config_t *cfg, nem_opt_id_t id)
{
    return cfg->values[id].n;
}

bool nem_cfg_is_set(const nem_config_t *cfg, nem_opt_id_t id)
{
    return cfg->values[id].n > 0;
}

bool nem_cfg_auth_off(const nem_config_t *cfg)
{
    const char *mech = nem_cfg_str(cfg, NEM_OPT_DB_AUTHENTICATION, 0);
    return mech && !*mech;
}

const char *nem_cfg_str(const nem_config_t *cfg, nem_opt_id_t id, size_t idx)
{
    const nem_value_t *v = &cfg->values[id];
    if (v->n == 0)
        return NULL;
    return v->v[idx < v->n ? idx : v->n - 1];
}

int64_t nem_cfg_int(const nem_config_t *cfg, nem_opt_id_t id, size_t idx)
{
    int64_t out = 0;
    const char *s = nem_cfg_str(cfg, id, idx);
    if (s)
        nem_parse_int(s, &out);
    return out;
}

bool nem_cfg_bool(const nem_config_t *cfg, nem_opt_id_t id)
{
    bool out = false;
    const char *s = nem_cfg_str(cfg, id, 0);
    if (s)
        nem_parse_bool(s, &out);
    return out;
}

/* The one place a leading ~ is expanded: $HOME, else the user's home directory from the password database; with
 * neither the path stays as given, so the error that follows names it as the user wrote it. */
char *nem_cfg_path(const nem_config_t *cfg, nem_opt_id_t id, size_t idx)
{
    const char *s = nem_cfg_str(cfg, id, idx);
    if (!s)
        return NULL;
    if (s[0] == '~' && (s[1] == '/' || s[1] == '\0')) {
        const char *home = getenv("HOME");
        struct passwd *pw = home && *home ? NULL : getpwuid(getuid());
        if (pw && pw->pw_dir && *pw->pw_dir)
            home = pw->pw_dir;
        if (home && *home)
            return bson_strdup_printf("%s%s", home, s + 1);
    }
    return bson_strdup(s);
}

bool nem_cfg_json(const nem_config_t *cfg, nem_opt_id_t id, size_t idx, bson_t *out, bson_error_t *err)
{
    const char *s = nem_cfg_str(cfg, id, idx);
    const nem_value_t *v = &cfg->values[id];
    bson_error_t jerr;
    if (!s) {
        bson_init(out);
        return true;
    }
    const char *p = s;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '{' || *p == '[') {
        if (bson_init_from_json(out, p, -1, &jerr))
            return true;
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s holds invalid JSON: %s",
                       v->where, nem_options[id].name, jerr.message);
        return false;
    }
    /* A path: read it as a regular file of bounded size (a FIFO or a device would block or never end). */
    char *text = NULL;
    size_t len = 0;
    bson_error_t ferr;
    char what[96];
    snprintf(what, sizeof what, "--%s file", nem_options[id].name);
    if (!nem_read_regular_file(s, NEM_JSON_VALUE_MAX, what, &text, &len, &ferr)) {
        if (ferr.code == ENOENT || ferr.code == ENOTDIR)
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE,
                           "%s: option --%s: '%s' is neither inline JSON nor a readable file (%s)", v->where,
                           nem_options[id].name, s, strerror((int)ferr.code));
        else
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: %s", v->where, ferr.message);
        return false;
    }
    const char *why = NULL;
    size_t bad = 0;
    if (memchr(text, '\0', len))
        why = "holds a NUL byte (is it binary?)";
    else if (!nem_utf8_valid(text, len, &bad))
        why = "is not valid UTF-8";
    p = text;
    while (!why && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (!why && *p != '{' && *p != '[')
        why = *p ? "holds no JSON array or object" : "is empty";
    if (why) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s: file '%s' %s", v->where,
                       nem_options[id].name, s, why);
        bson_free(text);
        return false;
    }
    bool ok = bson_init_from_json(out, text, (ssize_t)len, &jerr);
    bson_free(text);
    if (!ok) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s: file '%s' holds no valid JSON: %s",
                       v->where, nem_options[id].name, s, jerr.message);
        return false;
    }
    return true;
}

void nem_config_print(const nem_config_t *cfg, FILE *out)
{
    for (size_t i = 0; i < cfg->n_files; i++)
        fprintf(out, "# config file: %s\n", cfg->files[i]);
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_option_t *o = &nem_options[i];
        const nem_value_t *v = &cfg->values[i];
        fprintf(out, "%-38s ", o->name);
        if (v->n == 0) {
            fputs(v->src > NEM_SRC_DEFAULT ? "(none: given empty)" : "(unset)", out);
        } else if (o->flags & NEM_F_SECRET) {
            /* A NEM_F_PROMPT secret's true/false means "prompt"/"none", not a secret; any other value is masked. */
            bool b;
            fprintf(out, "%s", (o->flags & NEM_F_PROMPT) && nem_parse_bool(v->v[0], &b) ? v->v[0] : "********");
        } else if (o->flags & NEM_F_LIST) {
            fputc('[', out);
            for (size_t k = 0; k < v->n; k++)
                fprintf(out, "%s%s", k ? ", " : "", v->v[k]);
            fputc(']', out);
        } else {
            fprintf(out, "%s", *v->v[0] ? v->v[0] : "'' (none)");
        }
        fprintf(out, "  # %s\n", v->n || v->src > NEM_SRC_DEFAULT ? v->where : "default");
    }
}

void nem_config_append_typed(bson_t *doc, const char *key, const nem_option_t *o, const char *text)
{
    int64_t iv;
    bool bv;
    if (o->type == NEM_T_INT && nem_parse_int(text, &iv))
        BSON_APPEND_INT64(doc, key, iv);
    else if (o->type == NEM_T_BOOL && nem_parse_bool(text, &bv))
        BSON_APPEND_BOOL(doc, key, bv);
    else
        BSON_APPEND_UTF8(doc, key, text);
}

bool nem_option_is_per_script(nem_opt_id_t id)
{
    const nem_option_t *o = &nem_options[id];
    return (o->flags & NEM_F_LIST) && !(o->flags & NEM_F_SCRIPT) && id != NEM_OPT_DATA &&
           (o->group == NEM_G_DATA || o->group == NEM_G_DL || o->group == NEM_G_INFER);
}

static void config_to_bson(const nem_config_t *cfg, bool with_secrets, size_t pad, bson_t *out);

void nem_config_to_bson(const nem_config_t *cfg, bool with_secrets, bson_t *out)
{
    config_to_bson(cfg, with_secrets, 0, out);
}

void nem_config_to_bson_for_scripts(const nem_config_t *cfg, size_t n_scripts, bson_t *out)
{
    config_to_bson(cfg, false, n_scripts, out);
}

static void config_to_bson(const nem_config_t *cfg, bool with_secrets, size_t pad, bson_t *out)
{
    bson_init(out);
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_option_t *o = &nem_options[i];
        const nem_value_t *v = &cfg->values[i];
        if (v->n == 0 || ((o->flags & NEM_F_SECRET) && !with_secrets))
            continue;
        if (o->flags & NEM_F_LIST) {
            bson_t arr;
            char key[16];
            const char *k;
            size_t n = v->n;
            if (nem_option_is_per_script((nem_opt_id_t)i) && pad > n)
                n = pad;
            BSON_APPEND_ARRAY_BEGIN(out, o->name, &arr);
            for (size_t j = 0; j < n; j++) {
                bson_uint32_to_string((uint32_t)j, &k, key, sizeof key);
                nem_config_append_typed(&arr, k, o, v->v[j < v->n ? j : v->n - 1]);
            }
            bson_append_array_end(out, &arr);
        } else {
            nem_config_append_typed(out, o->name, o, v->v[0]);
        }
    }
    if (with_secrets) {
        /* The broadcast form also carries where each value came from, so every rank can tell a default. */
        bson_t where;
        BSON_APPEND_DOCUMENT_BEGIN(out, "_where", &where);
        for (int i = 0; i < NEM_OPT__COUNT; i++)
            if (cfg->values[i].n)
                BSON_APPEND_UTF8(&where, nem_options[i].name, cfg->values[i].where);
        bson_append_document_end(out, &where);
        if (cfg->password)
            BSON_APPEND_UTF8(out, "_password", cfg->password);
    }
}

static nem_source_t source_of(const char *where)
{
    if (strcmp(where, "default") == 0)
        return NEM_SRC_DEFAULT;
    if (strcmp(where, "cli") == 0)
        return NEM_SRC_CLI;
    if (strncmp(where, "env ", 4) == 0)
        return NEM_SRC_ENV;
    if (strncmp(where, "sweep ", 6) == 0)
        return NEM_SRC_SWEEP;
    return NEM_SRC_FILE;
}

static void apply_where(nem_config_t *cfg, const bson_iter_t *it)
{
    bson_iter_t sub;
    bson_iter_recurse(it, &sub);
    while (bson_iter_next(&sub)) {
        int id = nem_option_find(bson_iter_key(&sub));
        if (id < 0 || !BSON_ITER_HOLDS_UTF8(&sub))
            continue;
        const char *w = bson_iter_utf8(&sub, NULL);
        bson_free(cfg->values[id].where);
        cfg->values[id].where = bson_strdup(w);
        cfg->values[id].src = source_of(w);
    }
}

static char *iter_text(const bson_iter_t *it)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8: return bson_strdup(bson_iter_utf8(it, NULL));
    case BSON_TYPE_INT64: return bson_strdup_printf("%" PRId64, bson_iter_int64(it));
    case BSON_TYPE_INT32: return bson_strdup_printf("%d", bson_iter_int32(it));
    case BSON_TYPE_BOOL: return bson_strdup(bson_iter_bool(it) ? "true" : "false");
    default: return NULL;
    }
}

bool nem_config_from_bson(nem_config_t *cfg, const bson_t *doc, bson_error_t *err)
{
    bson_iter_t it, where_it;
    bool has_where = false;
    if (!bson_iter_init(&it, doc))
        return false;
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (strcmp(key, "_password") == 0) {
            cfg->password = bson_strdup(bson_iter_utf8(&it, NULL));
            continue;
        }
        if (strcmp(key, "_where") == 0) {
            where_it = it;
            has_where = true;
            continue;
        }
        int id = nem_option_find(key);
        if (id < 0) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "broadcast configuration has unknown key '%s'", key);
            return false;
        }
        nem_value_t *v = &cfg->values[id];
        value_clear(v);
        v->src = NEM_SRC_CLI;
        v->where = bson_strdup("rank 0");
        v->v = bson_malloc0(sizeof(char *));
        if (BSON_ITER_HOLDS_ARRAY(&it)) {
            bson_iter_t sub;
            bson_iter_recurse(&it, &sub);
            while (bson_iter_next(&sub)) {
                char *t = iter_text(&sub);
                nem_value_append(v, t ? t : "");
                bson_free(t);
            }
        } else {
            char *t = iter_text(&it);
            nem_value_append(v, t ? t : "");
            bson_free(t);
        }
    }
    if (has_where)
        apply_where(cfg, &where_it);
    return true;
}

/* An error of a file or value read for the configuration, prefixed with where it was read. */
void nem_config_rewrap(bson_error_t *err, const char *where, uint32_t code)
{
    char msg[sizeof err->message];
    bson_strncpy(msg, err->message, sizeof msg);
    if (where)
        bson_set_error(err, NEM_ERROR_CONFIG, code, "%s: %s", where, msg);
    else
        bson_set_error(err, NEM_ERROR_CONFIG, code, "%s", msg);
}
