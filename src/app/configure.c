/* Option resolution happens once, on rank 0; every rank then receives the same resolved set (as BSON over MPI), so
 * a password is asked for once and a bad config file is reported once. */
#define _GNU_SOURCE /* pipe2: close-on-exec from the start */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <mpi.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "util/exitcodes.h"
#include "log/log.h"
#include "config/env.h"
#include "config/pipeline.h"
#include "app/plan.h"
#include "stage/run-plan.h"
#include "serve/engine.h"
#include "stage/runner/runner.h"
#include "util/fs.h"
#include "util/signals.h"
#include "util/spawn.h"
#include "util/text.h"

extern char **environ;

/* A file nemesyst will write: a FIFO would block the writer, a directory or a socket cannot be written. Regular
 * files and character devices (/dev/null, /dev/stderr) are fine; a path that does not exist yet is too. */
static bool check_output_file(const nem_config_t *cfg, nem_opt_id_t id, bson_error_t *err)
{
    const char *path = nem_cfg_str(cfg, id, 0);
    struct stat st;
    if (!path || stat(path, &st) != 0 || S_ISREG(st.st_mode) || S_ISCHR(st.st_mode))
        return true;
    bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: --%s '%s' is %s, not a regular file",
                   cfg->values[id].where, nem_options[id].name, path, nem_file_kind(st.st_mode));
    return false;
}

/* Every pipeline a learner or the model picker will run: valid JSON, and stages MongoDB would accept (checked now,
 * not after the server started or hours into a stage). */
static bool check_pipelines(const nem_config_t *cfg, bson_error_t *err)
{
    static const nem_opt_id_t ids[] = {NEM_OPT_DL_DATA_PIPELINE, NEM_OPT_DL_INPUT_MODEL_PIPELINE};
    for (size_t k = 0; k < sizeof ids / sizeof *ids; k++)
        for (size_t i = 0; i < cfg->values[ids[k]].n; i++) {
            bson_t p;
            if (!nem_pipeline_option(cfg, ids[k], i, &p, err))
                return false;
            bson_destroy(&p);
        }
    return true;
}

/* Learner groups (--dl-data-parallel K > 1): each runs in one round, so it must fit in one; and its members read
 * disjoint _id ranges of the collection, so its pipeline may hold only stages whose result over the parts is, put
 * together, the result over the whole (nem_shardable_stage), never $group, $limit, $sample, ... */
static bool check_groups(const nem_config_t *cfg, int workers, bson_error_t *err)
{
    const char *where = cfg->values[NEM_OPT_DL_DATA_PARALLEL].where;
    long slots = (long)workers * nem_cfg_int(cfg, NEM_OPT_PROCESS_POOL, 0);
    if (!nem_cfg_bool(cfg, NEM_OPT_DL_LEARN))
        return true;
    for (size_t i = 0; i < nem_cfg_count(cfg, NEM_OPT_DL_LEARNER); i++) {
        int64_t k = nem_cfg_int(cfg, NEM_OPT_DL_DATA_PARALLEL, i);
        if (k <= 1)
            continue;
        if (k > slots) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE,
                           "%s: learner #%zu '%s': --dl-data-parallel %" PRId64 " needs %" PRId64 " worker slots in "
                           "one round, and there are %ld (%d worker rank(s) x --process-pool %" PRId64 "): add ranks "
                           "or raise --process-pool", where, i, nem_cfg_str(cfg, NEM_OPT_DL_LEARNER, i), k, k, slots,
                           workers, nem_cfg_int(cfg, NEM_OPT_PROCESS_POOL, 0));
            return false;
        }
        bson_t p;
        bson_iter_t it, st;
        size_t n = 0;
        if (!nem_pipeline_option(cfg, NEM_OPT_DL_DATA_PIPELINE, i, &p, err))
            return false;
        bool ok = true;
        if (bson_iter_init(&it, &p))
            while (ok && bson_iter_next(&it)) {
                n++;
                if (BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &st) && bson_iter_next(&st) &&
                    !nem_shardable_stage(bson_iter_key(&st))) {
                    bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                                   "%s: --dl-data-pipeline[%zu] stage %zu (%s) works across documents: split over "
                                   "the --dl-data-parallel %" PRId64 " members of learner %zu it would give another "
                                   "result; use --dl-data-parallel 1, or store its result with a cleaner and learn "
                                   "from that", cfg->values[NEM_OPT_DL_DATA_PIPELINE].where, i, n,
                                   bson_iter_key(&st), k, i);
                    ok = false;
                }
            }
        bson_destroy(&p);
        if (!ok)
            return false;
    }
    return true;
}

/* A script of a stage that runs, as its kind will start it: an executable must be executable by us (a .py is read by
 * the adapter and a .so by the plugin host: nem_config_check_scripts checked both can be read). */
