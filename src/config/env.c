/* Everything nemesyst reads from or withholds in the environment: the N_* variables (an option each, and those that
 * name none), the launcher's variables, and what no child process may inherit. */
#include "config/env.h"

#include <stdio.h>
#include <string.h>

#include "config/config-private.h"
#include "config/options.h"

extern char **environ;

/* The variables nemesyst sets for each stage script (src/stage/runner/runner.h): a value of the user's under one of these
 * names would be stale or, for a descriptor number, wrong, so it is replaced or removed. Every other NEMESYST_*
 * variable is the user's own and passes through, as in 2.0.6. */
static const char *const own_names[] = {
    "NEMESYST_STAGE", "NEMESYST_POSITION", "NEMESYST_RANK", "NEMESYST_RUN_ID", "NEMESYST_SCRIPT",
    "NEMESYST_ENTRY_POINT", "NEMESYST_DB_URI", "NEMESYST_DB_NAME", "NEMESYST_ARGS_FILE", "NEMESYST_WORKDIR",
    "NEMESYST_TIMEOUT", "NEMESYST_INPUT_MODEL", "NEMESYST_INPUT_MODEL_ID", "NEMESYST_ITEM_FD",
    "NEMESYST_PASSWORD_FD", "NEMESYST_TLS_KEY_PASSWORD_FD", "NEMESYST_GROUP_RANK", "NEMESYST_GROUP_SIZE",
    "NEMESYST_GROUP_FD", "NEMESYST_SHARD", "NEMESYST_SHARD_COLLECTION", "NEMESYST_ATTEMPT", "NEMESYST_HOST",
    "NEMESYST_STOP_FILE", "NEMESYST_CHECKPOINT",
};

/* Launcher variables that copy the command line: a secret given there would reach every child. */
static const char *const launcher_argv_names[] = {"OMPI_ARGV"};

static bool is_named(const char *entry, const char *name)
{
    size_t n = strlen(name);
    return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

bool nem_env_withheld(const char *entry)
{
    for (size_t i = 0; i < sizeof own_names / sizeof *own_names; i++)
        if (is_named(entry, own_names[i]))
            return true;
    for (size_t i = 0; i < sizeof launcher_argv_names / sizeof *launcher_argv_names; i++)
        if (is_named(entry, launcher_argv_names[i]))
            return true;
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        char name[128];
        if (!(nem_options[i].flags & NEM_F_SECRET))
            continue;
        nem_option_env_name((nem_opt_id_t)i, name, sizeof name);
        if (is_named(entry, name))
            return true;
    }
    return false;
}

bool nem_env_launched(void)
{
    for (char **e = environ; e && *e; e++)
        if (is_named(*e, "OMPI_COMM_WORLD_SIZE") || is_named(*e, "PMIX_RANK") || is_named(*e, "PMI_RANK") ||
            is_named(*e, "SLURM_STEP_ID"))
            return true;
    return false;
}

size_t nem_env_scrub_launcher_argv(int argc, char **argv)
{
    size_t scrubbed = 0;
    for (char **e = environ; e && *e; e++) {
        for (size_t k = 0; k < sizeof launcher_argv_names / sizeof *launcher_argv_names; k++) {
            const char *name = launcher_argv_names[k];
            if (!is_named(*e, name))
                continue;
            char *value = *e + strlen(name) + 1;
            size_t len = strlen(value), pos = 0;
            /* The launcher joined argv[1..] with spaces: write the (scrubbed) argv back over it, in place, so the
             * process's own /proc/PID/environ no longer shows the secret either. Should the layout differ, blank
             * the value whole rather than keep a secret. */
            size_t want = 0;
            for (int i = 1; i < argc; i++)
                want += strlen(argv[i]) + (i > 1);
            if (want == len) {
                for (int i = 1; i < argc; i++) {
                    if (i > 1)
                        value[pos++] = ' ';
                    size_t n = strlen(argv[i]);
                    memcpy(value + pos, argv[i], n);
                    pos += n;
                }
            } else {
                memset(value, 'x', len);
            }
            scrubbed++;
        }
    }
    return scrubbed;
}

bool nem_config_env_unknown(const char *entry, char *suggest, size_t len)
{
    if (len)
        suggest[0] = '\0';
    if (strncmp(entry, "N_", 2) != 0)
        return false;
    size_t n = strcspn(entry, "=");
    if (entry[n] != '=' || n == 2)
        return false;
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        char name[128];
        nem_option_env_name((nem_opt_id_t)i, name, sizeof name);
        if (strlen(name) == n && strncmp(entry, name, n) == 0)
            return false;
    }
    /* N_DB_PROT: the option closest to "db-prot" (nem_option_suggest reads '_' as '-' and ignores case). */
    char key[128];
    size_t k = n - 2 < sizeof key - 1 ? n - 2 : sizeof key - 1;
    memcpy(key, entry + 2, k);
    key[k] = '\0';
    const char *s = nem_option_suggest(key);
    int id = s ? nem_option_find(s) : -1;
    if (id >= 0 && len)
        nem_option_env_name((nem_opt_id_t)id, suggest, len);
    return true;
}

/* N_* variables: one per option (nem_option_env_name), read as a configuration layer. */
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
