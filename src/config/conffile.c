/* Config files in ConfigArgParse's format, and N_* environment variables.
 *   --key=value | key = value | key: value | key value | key   (a bare key sets a boolean true)
 *   # and ; start comment lines; " # ..." or " ; ..." after a value is a comment; [sections] are ignored.
 *   Lists: "[a, b]" or "a b". A `config = other.conf` line reads another file (relative to this one) once; includes
 *   nest at most NEM_CONFIG_DEPTH_MAX deep. A file is UTF-8 text of at most NEM_CONFIG_FILE_MAX bytes (a leading
 *   byte order mark and CRLF line ends are accepted), and a regular file: never a FIFO, a device or a directory. */
#include "config-private.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "util/text.h"

static bool parse_file_at(nem_config_t *layer, const char *path, int depth, const char *from, bson_error_t *err);

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

static bool parse_line(nem_config_t *layer, char *line, const char *name, int lineno, const char *dir, int depth,
                       bson_error_t *err)
{
    char where[PATH_MAX + 32];
    char *s = trim(line);
    snprintf(where, sizeof where, "%s:%d", name, lineno);
    if (!*s || *s == '#' || *s == ';' || *s == '[')
        return true;
    cut_comment(s);
    s = trim(s);
    char shown[128]; /* the line as written, for a message: parsing cuts it up */
    nem_text_quote(s, shown, sizeof shown);
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
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: malformed line '%s'", where, shown);
        return false;
    }
    int id = nem_option_find(key);
    if (id < 0) {
        const char *sug = nem_option_suggest(key);
        char q[128];
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: unknown option '%s'%s%s%s", where,
                       nem_text_quote(key, q, sizeof q), sug ? " (did you mean " : "", sug ? sug : "",
                       sug ? "?)" : "");
        return false;
    }
    /* "key =" gives an empty value to the options where 2.0.6 reads empty as none ("db-authentication ="). */
    bool empty_ok = has_value && (nem_options[id].flags & NEM_F_EMPTY_NONE);
    if (!has_value || (!*rest && !empty_ok)) {
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
            ok = parse_file_at(layer, path, depth + 1, where, err);
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

static bool parse_text_in(nem_config_t *layer, const char *text, size_t len, const char *name, const char *dir,
                          int depth, bson_error_t *err)
{
    char *copy, *p;
    int lineno = 1;
    bool ok = true;
    const char *nul = memchr(text, '\0', len);

    if (nul) {
        for (const char *c = text; c < nul; c++)
            lineno += *c == '\n';
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s:%d: NUL byte in a config file (is it binary?)",
                       name, lineno);
        return false;
    }
    /* A byte order mark, as editors on Windows write one. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        text += 3, len -= 3;
    copy = bson_malloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = '\0';
    p = copy;
    lineno = 0;
    /* strtok_r would skip empty lines and lose line numbers; walk by hand. */
    while (ok && p) {
        char *nl = strchr(p, '\n');
        size_t n, bad;
        if (nl)
            *nl = '\0';
        lineno++;
        n = strlen(p);
        if (n && p[n - 1] == '\r')
            p[--n] = '\0'; /* CRLF */
        if (!nem_utf8_valid(p, n, &bad)) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s:%d: invalid UTF-8 (byte %zu of the line)", name,
                           lineno, bad + 1);
            ok = false;
            break;
        }
        ok = parse_line(layer, p, name, lineno, dir, depth, err);
        p = nl ? nl + 1 : NULL;
    }
    bson_free(copy);
    return ok;
}

bool nem_config_parse_text(nem_config_t *layer, const char *text, const char *name, bson_error_t *err)
{
    return parse_text_in(layer, text, strlen(text), name, ".", 1, err);
}

/* One config file at include depth `depth` (a -c or nemesyst.d file is 1); from is the FILE:LINE that includes it,
 * or NULL. A file already read (by real path) is skipped, so loops read each file once. */
static bool parse_file_at(nem_config_t *layer, const char *path, int depth, const char *from, bson_error_t *err)
{
    char real[PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    bool ok;

    if (depth > NEM_CONFIG_DEPTH_MAX) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE,
                       "%s: config file '%s' would be included at depth %d, deeper than the limit of %d", from, path,
                       depth, NEM_CONFIG_DEPTH_MAX);
        return false;
    }
    if (!realpath(path, real)) {
        int e = errno;
        if (from)
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: cannot read config file '%s': %s", from, path,
                           strerror(e));
        else
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "cannot read config file '%s': %s", path,
                           strerror(e));
        return false;
    }
    if (already_read(layer, real))
        return true;
    if (!nem_read_regular_file(path, NEM_CONFIG_FILE_MAX, "config file", &text, &len, err)) {
        nem_config_rewrap(err, from, NEM_CONFIG_EFILE);
        return false;
    }
    layer->files = bson_realloc(layer->files, (layer->n_files + 1) * sizeof(char *));
    layer->files[layer->n_files++] = bson_strdup(real);
    char dirbuf[PATH_MAX];
    bson_strncpy(dirbuf, real, sizeof dirbuf);
    ok = parse_text_in(layer, text, len, path, dirname(dirbuf), depth, err);
    bson_free(text);
    return ok;
}

bool nem_config_parse_file(nem_config_t *layer, const char *path, bson_error_t *err)
{
    return parse_file_at(layer, path, 1, NULL, err);
}