static bool check_script_modes(const nem_config_t *cfg, bson_error_t *err)
{
    for (nem_stage_t st = 0; st < NEM_STAGE__COUNT; st++) {
        const nem_stage_options_t *so = nem_stage_options(st);
        if (!nem_cfg_bool(cfg, so->flag))
            continue;
        for (size_t i = 0; i < nem_cfg_count(cfg, so->scripts); i++) {
            const char *path = nem_cfg_str(cfg, so->scripts, i);
            struct stat sb;
            if (nem_script_kind(path) != NEM_SCRIPT_EXEC || access(path, X_OK) == 0)
                continue;
            char why[64];
            if (stat(path, &sb) == 0)
                snprintf(why, sizeof why, "mode %03o", (unsigned)(sb.st_mode & 07777));
            else
                snprintf(why, sizeof why, "%s", strerror(errno));
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE,
                           "%s: --%s script '%s' cannot be executed (%s): chmod +x it, or name a .py script or a .so "
                           "plugin", cfg->values[so->scripts].where, nem_options[so->scripts].name, path, why);
            return false;
        }
    }
    return true;
}

/* --log-file is opened (created when missing, never truncated) before anything starts, so a path that cannot be
 * written is one error now, not a warning and a run without its log; ranks > 0 write PATH.N beside it. --check
 * creates nothing: it asks whether the file, or else its directory, can be written. */
static bool check_log_file(const nem_config_t *cfg, bool dry, bson_error_t *err)
{
    const char *path = nem_cfg_str(cfg, NEM_OPT_LOG_FILE, 0);
    if (!path)
        return true;
    if (dry) {
        char *copy = bson_strdup(path);
        bool ok = access(path, F_OK) == 0 ? access(path, W_OK) == 0 : access(dirname(copy), W_OK | X_OK) == 0;
        int e = errno;
        bson_free(copy);
        if (!ok)
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: --log-file '%s' cannot be opened: %s",
                           cfg->values[NEM_OPT_LOG_FILE].where, path, strerror(e));
        return ok;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: --log-file '%s' cannot be opened: %s",
                       cfg->values[NEM_OPT_LOG_FILE].where, path, strerror(errno));
        return false;
    }
    close(fd);
    return true;
}

/* --openlineage: a URL events can go to (http://, https:// with a host, or file: with a path whose directory can
 * be written), and an API key file only its owner can read; all refused now, not dropped event by event. The URL
 * is named without its user, password or query (a secret there would reach the terminal). */
static bool check_openlineage(const nem_config_t *cfg, bson_error_t *err)
{
    const char *url = nem_cfg_str(cfg, NEM_OPT_OPENLINEAGE, 0);
    const char *where = cfg->values[NEM_OPT_OPENLINEAGE].where;
    char why[256], pub[1024];
    if (!url || !nem_cfg_is_set(cfg, NEM_OPT_OPENLINEAGE))
        return true;
    nem_ol_url_public(url, pub, sizeof pub);
    if (!nem_ol_url_ok(url, why, sizeof why)) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: --openlineage '%s' %s", where, pub, why);
        return false;
    }
    if (strncasecmp(url, "file:", 5) == 0) {
        const char *path = url + 5;
        if (strncmp(path, "//", 2) == 0)
            path = strchr(path + 2, '/');
        struct stat st;
        char *copy = bson_strdup(path);
        const char *dir = dirname(copy);
        bool ok = true;
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: --openlineage '%s' is %s, not a regular file",
                           where, pub, nem_file_kind(st.st_mode));
            ok = false;
        } else if (access(dir, W_OK | X_OK) != 0) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: --openlineage '%s': cannot write in '%s': %s",
                           where, pub, dir, strerror(errno));
            ok = false;
        }
        bson_free(copy);
        if (!ok)
            return false;
    }
    if (nem_cfg_is_set(cfg, NEM_OPT_OPENLINEAGE_API_KEY_FILE)) {
        char *path = nem_cfg_path(cfg, NEM_OPT_OPENLINEAGE_API_KEY_FILE, 0), *key = NULL;
        bson_error_t e = {0};
        bool ok = nem_ol_read_api_key(path, &key, &e);
        if (ok)
            bson_zero_free(key, strlen(key));
        else
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: %s",
                           cfg->values[NEM_OPT_OPENLINEAGE_API_KEY_FILE].where, e.message);
        bson_free(path);
        if (!ok)
            return false;
    }
    return true;
}

/* Problems that would only show at the end of a run, or make it wrong, are refused before anything starts. dry
 * (--check): nothing is created. */
/* --db-server-tls-*: the key and the CA belong to a server certificate; a server that requires client certificates
 * requires one from the run that starts it too (its readiness ping and its ranks). */
static bool check_server_tls(const nem_config_t *cfg, bson_error_t *err)
{
    static const nem_opt_id_t parts[] = {NEM_OPT_DB_SERVER_TLS_KEY_FILE, NEM_OPT_DB_SERVER_TLS_CA_FILE};
    bool cert = nem_cfg_is_set(cfg, NEM_OPT_DB_SERVER_TLS_CERT_FILE);
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        if (!cert && nem_cfg_is_set(cfg, parts[i])) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE, "%s: --%s belongs to the server's certificate: "
                           "give --db-server-tls-cert-file too", cfg->values[parts[i]].where, nem_options[parts[i]].name);
            return false;
        }
    if (cert && nem_cfg_bool(cfg, NEM_OPT_DB_START) && nem_cfg_is_set(cfg, NEM_OPT_DB_SERVER_TLS_CA_FILE) &&
        !nem_cfg_is_set(cfg, NEM_OPT_DB_TLS_CERTIFICATE_KEY_FILE)) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE, "%s: --db-server-tls-ca-file makes the server require "
                       "a client certificate, from this run too (it connects to the server it starts): give "
                       "--db-tls-certificate-key-file", cfg->values[NEM_OPT_DB_SERVER_TLS_CA_FILE].where);
        return false;
    }
    return true;
}

