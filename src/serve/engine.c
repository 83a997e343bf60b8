/* Engine lookup: which engine --db-engine names, and where its binary is. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/engine.h"

#ifndef NEM_PKGLIBEXECDIR
#define NEM_PKGLIBEXECDIR "/usr/local/libexec/nemesyst"
#endif
/* NEM_FERRETDB_VERSION: from configure (autoconfig.h), which reads it from build-aux/build-ferretdb.sh. */

static const nem_engine_t *const engines[] = {&nem_engine_mongod, &nem_engine_ferretdb};

const nem_engine_t *nem_engine_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof engines / sizeof engines[0]; i++)
        if (name && strcmp(engines[i]->name, name) == 0)
            return engines[i];
    return NULL;
}

static bool is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static char *absolute(const char *path)
{
    char *abs = realpath(path, NULL);
    char *out = abs ? bson_strdup(abs) : NULL;
    free(abs);
    return out;
}

static char *find_on_path(const char *program)
{
    const char *path = getenv("PATH");
    char *copy, *save = NULL, *out = NULL;

    if (!path)
        return NULL;
    copy = bson_strdup(path);
    for (char *dir = strtok_r(copy, ":", &save); dir && !out; dir = strtok_r(NULL, ":", &save)) {
        char *cand = bson_strdup_printf("%s/%s", *dir ? dir : ".", program);
        if (is_executable(cand))
            out = absolute(cand);
        bson_free(cand);
    }
    bson_free(copy);
    return out;
}

static char *try_path(char *cand)
{
    char *out = (cand && is_executable(cand)) ? absolute(cand) : NULL;
    bson_free(cand);
    return out;
}

/* The cache that build-aux/build-ferretdb.sh fills. */
static char *ferretdb_cache_path(void)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        return bson_strdup_printf("%s/nemesyst/ferretdb-" NEM_FERRETDB_VERSION "/ferretdb", xdg);
    if (home && *home)
        return bson_strdup_printf("%s/.cache/nemesyst/ferretdb-" NEM_FERRETDB_VERSION "/ferretdb", home);
    return NULL;
}

char *nem_find_program(const char *name)
{
    char *out = find_on_path(name);
    return out ? out : try_path(bson_strdup_printf("%s/%s", NEM_PKGLIBEXECDIR, name));
}

char *nem_engine_find(const nem_engine_t *engine)
{
    bool ferret = engine == &nem_engine_ferretdb;
    const char *explicit_bin = ferret ? getenv("NEMESYST_FERRETDB") : NULL;
    char *out = NULL;

    if (explicit_bin && *explicit_bin)
        out = try_path(bson_strdup(explicit_bin));
    if (!out)
        out = nem_find_program(engine->program);
    if (!out && ferret)
        out = try_path(ferretdb_cache_path());
    return out;
}

bool nem_engine_choose(const char *name, const nem_engine_t **engine, char **program, bson_error_t *err)
{
    const nem_engine_t *e = NULL;

    if (!name || strcmp(name, "auto") == 0) {
        /* mongod is the production target: prefer it whenever it is installed. */
        *program = nem_engine_find(&nem_engine_mongod);
        e = *program ? &nem_engine_mongod : &nem_engine_ferretdb;
    } else if (!(e = nem_engine_by_name(name))) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EOPTION, "--db-engine '%s' is not known (use auto, mongod or ferretdb)", name);
        return false;
    } else {
        *program = NULL;
    }
    if (!*program)
        *program = nem_engine_find(e);
    if (!*program) {
        if (e == &nem_engine_ferretdb)
            bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ENOSERVER, "no database server found: %sno ferretdb in $NEMESYST_FERRETDB, on PATH, in "
                           NEM_PKGLIBEXECDIR " or in the build cache (build one with build-aux/build-ferretdb.sh)",
                           (!name || strcmp(name, "auto") == 0) ? "mongod is not on PATH and " : "");
        else
            bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ENOSERVER, "--db-engine mongod: mongod is neither on PATH nor in " NEM_PKGLIBEXECDIR);
        return false;
    }
    *engine = e;
    return true;
}
