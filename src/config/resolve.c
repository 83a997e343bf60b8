/* Resolving the configuration: defaults, config files, N_* variables, the command line and a --sweep's set, in that
 * order of precedence (each source's parser fills a layer of its own), then every check a resolved configuration must pass
 * (check.c). */
#include "config-private.h"

#include <glob.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/text.h"

extern char **environ;

bool nem_config_validate(const nem_config_t *cfg, bson_error_t *err)
{
    if (!nem_config_check_values(cfg, err))
        return false;
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_option_t *o = &nem_options[i];
        const nem_value_t *v = &cfg->values[i];
        for (size_t k = 0; k < v->n; k++) {
            int64_t iv;
            bool bv;
            if (o->type == NEM_T_INT && !nem_parse_int(v->v[k], &iv)) {
                char q[128];
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                               "%s: option --%s expects an integer, got '%s'", v->where, o->name,
                               nem_text_quote(v->v[k], q, sizeof q));
                return false;
            }
            if (o->type == NEM_T_BOOL && !nem_parse_bool(v->v[k], &bv)) {
                char q[128];
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                               "%s: option --%s expects true/false, got '%s'", v->where, o->name,
                               nem_text_quote(v->v[k], q, sizeof q));
                return false;
            }
        }
    }
    if (!nem_config_check_ranges(cfg, err))
        return false;
    int64_t staleness = nem_cfg_int(cfg, NEM_OPT_DB_REPLICA_MAX_STALENESS, 0);
    const char *where = cfg->values[NEM_OPT_DB_REPLICA_MAX_STALENESS].where;
    const char *preference = nem_cfg_str(cfg, NEM_OPT_DB_REPLICA_READ_PREFERENCE, 0);
    if (nem_cfg_is_set(cfg, NEM_OPT_DB_REPLICA_MAX_STALENESS) && staleness != -1 && preference &&
        strcmp(preference, "primary") == 0) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                       "%s: option --db-replica-max-staleness cannot be used with --db-replica-read-preference primary",
                       where);
        return false;
    }
    /* Two sources of one password at the same level (both on the command line, both in the environment, both in
     * config files): neither can win by precedence, so say so. At different levels the higher one wins, as for
     * every option (nem_config_resolve_password). */
    const char *pw = nem_cfg_str(cfg, NEM_OPT_DB_PASSWORD, 0);
    bool pw_bool;
    if (pw && *pw && !nem_parse_bool(pw, &pw_bool) && nem_cfg_is_set(cfg, NEM_OPT_DB_PASSWORD_FILE) &&
        cfg->values[NEM_OPT_DB_PASSWORD].src == cfg->values[NEM_OPT_DB_PASSWORD_FILE].src) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE,
                       "%s: --db-password gives a password and --db-password-file (%s) another: keep one",
                       cfg->values[NEM_OPT_DB_PASSWORD].where, cfg->values[NEM_OPT_DB_PASSWORD_FILE].where);
        return false;
    }
    if (!nem_config_check_choices(cfg, err))
        return false;
    if (!nem_config_check_names(cfg, err))
        return false;
    if (!nem_config_check_labels(cfg, err))
        return false;
    size_t nd = nem_cfg_count(cfg, NEM_OPT_DL_DATA_PIPELINE);
    for (size_t k = 0; k < nd + nem_cfg_count(cfg, NEM_OPT_DL_INPUT_MODEL_PIPELINE); k++) {
        nem_opt_id_t id = k < nd ? NEM_OPT_DL_DATA_PIPELINE : NEM_OPT_DL_INPUT_MODEL_PIPELINE;
        bson_t doc;
        if (!nem_cfg_json(cfg, id, k < nd ? k : k - nd, &doc, err))
            return false;
        bson_destroy(&doc);
    }
    return true;
}

/* Default config files: /etc first, then ./nemesyst.d, so ./nemesyst.d wins over /etc and -c files win over
 * both (2.0.6 lists ./nemesyst.d as the higher priority). NEMESYST_SYSCONFDIR overrides /etc for tests. */