static bool check_run_options(const nem_config_t *cfg, int workers, bool dry, bson_error_t *err)
{
    if (!check_pipelines(cfg, err) || !check_groups(cfg, workers, err) || !check_server_tls(cfg, err) ||
        !check_openlineage(cfg, err))
        return false;
    const char *json = nem_cfg_str(cfg, NEM_OPT_SUMMARY_JSON, 0);
    if (!check_output_file(cfg, NEM_OPT_LOG_FILE, err) || !check_log_file(cfg, dry, err) ||
        !check_script_modes(cfg, err))
        return false;
    if (json) {
        char *copy = bson_strdup(json);
        const char *dir = dirname(copy);
        struct stat st;
        bool ok = access(dir, W_OK | X_OK) == 0;
        if (!ok)
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: --summary-json '%s': cannot write in '%s': %s",
                           cfg->values[NEM_OPT_SUMMARY_JSON].where, json, dir, strerror(errno));
        else if (stat(json, &st) == 0 && S_ISDIR(st.st_mode)) {
            ok = false;
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: --summary-json '%s' is a directory",
                           cfg->values[NEM_OPT_SUMMARY_JSON].where, json);
        }
        bson_free(copy);
        if (!ok || !check_output_file(cfg, NEM_OPT_SUMMARY_JSON, err))
            return false;
    }
    if ((nem_cfg_is_set(cfg, NEM_OPT_RESUME) || nem_cfg_bool(cfg, NEM_OPT_REQUEUE)) &&
        !nem_cfg_bool(cfg, NEM_OPT_PROVENANCE)) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE,
                       "%s: --%s needs provenance to remove what failed scripts wrote: drop --provenance false",
                       cfg->values[NEM_OPT_PROVENANCE].where,
                       nem_cfg_is_set(cfg, NEM_OPT_RESUME) ? "resume" : "requeue");
        return false;
    }
    return true;
}

/* A password is asked for (or read) when someone will authenticate with it: the clients, unless --db-authentication
 * '' turned that off, and serving, which creates the user and stops the server as that user. */
static bool needs_password(const nem_config_t *cfg)
{
    if (!nem_cfg_is_set(cfg, NEM_OPT_DB_USER_NAME) && !nem_cfg_is_set(cfg, NEM_OPT_DB_PASSWORD_FILE))
        return false;
    return !nem_cfg_auth_off(cfg) || nem_cfg_bool(cfg, NEM_OPT_DB_INIT) || nem_cfg_bool(cfg, NEM_OPT_DB_START) ||
           nem_cfg_bool(cfg, NEM_OPT_DB_STOP) || nem_cfg_bool(cfg, NEM_OPT_DB_LOGIN);
}

/* The password will go through SCRAM: a SCRAM mechanism (the default) for the clients, or serving, which creates
 * the user (SCRAM on every engine) and stops the server as that user. */
static bool scram_password(const nem_config_t *cfg)
{
    const char *mech = nem_cfg_str(cfg, NEM_OPT_DB_AUTHENTICATION, 0);
    bool serving = nem_cfg_bool(cfg, NEM_OPT_DB_INIT) || nem_cfg_bool(cfg, NEM_OPT_DB_START) ||
                   nem_cfg_bool(cfg, NEM_OPT_DB_STOP) || nem_cfg_bool(cfg, NEM_OPT_DB_LOGIN);
    return cfg->password && (serving || (mech && strncasecmp(mech, "SCRAM-", 6) == 0));
}

/* One line on stderr, whatever the message holds: control characters (a newline in a value) are written as \xNN. */
static void print_error(const char *msg)
{
    fputs("nemesyst: error: ", stderr);
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p < 0x20 || *p == 0x7F)
            fprintf(stderr, "\\x%02X", *p);
        else
            fputc(*p, stderr);
    }
    fputc('\n', stderr);
}

/* One look at an address file: ADDR_READ (--db-ip, --db-port and --db-tls now come from it), ADDR_NOT_YET (it does
 * not exist, or holds no address yet: why says which) or ADDR_REFUSED (it is no regular file: said on stderr). */
