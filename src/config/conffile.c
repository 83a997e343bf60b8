/* Config files in ConfigArgParse's format, and N_* environment variables.
 *   --key=value | key = value | key: value | key value | key   (a bare key sets a boolean true)
 *   # and ; start comment lines; " # ..." or " ; ..." after a value is a comment; [sections] are ignored.
 *   Lists: "[a, b]" or "a b". A `config = other.conf` line reads another file (relative to this one) once. */
#include "config-private.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool already_read(nem_config_t *layer, const char *real)
{
    for (size_t i = 0; i < layer->n_files; i++)
        if (strcmp(layer->files[i], real) == 0)
            return true;
    return false;
}

/* Cuts an inline comment: whitespace followed by # or ; ends the value. */
static void cut_comment(char *s)
{
    for (char *p = s; *p; p++)
        if ((*p == '#' || *p == ';') && p > s && (p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            return;
        }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static bool parse_line(nem_config_t *layer, char *line, const char *name, int lineno, const char *dir,
                       bson_error_t *err)
{
    char where[PATH_MAX + 32];
    char *s = trim(line);
    snprintf(where, sizeof where, "%s:%d", name, lineno);
    if (!*s || *s == '#' || *s == ';' || *s == '[')
        return true;
    cut_comment(s);
    s = trim(s);
    char *key = s;
    if (strncmp(key, "--", 2) == 0)
        key += 2;
    size_t klen = strcspn(key, ":= \t");
    char *rest = key + klen;
    bool has_value = *rest != '\0';
    if (has_value) {
        *rest++ = '\0';
        rest = trim(rest);
        if (*rest == '=' || *rest == ':')
            rest = trim(rest + 1);
    }
    if (!*key || strchr(key, '#') || strchr(key, ';')) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: malformed line '%s'", where, line);
        return false;
    }
    int id = nem_option_find(key);
    if (id < 0) {
        const char *sug = nem_option_suggest(key);
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: unknown option '%s'%s%s%s", where, key,
                       sug ? " (did you mean " : "", sug ? sug : "", sug ? "?)" : "");
        return false;
    }
    if (!has_value || !*rest) {
        if (nem_options[id].type != NEM_T_BOOL) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: option '%s' needs a value", where, key);
            return false;
        }
        rest = "true";
    }
    if (id == NEM_OPT_CONFIG) {
        nem_config_t tmp = {0};
        if (!nem_config_set_text(&tmp, NEM_OPT_CONFIG, rest, NEM_SRC_FILE, where, err))
            return false;
        bool ok = true;
        for (size_t i = 0; ok && i < tmp.values[NEM_OPT_CONFIG].n; i++) {
            const char *inc = tmp.values[NEM_OPT_CONFIG].v[i];
            char *path = inc[0] == '/' ? bson_strdup(inc) : bson_strdup_printf("%s/%s", dir, inc);
            ok = nem_config_parse_file(layer, path, err);
            bson_free(path);
        }
        for (size_t i = 0; i < tmp.values[NEM_OPT_CONFIG].n; i++)
            bson_free(tmp.values[NEM_OPT_CONFIG].v[i]);
        bson_free(tmp.values[NEM_OPT_CONFIG].v);
        bson_free(tmp.values[NEM_OPT_CONFIG].where);
        return ok;
    }
    return nem_config_set_text(layer, (nem_opt_id_t)id, rest, NEM_SRC_FILE, where, err);
}

static bool parse_text_in(nem_config_t *layer, const char *text, const char *name, const char *dir,
                          bson_error_t *err)
{
    char *copy = bson_strdup(text), *save = NULL, *p = copy;
    int lineno = 0;
    bool ok = true;
    /* strtok_r would skip empty lines and lose line numbers; walk by hand. */
    (void)save;
    while (ok && p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        ok = parse_line(layer, p, name, lineno, dir, err);
        p = nl ? nl + 1 : NULL;
    }
    bson_free(copy);
    return ok;
}

bool nem_config_parse_text(nem_config_t *layer, const char *text, const char *name, bson_error_t *err)
{
    return parse_text_in(layer, text, name, ".", err);
}

bool nem_config_parse_file(nem_config_t *layer, const char *path, bson_error_t *err)
{
    char real[PATH_MAX];
    FILE *f;
    char *text = NULL;
    size_t len = 0, cap = 0;
    bool ok;

    struct stat st;
    if (!realpath(path, real) || stat(real, &st) != 0 || !(f = fopen(real, "r"))) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "cannot read config file '%s': %s", path,
                       strerror(errno));
        return false;
    }
    if (S_ISDIR(st.st_mode)) {
        fclose(f);
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "cannot read config file '%s': it is a directory", path);
        return false;
    }
    if (already_read(layer, real)) {
        fclose(f);
        return true;
    }
    layer->files = bson_realloc(layer->files, (layer->n_files + 1) * sizeof(char *));
    layer->files[layer->n_files++] = bson_strdup(real);
    for (;;) {
        if (len + 4096 + 1 > cap)
            text = bson_realloc(text, cap = cap * 2 + 4096 + 1);
        size_t r = fread(text + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0)
            break;
    }
    bool read_err = ferror(f);
    fclose(f);
    text[len] = '\0';
    if (read_err || memchr(text, '\0', len)) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "cannot read config file '%s': %s", path,
                       read_err ? "read error" : "binary data in a text file");
        bson_free(text);
        return false;
    }
    char dirbuf[PATH_MAX];
    bson_strncpy(dirbuf, real, sizeof dirbuf);
    ok = parse_text_in(layer, text, path, dirname(dirbuf), err);
    bson_free(text);
    return ok;
}

bool nem_config_parse_env(nem_config_t *layer, char **envp, bson_error_t *err)
{
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        char name[96];
        nem_option_env_name((nem_opt_id_t)i, name, sizeof name);
        size_t nl = strlen(name);
        for (char **e = envp; e && *e; e++) {
            if (strncmp(*e, name, nl) != 0 || (*e)[nl] != '=')
                continue;
            char where[128];
            snprintf(where, sizeof where, "env %s", name);
            const char *val = *e + nl + 1;
            if (!*val && nem_options[i].type == NEM_T_BOOL)
                val = "true";
            if (!nem_config_set_text(layer, (nem_opt_id_t)i, val, NEM_SRC_ENV, where, err))
                return false;
        }
    }
    return true;
}
