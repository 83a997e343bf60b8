/* Option resolution happens once, on rank 0; every rank then receives the same resolved set (as BSON over MPI), so
 * a password is asked for once and a bad config file is reported once. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "util/exitcodes.h"
#include "log/log.h"
#include "config/pipeline.h"
#include "app/plan.h"
#include "stage/plan.h"
#include "stage/runner.h"
#include "util/fs.h"
#include "util/signals.h"

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
 * written is one error now, not a warning and a run without its log; ranks > 0 write PATH.N beside it. */
static bool check_log_file(const nem_config_t *cfg, bson_error_t *err)
{
    const char *path = nem_cfg_str(cfg, NEM_OPT_LOG_FILE, 0);
    if (!path)
        return true;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EFILE, "%s: --log-file '%s' cannot be opened: %s",
                       cfg->values[NEM_OPT_LOG_FILE].where, path, strerror(errno));
        return false;
    }
    close(fd);
    return true;
}

/* Problems that would only show at the end of a run, or make it wrong, are refused before anything starts. */
static bool check_run_options(const nem_config_t *cfg, int workers, bson_error_t *err)
{
    if (!check_pipelines(cfg, err) || !check_groups(cfg, workers, err))
        return false;
    const char *json = nem_cfg_str(cfg, NEM_OPT_SUMMARY_JSON, 0);
    if (!check_output_file(cfg, NEM_OPT_LOG_FILE, err) || !check_log_file(cfg, err) || !check_script_modes(cfg, err))
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

/* --db-address-file without --db-start: a client of a server another job started. Waits (polling, up to
 * --db-start-timeout) for the file the serving job writes once its server answers, then connects where it says:
 * --db-ip, --db-port and --db-tls come from it. Returns an exit status, or -1 to go on. */
static int take_address_file(nem_config_t *cfg)
{
    const char *path = nem_cfg_str(cfg, NEM_OPT_DB_ADDRESS_FILE, 0);
    const char *where = cfg->values[NEM_OPT_DB_ADDRESS_FILE].where;
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
    bson_error_t err = {0};
    char why[256] = "it does not exist yet";
    for (;;) {
        bson_t doc;
        bson_iter_t it;
        struct stat st;
        if (stat(path, &st) == 0) {
            if (!S_ISREG(st.st_mode)) {
                fprintf(stderr, "nemesyst: error: %s: --db-address-file '%s' is %s, not a regular file\n", where, path,
                        nem_file_kind(st.st_mode));
                return NEM_EXIT_USAGE;
            }
            char *text = NULL;
            size_t len = 0;
            if (nem_read_regular_file(path, 4096, "--db-address-file", &text, &len, &err) &&
                bson_init_from_json(&doc, text, (ssize_t)len, NULL)) {
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
                bson_destroy(&doc);
                bson_free(text);
                if (ok) {
                    NEM_INFO("--db-address-file %s: the server is at %s port %" PRId64 "%s", path, host, port,
                             tls ? " (TLS)" : "");
                    return -1;
                }
                snprintf(why, sizeof why, "it holds no host, port (1-65535) and tls");
            } else {
                bson_free(text);
                snprintf(why, sizeof why, "it is not an address file (JSON {host, port, tls})");
            }
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
    /* Everything that can be refused is, before the password is asked for and before anything starts. */
    if (!nem_config_check_scripts(cfg, &err) || !nem_config_check_files(cfg, &err) ||
        !check_run_options(cfg, world->size > 1 ? world->size - 1 : 1, &err)) {
        print_error(err.message);
        return nem_exit_status(&err);
    }
    int address = take_address_file(cfg);
    if (address >= 0)
        return address;
    if ((needs_password(cfg) && !nem_config_resolve_password(cfg, &err)) ||
        (scram_password(cfg) && !nem_config_check_password_saslprep(cfg, &err))) {
        print_error(err.message);
        return nem_exit_status(&err);
    }
    static const nem_opt_id_t actions[] = {NEM_OPT_DB_INIT,  NEM_OPT_DB_START, NEM_OPT_DATA_CLEAN, NEM_OPT_DL_LEARN,
                                           NEM_OPT_I_PREDICT, NEM_OPT_DB_LOGIN, NEM_OPT_DB_STOP,   NEM_OPT_LIST_RUNS};
    bool any = nem_cfg_is_set(cfg, NEM_OPT_RESUME);
    for (size_t i = 0; i < sizeof actions / sizeof *actions; i++)
        any = any || nem_cfg_bool(cfg, actions[i]);
    if (!any) {
        fputs("nemesyst: nothing to do: give a stage (--data-clean, --dl-learn, --i-predict), a serving option "
              "(--db-init, --db-start, --db-stop, --db-login), --resume RUN or --list-runs (see --help)\n", stderr);
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
    *out = cfg;
    return -1;
}