enum { ADDR_READ, ADDR_NOT_YET, ADDR_REFUSED };
static int read_address_file(nem_config_t *cfg, const char *path, const char *where, char *why, size_t why_len)
{
    bson_error_t err = {0};
    bson_t doc;
    bson_iter_t it;
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(why, why_len, "it does not exist yet");
        return ADDR_NOT_YET;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "nemesyst: error: %s: --db-address-file '%s' is %s, not a regular file\n", where, path,
                nem_file_kind(st.st_mode));
        return ADDR_REFUSED;
    }
    char *text = NULL;
    size_t len = 0;
    if (!nem_read_regular_file(path, 4096, "--db-address-file", &text, &len, &err) ||
        !bson_init_from_json(&doc, text, (ssize_t)len, NULL)) {
        bson_free(text);
        snprintf(why, why_len, "it is not an address file (JSON {host, port, tls})");
        return ADDR_NOT_YET;
    }
    const char *host = bson_iter_init_find(&it, &doc, "host") && BSON_ITER_HOLDS_UTF8(&it)
                           ? bson_iter_utf8(&it, NULL) : NULL;
    int64_t port = bson_iter_init_find(&it, &doc, "port") && BSON_ITER_HOLDS_NUMBER(&it)
                       ? bson_iter_as_int64(&it) : 0;
    bool tls = bson_iter_init_find(&it, &doc, "tls") && bson_iter_as_bool(&it);
    char text_where[600], port_text[16];
    snprintf(text_where, sizeof text_where, "address file %s", path);
    snprintf(port_text, sizeof port_text, "%" PRId64, port);
    bool ok = host && *host && port >= 1 && port <= 65535 &&
              nem_config_set_text(cfg, NEM_OPT_DB_IP, host, NEM_SRC_CLI, text_where, &err) &&
              nem_config_set_text(cfg, NEM_OPT_DB_PORT, port_text, NEM_SRC_CLI, text_where, &err) &&
              (!tls || nem_config_set_text(cfg, NEM_OPT_DB_TLS, "true", NEM_SRC_CLI, text_where, &err));
    if (ok)
        NEM_INFO("--db-address-file %s: the server is at %s port %" PRId64 "%s", path, host, port,
                 tls ? " (TLS)" : "");
    else
        snprintf(why, why_len, "it holds no host, port (1-65535) and tls");
    bson_destroy(&doc);
    bson_free(text);
    return ok ? ADDR_READ : ADDR_NOT_YET;
}

/* --db-address-file without --db-start: a client of a server another job started. Waits (polling, up to
 * --db-start-timeout) for the file the serving job writes once its server answers, then connects where it says:
 * --db-ip, --db-port and --db-tls come from it. --check (once) does not wait: a file that is not there yet sets
 * *absent; one that holds no address is an error. Returns an exit status, or -1 to go on. */
static int take_address_file(nem_config_t *cfg, bool once, bool *absent)
{
    const char *path = nem_cfg_str(cfg, NEM_OPT_DB_ADDRESS_FILE, 0);
    const char *where = cfg->values[NEM_OPT_DB_ADDRESS_FILE].where;
    *absent = false;
    if (!path || nem_cfg_bool(cfg, NEM_OPT_DB_START) || nem_cfg_bool(cfg, NEM_OPT_DB_STOP))
        return -1;
    static const nem_opt_id_t given[] = {NEM_OPT_DB_IP, NEM_OPT_DB_PORT};
    for (size_t i = 0; i < 2; i++)
        if (cfg->values[given[i]].src > NEM_SRC_DEFAULT) {
            fprintf(stderr, "nemesyst: error: %s: --db-address-file '%s' says where the server is, and --%s (%s) "
                            "too: give one\n", where, path, nem_options[given[i]].name, cfg->values[given[i]].where);
            return NEM_EXIT_USAGE;
        }
    int64_t deadline = bson_get_monotonic_time() + nem_cfg_int(cfg, NEM_OPT_DB_START_TIMEOUT, 0) * 1000000;
    char why[256] = "it does not exist yet";
    for (;;) {
        switch (read_address_file(cfg, path, where, why, sizeof why)) {
        case ADDR_READ: return -1;
        case ADDR_REFUSED: return NEM_EXIT_USAGE;
        default: break;
        }
        if (once) {
            struct stat st;
            if (stat(path, &st) == 0) {
                fprintf(stderr, "nemesyst: error: %s: --db-address-file '%s': %s\n", where, path, why);
                return NEM_EXIT_USAGE;
            }
            *absent = true;
            return -1;
        }
        if (bson_get_monotonic_time() >= deadline || nem_signal_pending())
            break;
        usleep(100 * 1000);
    }
    fprintf(stderr, "nemesyst: error: %s: --db-address-file '%s': no server address within --db-start-timeout %" PRId64
                    " s: %s (is the serving job running?)\n", where, path, nem_cfg_int(cfg, NEM_OPT_DB_START_TIMEOUT, 0),
            why);
    return NEM_EXIT_SERVER;
}

/* ---- The interpreter of Python scripts (--python) ---- */

/* What the run's log says once: which interpreter runs the Python scripts, and why that one (rank 0). */
static char python_note[2 * PATH_MAX];

/* True when a stage that runs has a .py script: only then is an interpreter needed. */
static bool python_wanted(const nem_config_t *cfg)
{
    for (nem_stage_t st = 0; st < NEM_STAGE__COUNT; st++) {
        const nem_stage_options_t *so = nem_stage_options(st);
        if (!nem_cfg_bool(cfg, so->flag))
            continue;
        for (size_t i = 0; i < nem_cfg_count(cfg, so->scripts); i++)
            if (nem_script_kind(nem_cfg_str(cfg, so->scripts, i)) == NEM_SCRIPT_PYTHON)
                return true;
    }
    return false;
}

