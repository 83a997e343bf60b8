/* nemesyst-plugin-host PLUGIN.so: runs one C stage script. Started by the runner with the NEMESYST_* environment,
 * items pipe and password pipe (see src/stage/runner/runner.h); it dlopens the plugin, calls its entry point with a
 * context (include/nemesyst.h) and turns the result into an exit status: 0 success, 1 failure (reason on stderr),
 * 2 usage. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin/plugin-private.h"

/* C reserves `main`, so the default entry point name maps to nemesyst_main. */
static const char *entry_symbol(void)
{
    const char *name = getenv("NEMESYST_ENTRY_POINT");
    if (!name || !*name || strcmp(name, "main") == 0)
        return "nemesyst_main";
    return name;
}

/* The plugin's stamp (include/nemesyst.h) against the running libnemesyst's version, the library the plugin's calls
 * reach. The rule: the same major, and a minor no newer than ours (a minor release only adds to the API). The stamp
 * is nemesyst_plugin_abi, or the 3.0 header's int nemesyst_plugin_api_version, whose one version (1) is 3.0; a
 * plugin with neither loads unchecked. The library and this host carry no stamp (NEMESYST_NO_API_STAMP), so a stamp
 * found is the plugin's. */
static bool compatible(void *handle, bson_error_t *error)
{
    unsigned v = nemesyst_version(), our_major = v >> 16, our_minor = (v >> 8) & 0xff;
    const nemesyst_plugin_abi_t *abi = dlsym(handle, "nemesyst_plugin_abi");
    const int *api = dlsym(handle, "nemesyst_plugin_api_version");
    nemesyst_plugin_abi_t built = {3, 0};
    if (abi)
        built = *abi;
    else if (!api)
        return true;
    /* One line, the versions first: the runner keeps the last line of stderr, after the plugin's path. */
    if (!abi && *api != NEMESYST_API_VERSION) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                       "the plugin was built against nemesyst plugin API version %d, which no nemesyst had, this "
                       "nemesyst is %u.%u: rebuild it against this nemesyst", *api, our_major, our_minor);
        return false;
    }
    if (built.major_version == our_major && built.minor_version <= our_minor)
        return true;
    bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                   "the plugin was built against nemesyst %u.%u (%s), this nemesyst is %u.%u: rebuild it against this "
                   "nemesyst", built.major_version, built.minor_version,
                   built.major_version < our_major ? "an older, incompatible major" : "needs a newer nemesyst",
                   our_major, our_minor);
    return false;
}

static nemesyst_entry_fn load_entry(const char *path, bson_error_t *error)
{
    const char *sym = entry_symbol();
    nemesyst_entry_fn fn;
    /* RTLD_LOCAL: two plugins never share symbols; RTLD_NOW: a missing symbol fails here, not mid-run. (dlopen runs
     * the plugin's constructors, if it has any; nothing else in it runs before the stamp is checked.) */
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "cannot load plugin: %s", dlerror());
        return NULL;
    }
    if (!compatible(handle, error))
        return NULL;
    *(void **)&fn = dlsym(handle, sym);
    if (!fn)
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "plugin '%s' has no entry point '%s'", path, sym);
    return fn;
}

static int fail(const char *path, const bson_error_t *error)
{
    fprintf(stderr, "<3>%s: %s\n", path, error->message[0] ? error->message : "entry point returned false");
    return 1;
}

/* libmongoc's own messages go to the log with their level; FerretDB's missing endSessions is not worth one. */
static void mongoc_to_log(mongoc_log_level_t level, const char *domain, const char *message, void *data)
{
    (void)data;
    if (level > MONGOC_LOG_LEVEL_WARNING || strstr(message, "endSessions"))
        return;
    fprintf(stderr, "<%d>%s: %s\n", level <= MONGOC_LOG_LEVEL_CRITICAL ? 3 : 4, domain, message);
}

int main(int argc, char **argv)
{
    bson_error_t error = {0};
    if (argc != 2) {
        fprintf(stderr, "usage: %s PLUGIN.so (run by nemesyst)\n", argv[0]);
        return 2;
    }
    mongoc_init();
    mongoc_log_set_handler(mongoc_to_log, NULL);
    nemesyst_entry_fn entry = load_entry(argv[1], &error);
    bool ok = entry && nemesyst__host_run(entry, &error);
    int rc = ok ? 0 : fail(argv[1], &error);
    mongoc_cleanup();
    return rc;
}
