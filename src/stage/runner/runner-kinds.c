/* The three kinds of stage script, one vtable each (the aiori pattern): how to start it and where its items come
 * from. Everything else (pipes, parsing, verdicts) is shared. */
#include "stage/runner/runner-private.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PLUGIN_HOST "nemesyst-plugin-host"
#define PYTHON_ADAPTER "nemesyst_adapter.py"

/* True when this program runs from the build tree (make check): the helpers there are the ones just built, not
 * an older installed copy. */
static bool running_from_build_tree(void)
{
    char exe[PATH_MAX], *top = realpath(nem_runner_build_top(), NULL);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    bool inside = false;
    if (top && n > 0) {
        size_t len = strlen(top);
        exe[n] = '\0';
        inside = strncmp(exe, top, len) == 0 && exe[len] == '/';
    }
    free(top);
    return inside;
}

/* Order: an explicit environment variable (tests, relocated installs), the build tree when running from it, then
 * the installed path. */
char *nem_runner_helper_path(const char *env_name, const char *build_path, const char *installed_path)
{
    const char *env = getenv(env_name);
    if (env && *env)
        return bson_strdup(env);
    if (running_from_build_tree() && access(build_path, R_OK) == 0)
        return bson_strdup(build_path);
    return bson_strdup(installed_path);
}

static bool exec_argv(const nem_script_spec_t *spec, nem_strv_t *argv, bson_error_t *err)
{
    nem_strv_push(argv, spec->path);
    return true;
}

static bool python_argv(const nem_script_spec_t *spec, nem_strv_t *argv, bson_error_t *err)
{
    char *build = bson_strdup_printf("%s/python/" PYTHON_ADAPTER, nem_runner_source_top());
    char *adapter = nem_runner_helper_path("NEMESYST_PYTHON_ADAPTER", build, NEM_PKGDATADIR "/" PYTHON_ADAPTER);
    /* the run's interpreter (--python, as app/configure.c resolved it), else NEMESYST_PYTHON3, else the built-in */
    const char *python = spec->python && *spec->python ? spec->python : getenv("NEMESYST_PYTHON3");
    nem_strv_push(argv, python && *python ? python : NEM_PYTHON3);
    nem_strv_push(argv, adapter);
    nem_strv_push(argv, spec->path);
    bson_free(adapter);
    bson_free(build);
    return true;
}

static bool plugin_argv(const nem_script_spec_t *spec, nem_strv_t *argv, bson_error_t *err)
{
    char *build = bson_strdup_printf("%s/" PLUGIN_HOST, nem_runner_build_top());
    char *host = nem_runner_helper_path("NEMESYST_PLUGIN_HOST", build, NEM_PKGLIBEXECDIR "/" PLUGIN_HOST);
    nem_strv_push(argv, host);
    nem_strv_push(argv, spec->path);
    bson_free(host);
    bson_free(build);
    return true;
}

const nem_runner_kind_t nem_runner_kind_exec = {
    .name = "executable",
    .items_on_stdout = true,
    .fmt = NEM_FMT_DETECT,
    .argv = exec_argv,
};

const nem_runner_kind_t nem_runner_kind_python = {
    .name = "python",
    .items_on_stdout = false,
    .fmt = NEM_FMT_BSON,
    .requires_end = true,
    .argv = python_argv,
};

const nem_runner_kind_t nem_runner_kind_plugin = {
    .name = "plugin",
    .items_on_stdout = false,
    .fmt = NEM_FMT_BSON,
    .requires_end = true,
    .argv = plugin_argv,
};