/* A program as the child will be started: an absolute path. A name with a '/' is taken from the working directory
 * (symbolic links are kept: a virtual environment's bin/python3 is one, and it is the link that makes the
 * environment); a bare name is looked up on PATH. NULL when PATH has none. */
static char *program_path(const char *name)
{
    char cwd[PATH_MAX];
    if (strchr(name, '/')) {
        if (name[0] == '/' || !getcwd(cwd, sizeof cwd))
            return bson_strdup(name);
        while (name[0] == '.' && name[1] == '/')
            name += 2;
        return bson_strdup_printf("%s/%s", cwd, name);
    }
    const char *path = getenv("PATH");
    char *copy = bson_strdup(path ? path : ""), *save = NULL, *out = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir && !out; dir = strtok_r(NULL, ":", &save)) {
        char *cand = bson_strdup_printf("%s/%s", *dir ? dir : ".", name);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
            out = cand[0] == '/' || !getcwd(cwd, sizeof cwd) ? bson_strdup(cand)
                                                             : bson_strdup_printf("%s/%s", cwd, cand);
        bson_free(cand);
    }
    bson_free(copy);
    return out;
}

/* What the adapter (python/nemesyst_adapter.py) imports beyond the standard library: pymongo, which brings bson and
 * gridfs. Exit 0 and PYTHON_PROBE_OK on stdout: it can run the adapter; exit 3: not Python 3; exit 4: the modules it
 * lacks, on stdout. */
#define PYTHON_PROBE_OK "nemesyst-python-ok"
static const char python_probe_code[] =
    "import sys\n"
    "if sys.version_info[0] < 3:\n"
    "    sys.exit(3)\n"
    "missing = []\n"
    "for name in ('pymongo', 'bson.json_util', 'gridfs'):\n"
    "    try:\n"
    "        __import__(name)\n"
    "    except Exception:\n"
    "        missing.append(name.split('.')[0])\n"
    "sys.stdout.write(', '.join(missing) or '" PYTHON_PROBE_OK "')\n"
    "sys.exit(4 if missing else 0)\n";
#define PYTHON_PROBE_MS 30000

/* Runs the interpreter on the probe (no bytecode written, stdin empty, secrets withheld as from scripts). True when
 * it can run the adapter; else why (len bytes) says what it lacks or how it failed. */
static bool python_probe(const char *python, char *why, size_t len)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(why, len, "cannot make a pipe: %s", strerror(errno));
        return false;
    }
    char *argv[] = {(char *)python, "-B", "-c", (char *)python_probe_code, NULL};
    nem_spawn_t sp = {.argv = argv, .withhold = nem_env_withheld, .in_fd = NEM_FD_NULL, .out_fd = fds[1],
                      .keep_fd = -1, .new_group = true};
    bson_error_t err = {0};
    pid_t pid = nem_spawn(&sp, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, &err);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        snprintf(why, len, "%s", err.message);
        return false;
    }
    char out[512] = "";
    size_t used = 0;
    int64_t deadline = bson_get_monotonic_time() / 1000 + PYTHON_PROBE_MS;
    for (;;) {
        int64_t left = deadline - bson_get_monotonic_time() / 1000;
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        if (left <= 0)
            break;
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        char buf[512];
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        /* what it says first (the missing modules; else the start of a traceback) */
        size_t take = (size_t)n < sizeof out - 1 - used ? (size_t)n : sizeof out - 1 - used;
        memcpy(out + used, buf, take);
        used += take;
        out[used] = '\0';
    }
    close(fds[0]);
    int st = 0;
    int64_t left = deadline - bson_get_monotonic_time() / 1000;
    if (!nem_spawn_wait(pid, left > 0 ? (int)left : 0, &st)) {
        kill(-pid, SIGKILL);
        nem_spawn_wait(pid, -1, &st);
        snprintf(why, len, "it did not answer within %d s", PYTHON_PROBE_MS / 1000);
        return false;
    }
    for (char *c = out; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && strcmp(out, PYTHON_PROBE_OK) == 0)
        return true;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        snprintf(why, len, "it is no Python interpreter (it exited 0 without running the probe)");
    else if (WIFEXITED(st) && WEXITSTATUS(st) == 4)
        snprintf(why, len, "it lacks %s", out);
    else if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
        snprintf(why, len, "it is not Python 3");
    else {
        char how[128];
        nem_spawn_describe(st, how, sizeof how);
        snprintf(why, len, "it %s%s%.200s", how, *out ? ": " : "", out);
    }
    return false;
}

/* The error for an interpreter that cannot run the adapter: what lacks what, and the fix. */
static bool python_refused(const char *where, const char *what, const char *python, const char *why, bson_error_t *err)
{
    if (strncmp(why, "it lacks ", 9) == 0)
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE,
                       "%s: %s '%s' cannot run Python stage scripts: %s: install pymongo there ('%s -m pip install "
                       "pymongo') or name an interpreter that has it with --python", where, what, python, why, python);
    else
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE,
                       "%s: %s '%s' cannot run Python stage scripts: %s: name a Python 3 with pymongo with --python",
                       where, what, python, why);
    return false;
}