static void default_config_files(char ***out, size_t *n)
{
    const char *sysconf = getenv("NEMESYST_SYSCONFDIR");
    char pattern[PATH_MAX];
    const char *patterns[2];
    snprintf(pattern, sizeof pattern, "%s/nemesyst/nemesyst.d/*.conf", sysconf ? sysconf : "/etc");
    patterns[0] = pattern;
    patterns[1] = "./nemesyst.d/*.conf";
    for (int p = 0; p < 2; p++) {
        glob_t g;
        if (glob(patterns[p], 0, NULL, &g) == 0) {
            for (size_t i = 0; i < g.gl_pathc; i++) {
                *out = bson_realloc(*out, (*n + 1) * sizeof(char *));
                (*out)[(*n)++] = bson_strdup(g.gl_pathv[i]);
            }
        }
        globfree(&g);
    }
}

void nem_config_merge(nem_config_t *dst, const nem_config_t *layer)
{
    for (int i = 0; i < NEM_OPT__COUNT; i++)
        if (layer->values[i].src != NEM_SRC_UNSET)
            nem_value_copy(&dst->values[i], &layer->values[i]);
}

static bool apply_defaults(nem_config_t *cfg, bson_error_t *err)
{
    for (int i = 0; i < NEM_OPT__COUNT; i++)
        if (nem_options[i].defval &&
            !nem_config_set_text(cfg, (nem_opt_id_t)i, nem_options[i].defval, NEM_SRC_DEFAULT, "default", err))
            return false;
    return true;
}

/* 2.0.6 tests these options with "if value", so an empty value at any level means none and overrides a lower
 * level's value: an option without a default becomes unset (its source kept for --print-config); one with a default
 * keeps '' (--db-authentication '' turns authentication off). */
void nem_config_empty_means_none(nem_config_t *cfg)
{
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        nem_value_t *v = &cfg->values[i];
        if (!(nem_options[i].flags & NEM_F_EMPTY_NONE) || nem_options[i].defval || v->n != 1 || *v->v[0])
            continue;
        bson_free(v->v[0]);
        v->v[0] = NULL;
        v->n = 0;
    }
}

bool nem_config_resolve(nem_config_t *cfg, int argc, char **argv, bson_error_t *err)
{
    nem_config_t *cli = nem_config_new(), *env = nem_config_new(), *files = nem_config_new();
    char **paths = NULL;
    size_t npaths = 0;
    bool ok = false;

    if (!apply_defaults(cfg, err) || !nem_config_parse_cli(cli, argc, argv, err))
        goto done;
    cfg->help = cli->help;
    cfg->version = cli->version;
    if (cfg->help || cfg->version) {
        ok = true;
        goto done;
    }
    if (!nem_config_parse_env(env, environ, err))
        goto done;

    default_config_files(&paths, &npaths);
    /* -c files: from the command line, else from N_CONFIG. */
    const nem_value_t *extra = cli->values[NEM_OPT_CONFIG].n ? &cli->values[NEM_OPT_CONFIG]
                                                             : &env->values[NEM_OPT_CONFIG];
    for (size_t i = 0; i < extra->n; i++) {
        paths = bson_realloc(paths, (npaths + 1) * sizeof(char *));
        paths[npaths++] = bson_strdup(extra->v[i]);
    }
    for (size_t i = 0; i < npaths; i++)
        if (!nem_config_parse_file(files, paths[i], err))
            goto done;
    cfg->files = files->files;
    cfg->n_files = files->n_files;
    files->files = NULL;
    files->n_files = 0;

    nem_config_merge(cfg, files);
    nem_config_merge(cfg, env);
    nem_config_merge(cfg, cli);
    if (!nem_config_apply_sweep(cfg, err)) /* the highest layer: --sweep's set */
        goto done;
    nem_config_empty_means_none(cfg);
    ok = nem_config_validate(cfg, err);
done:
    for (size_t i = 0; i < npaths; i++)
        bson_free(paths[i]);
    bson_free(paths);
    nem_config_destroy(cli);
    nem_config_destroy(env);
    nem_config_destroy(files);
    return ok;
}
