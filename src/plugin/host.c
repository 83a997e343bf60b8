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

static nemesyst_entry_fn load_entry(const char *path, bson_error_t *error)
{
    const char *sym = entry_symbol();
    nemesyst_entry_fn fn;
    /* RTLD_LOCAL: two plugins never share symbols; RTLD_NOW: a missing symbol fails here, not mid-run */
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "cannot load plugin: %s", dlerror());
        return NULL;
    }
    /* The plugin's own stamp (include/nemesyst.h); the library and this host carry none, so this is the plugin's. */
    const int *api = dlsym(handle, "nemesyst_plugin_api_version");
    if (api && *api != NEMESYST_API_VERSION) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                       "plugin '%s' was built against nemesyst plugin API version %d, this nemesyst provides version "
                       "%d: rebuild it against this nemesyst.h", path, *api, NEMESYST_API_VERSION);
        return NULL;
    }
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
    nemesyst_ctx_t *ctx = NULL;
    int rc = 1;
    if (argc != 2) {
        fprintf(stderr, "usage: %s PLUGIN.so (run by nemesyst)\n", argv[0]);
        return 2;
    }
    mongoc_init();
    mongoc_log_set_handler(mongoc_to_log, NULL);
    nemesyst_entry_fn entry = load_entry(argv[1], &error);
    bool ok = false;
    if (entry && (ctx = nemesyst__ctx_from_env(&error))) {
        ok = entry(ctx, &error);
        bson_error_t ferr;
        bool flushed = nemesyst__ctx_finish(ctx, &ferr); /* a failed script's items too, for --keep-partial */
        if (ok && !(flushed && nemesyst__ctx_end(ctx, &ferr))) {
            ok = false;
            error = ferr;
        }
    }
    /* Disconnect before reporting, so the reason is the last line the host sees. */
    nemesyst__ctx_destroy(ctx);
    rc = ok ? 0 : fail(argv[1], &error);
    mongoc_cleanup();
    return rc;
}