/* The interpreter .py scripts run with, checked before anything starts (only when one will run): --python when
 * given, else NEMESYST_PYTHON3, else python3 on PATH when it has pymongo, else the one nemesyst was built with
 * (NEM_PYTHON3). --python then holds it as an absolute path, for every rank's plan; python_note says why it. */
static bool resolve_python(nem_config_t *cfg, bson_error_t *err)
{
    char why[600] = "", path_why[600] = "";
    const char *env = getenv("NEMESYST_PYTHON3");
    const nem_value_t *v = &cfg->values[NEM_OPT_PYTHON];
    python_note[0] = '\0';
    if (!python_wanted(cfg))
        return true;
    const char *given = nem_cfg_str(cfg, NEM_OPT_PYTHON, 0);
    const char *where = v->where, *what = "--python";
    char *where_copy = bson_strdup(given ? v->where : "default"), *chosen = NULL, *on_path = NULL;
    bool ok = false;
    nem_source_t src = given ? v->src : NEM_SRC_DEFAULT;
    if (given || (env && *env)) {
        const char *name = given ? given : env;
        if (!given) {
            where = "env NEMESYST_PYTHON3";
            what = "the interpreter";
        }
        char *expanded = given ? nem_cfg_path(cfg, NEM_OPT_PYTHON, 0) : bson_strdup(name);
        struct stat st;
        chosen = program_path(expanded);
        bson_free(expanded);
        if (!chosen)
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: %s '%s' is not on PATH", where, what, name);
        else if (stat(chosen, &st) != 0)
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: %s '%s' does not exist (%s)", where, what,
                           name, strerror(errno));
        else if (!S_ISREG(st.st_mode) || access(chosen, X_OK) != 0)
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: %s '%s' is not an executable file (%s, "
                           "mode %03o)", where, what, name, nem_file_kind(st.st_mode), (unsigned)(st.st_mode & 07777));
        else if (!python_probe(chosen, why, sizeof why))
            python_refused(where, what, chosen, why, err);
        else {
            ok = true;
            snprintf(python_note, sizeof python_note, "Python scripts run with %s (%s%s)", chosen,
                     given ? "--python, " : "", where);
        }
    } else {
        char *builtin = program_path(NEM_PYTHON3);
        on_path = program_path("python3");
        if (on_path && python_probe(on_path, path_why, sizeof path_why)) {
            chosen = bson_strdup(on_path);
            ok = true;
            snprintf(python_note, sizeof python_note, "Python scripts run with %s (python3 on PATH)", chosen);
        } else if (builtin && (!on_path || strcmp(builtin, on_path) != 0) && python_probe(builtin, why, sizeof why)) {
            chosen = bson_strdup(builtin);
            ok = true;
            if (on_path)
                snprintf(python_note, sizeof python_note, "Python scripts run with %s (the one nemesyst was built "
                         "with; python3 on PATH, %s: %.300s)", chosen, on_path, path_why);
            else
                snprintf(python_note, sizeof python_note, "Python scripts run with %s (the one nemesyst was built "
                         "with; no python3 on PATH)", chosen);
        } else if (!builtin || (on_path && strcmp(builtin, on_path) == 0)) {
            python_refused("default", on_path ? "python3 on PATH" : "the Python nemesyst was built with",
                           on_path ? on_path : NEM_PYTHON3, on_path ? path_why : "it is not on PATH", err);
        } else if (on_path) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE,
                           "default: neither python3 on PATH ('%s': %.150s) nor the Python nemesyst was built with "
                           "('%s': %.150s) can run Python stage scripts: install pymongo ('%s -m pip install "
                           "pymongo') or name an interpreter that has it with --python", on_path, path_why, builtin,
                           why, on_path);
        } else {
            python_refused("default", "the Python nemesyst was built with", builtin, why, err);
        }
        bson_free(builtin);
    }
    if (ok)
        ok = nem_config_set_text(cfg, NEM_OPT_PYTHON, chosen, src, where_copy, err);
    bson_free(chosen);
    bson_free(on_path);
    bson_free(where_copy);
    return ok;
}

/* ---- Warnings: what a run accepts but likely did not mean (the log, never the exit status) ---- */

/* N_* variables that name no option (N_DB_PROT): ignored, so say so. Only the name: a value may be a secret. */
static void warn_unknown_env(void)
{
    for (char **e = environ; e && *e; e++) {
        char suggest[128];
        if (!nem_config_env_unknown(*e, suggest, sizeof suggest))
            continue;
        int n = (int)strcspn(*e, "=");
        char name[128];
        char *copy = bson_strndup(*e, (size_t)n);
        nem_text_quote(copy, name, sizeof name);
        bson_free(copy);
        if (*suggest)
            NEM_WARN("env %s names no option of nemesyst and is ignored (did you mean %s?)", name, suggest);
        else
            NEM_WARN("env %s names no option of nemesyst and is ignored (see --help)", name);
    }
}

/* A per-script list longer than the script list it goes with: its last values are never used (--dl-epochs 1 2 3 for
 * two learners). The --dl-data-* lists and --dl-output-model-collection go with every stage's scripts (lineage,
 * models), the other --dl-* lists with the learners, --data-* with the cleaners, --i-* with the predictors. */
static void warn_long_lists(const nem_config_t *cfg)
{
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_option_t *o = &nem_options[i];
        const nem_value_t *v = &cfg->values[i];
        if (!nem_option_is_per_script((nem_opt_id_t)i) || v->src <= NEM_SRC_DEFAULT || v->n < 2)
            continue;
        bool shared = i == NEM_OPT_DL_DATA_COLLECTION || i == NEM_OPT_DL_DATA_PIPELINE ||
                      i == NEM_OPT_DL_OUTPUT_MODEL_COLLECTION;
        size_t most = 0;
        nem_opt_id_t scripts = NEM_OPT__COUNT;
        for (nem_stage_t st = 0; st < NEM_STAGE__COUNT; st++) {
            const nem_stage_options_t *so = nem_stage_options(st);
            bool mine = shared || (o->group == NEM_G_DATA && st == NEM_STAGE_CLEAN) ||
                        (o->group == NEM_G_DL && st == NEM_STAGE_LEARN) ||
                        (o->group == NEM_G_INFER && st == NEM_STAGE_PREDICT);
            if (!mine || !nem_cfg_bool(cfg, so->flag) || nem_cfg_count(cfg, so->scripts) <= most)
                continue;
            most = nem_cfg_count(cfg, so->scripts);
            scripts = so->scripts;
        }
        if (scripts != NEM_OPT__COUNT && v->n > most)
            NEM_WARN("%s: --%s has %zu values for %zu --%s script(s): the values after the first %zu are not used",
                     v->where, o->name, v->n, most, nem_options[scripts].name, most);
    }
}

static void config_warnings(const nem_config_t *cfg)
{
    warn_unknown_env();
    warn_long_lists(cfg);
}

/* --check-server: the connection a run would make, and a ping (authenticating when it would). */
static int ping_server(const nem_config_t *cfg)
{
    nem_store_opts_t opts;
    nem_strv_t owned = {0};
    bson_error_t err = {0};
    nem_store_opts_from_config(&opts, cfg, &owned);
    nem_store_t *store = nem_store_new(&opts, &err);
    bool ok = store && nem_store_ping(store, &err);
    nem_store_destroy(store);
    nem_strv_free(&owned);
    if (ok)
        return -1;
    print_error(err.message);
    return err.domain == NEM_ERROR_CONFIG ? NEM_EXIT_USAGE : NEM_EXIT_SERVER;
}

/* Rank 0's half: returns an exit status, or -1 to go on. */
static int resolve_on_root(const nem_world_t *world, int argc, char **argv, nem_config_t *cfg)
{
    bson_error_t err = {0};
    if (!nem_config_resolve(cfg, argc, argv, &err)) {
        print_error(err.message);
        return NEM_EXIT_USAGE;
    }
    if (cfg->help) {
        nem_options_print_help(stdout, "nemesyst");
        return NEM_EXIT_OK;
    }
    if (cfg->version) {
        printf("nemesyst %s\n", PACKAGE_VERSION);
        return NEM_EXIT_OK;
    }
    if (nem_cfg_bool(cfg, NEM_OPT_UPDATE)) {
        fprintf(stderr, "nemesyst: error: %s: --update is not supported: nemesyst is an installed program; update it "
                        "with your package manager or by reinstalling from source\n",
                cfg->values[NEM_OPT_UPDATE].where);
        return NEM_EXIT_USAGE;
    }
    if (nem_cfg_bool(cfg, NEM_OPT_PRINT_CONFIG)) {
        nem_config_print(cfg, stdout);
        return NEM_EXIT_OK;
    }
    nem_log_set_level_name(nem_cfg_str(cfg, NEM_OPT_LOG_LEVEL, 0));
    /* --check (--check-server): every check below, nothing started, waited for or written. */
    bool ping = nem_cfg_bool(cfg, NEM_OPT_CHECK_SERVER), check = ping || nem_cfg_bool(cfg, NEM_OPT_CHECK);
    /* Everything that can be refused is, before the password is asked for and before anything starts. */
    if (!nem_config_check_scripts(cfg, &err) || !nem_config_check_files(cfg, &err) ||
        !check_run_options(cfg, world->size > 1 ? world->size - 1 : 1, check, &err)) {
        print_error(err.message);
        return nem_exit_status(&err);
    }
    bool absent = false;
    int address = take_address_file(cfg, check, &absent);
    if (address >= 0)
        return address;
    if ((needs_password(cfg) && !nem_config_resolve_password(cfg, &err)) ||
        (scram_password(cfg) && !nem_config_check_password_saslprep(cfg, &err)) || !resolve_python(cfg, &err)) {
        print_error(err.message);
        return nem_exit_status(&err);
    }
    if (check) {
        config_warnings(cfg);
        if (*python_note)
            NEM_INFO("%s", python_note);
        bool serving = nem_cfg_bool(cfg, NEM_OPT_DB_INIT) || nem_cfg_bool(cfg, NEM_OPT_DB_START);
        if (serving) { /* the server binary the run would start */
            const nem_engine_t *engine;
            char *program = NULL;
            if (!nem_engine_choose(nem_cfg_str(cfg, NEM_OPT_DB_ENGINE, 0), &engine, &program, &err)) {
                print_error(err.message);
                return nem_exit_status(&err);
            }
            NEM_INFO("--check: the run would start %s", program);
            bson_free(program);
        }
        if (ping && serving)
            NEM_INFO("--check-server: the run starts its own server (--db-%s): nothing to ping",
                     nem_cfg_bool(cfg, NEM_OPT_DB_INIT) ? "init" : "start");
        else if (absent && ping) {
            fprintf(stderr, "nemesyst: error: %s: --check-server: no server to ping: --db-address-file '%s' does not "
                            "exist yet (is the serving job running?)\n", cfg->values[NEM_OPT_DB_ADDRESS_FILE].where,
                    nem_cfg_str(cfg, NEM_OPT_DB_ADDRESS_FILE, 0));
            return NEM_EXIT_SERVER;
        } else if (absent) {
            NEM_INFO("--db-address-file '%s' does not exist yet: a run waits up to --db-start-timeout %" PRId64
                     " s for the serving job to write it", nem_cfg_str(cfg, NEM_OPT_DB_ADDRESS_FILE, 0),
                     nem_cfg_int(cfg, NEM_OPT_DB_START_TIMEOUT, 0));
        } else if (ping) {
            int status = ping_server(cfg);
            if (status >= 0)
                return status;
        }
        puts("ok");
        return NEM_EXIT_OK;
    }
    static const nem_opt_id_t actions[] = {NEM_OPT_DB_INIT,  NEM_OPT_DB_START, NEM_OPT_DATA_CLEAN, NEM_OPT_DL_LEARN,
                                           NEM_OPT_I_PREDICT, NEM_OPT_DB_LOGIN, NEM_OPT_DB_STOP,   NEM_OPT_LIST_RUNS};
    bool any = nem_cfg_is_set(cfg, NEM_OPT_RESUME);
    for (size_t i = 0; i < sizeof actions / sizeof *actions; i++)
        any = any || nem_cfg_bool(cfg, actions[i]);
    if (!any) {
        config_warnings(cfg);
        fputs("nemesyst: nothing to do: give a stage (--data-clean, --dl-learn, --i-predict), a serving option "
              "(--db-init, --db-start, --db-stop, --db-login), --resume RUN, --list-runs or --check (see --help)\n",
              stderr);
        return NEM_EXIT_OK;
    }
    return -1;
}

int nem_app_configure(const nem_world_t *world, int argc, char **argv, nem_config_t **out)
{
    nem_config_t *cfg = nem_config_new();
    int status = -1;
    bson_t doc;
    uint32_t len = 0;

    if (world->rank == 0)
        status = resolve_on_root(world, argc, argv, cfg); /* scrubs secrets from argv as it parses */
    else
        nem_config_scrub_argv(argc, argv);        /* the other ranks never parse argv, but it is theirs too */
    nem_mpi_bcast(&status, 1, MPI_INT, 0);
    if (status >= 0) {
        nem_config_destroy(cfg);
        return status;
    }
    if (world->rank == 0) {
        nem_config_to_bson(cfg, true, &doc);
        len = doc.len;
    }
    nem_mpi_bcast(&len, 1, MPI_UINT32_T, 0);
    uint8_t *buf = bson_malloc(len);
    if (world->rank == 0)
        memcpy(buf, bson_get_data(&doc), len);
    nem_mpi_bcast(buf, (int)len, MPI_BYTE, 0);
    if (world->rank == 0) {
        /* It holds the password: wipe it before freeing. */
        memset((void *)bson_get_data(&doc), 0, doc.len);
        bson_destroy(&doc);
    } else {
        bson_t recv;
        bson_error_t err;
        if (!bson_init_static(&recv, buf, len) || !nem_config_from_bson(cfg, &recv, &err)) {
            NEM_ERROR("could not decode the configuration broadcast by rank 0");
            nem_world_abort(NEM_EXIT_FAILURE);
        }
    }
    bson_zero_free(buf, len);
    nem_log_set_level_name(nem_cfg_str(cfg, NEM_OPT_LOG_LEVEL, 0));
    const char *logfile = nem_cfg_str(cfg, NEM_OPT_LOG_FILE, 0);
    if (logfile) {
        /* Every rank opens its own (PATH.N beside rank 0's PATH); one that cannot ends the run before it starts. */
        bson_error_t err;
        char *path = world->rank ? bson_strdup_printf("%s.%d", logfile, world->rank) : bson_strdup(logfile);
        int ok = nem_log_open_file(path, &err), all_ok = 0;
        if (!ok)
            print_error(err.message);
        bson_free(path);
        nem_mpi_allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN);
        if (!all_ok) {
            nem_config_destroy(cfg);
            return NEM_EXIT_USAGE;
        }
    }
    if (world->rank == 0) {
        /* once per run, now that --log-level and --log-file hold */
        config_warnings(cfg);
        if (*python_note)
            NEM_INFO("%s", python_note);
    }
    *out = cfg;
    return -1;
}
