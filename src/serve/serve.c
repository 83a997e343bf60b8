/* The serving lifecycle on rank 0 and its MPI handshake: init, start, then (after the stages) login and stop. */
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/exitcodes.h"
#include "util/signals.h"
#include "log/log.h"
#include "serve/login.h"
#include "serve/serve.h"
#include "serve/server.h"
#include "serve/spec.h"

struct nem_serve {
    nem_server_spec_t spec;
    const nem_engine_t *engine;
    nem_server_t server;   /* the server this run started; pid 0 when none */
    char *db_host;         /* workers: where to reach rank 0's server instead of a loopback --db-ip */
};

static int failure_status(const bson_error_t *err)
{
    /* 128 + the signal when interrupted (the one table); any other serving failure is the server's: 3 */
    return err->domain == NEM_ERROR_SIGNAL ? nem_exit_status(err) : NEM_EXIT_SERVER;
}

/* mkdir -p; whatever it creates gets 0700 (the database and its log hold the users' data). */
static bool make_private_dir(const char *path, bson_error_t *err)
{
    char *p = bson_strdup(path);
    bool ok = true;

    for (char *s = p + 1; ok; s++) {
        bool end = *s == '\0';
        if (*s != '/' && !end)
            continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, "cannot create directory %s (for %s): %s", p, path, strerror(errno));
            ok = false;
        }
        if (end)
            break;
        *s = '/';
    }
    bson_free(p);
    return ok;
}

static bool writable_dir(const char *path, const char *opt, bson_error_t *err)
{
    struct stat st;

    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EOPTION, "%s %s is not a directory (run --db-init first)", opt, path);
        return false;
    }
    if (access(path, W_OK | X_OK) != 0) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, "%s %s cannot be written: %s", opt, path, strerror(errno));
        return false;
    }
    return true;
}

/* --db-intervention: 2.0.6 paused init so the user could work on the unauthenticated server by hand. */
static void intervention(const nem_serve_t *s)
{
    char line[256];

    if (!isatty(STDIN_FILENO)) {
        NEM_WARN("--db-intervention needs a terminal on stdin; going on without a pause");
        return;
    }
    NEM_INFO("--db-intervention: the init server is up on 127.0.0.1:%d; do your manual work, then press Enter",
             s->spec.port);
    if (!fgets(line, sizeof line, stdin))
        NEM_WARN("--db-intervention: stdin closed; going on");
}

static bool init_server(nem_serve_t *s, nem_server_t *srv, bool pause, bson_error_t *err)
{
    if (!nem_server_launch(srv, true, err) || !nem_server_wait_ready(srv, err) || !s->engine->init_user(&s->spec, err))
        return false;
    NEM_INFO("--db-init: user '%s' ready on database '%s'", s->spec.user, s->spec.auth_db);
    if (pause)
        intervention(s);
    return nem_server_stop(srv, err);
}

static bool do_init(nem_serve_t *s, bool pause, bson_error_t *err)
{
    nem_server_t srv = {.engine = s->engine, .spec = &s->spec, .phase = NEM_PHASE_INIT};
    char *connect_ip = s->spec.connect_ip;
    bson_error_t ignored;
    bool ok;

    if (!s->spec.user || !s->spec.password) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EOPTION, "--db-init creates a user: it needs --db-user-name and a password "
                       "(--db-password, --db-password-file or N_DB_PASSWORD)");
        return false;
    }
    if (!make_private_dir(s->spec.db_path, err) || !make_private_dir(s->spec.log_dir, err))
        return false;
    s->spec.connect_ip = "127.0.0.1";   /* the init server listens on loopback only, plain */
    s->spec.tls = false;
    ok = init_server(s, &srv, pause, err);
    if (!ok && srv.pid)
        nem_server_stop(&srv, &ignored);
    s->spec.connect_ip = connect_ip;
    s->spec.tls = s->spec.tls_cert_file != NULL;
    return ok;
}

static bool check_login(const nem_serve_t *s, bson_error_t *err)
{
    bson_error_t why;

    if (!s->spec.user || nem_serve_ping(&s->spec, true, 10000, &why))
        return true;
    bson_set_error(err, why.domain, why.code, "the server started but user '%s' cannot log in to database '%s' on "
                   "%s:%d (authentication failed: wrong password or no such user?): %s", s->spec.user,
                   s->spec.auth_db, s->spec.connect_ip, s->spec.port, why.message);
    return false;
}

/* A signal that came after readiness but before the start finished still interrupts the start: the server goes,
 * as it would have a moment earlier (the signal handler itself leaves the server to us). */
static bool interrupted(const nem_server_t *srv, bson_error_t *err)
{
    int sig = nem_signal_pending();
    if (sig)
        bson_set_error(err, NEM_ERROR_SIGNAL, (uint32_t)sig, "interrupted by signal %d while starting %s", sig,
                       srv->engine->name);
    return sig != 0;
}

static bool do_start(nem_serve_t *s, bool stop_later, bson_error_t *err)
{
    nem_server_t *srv = &s->server;
    bson_error_t ignored;

    *srv = (nem_server_t){.engine = s->engine, .spec = &s->spec, .phase = NEM_PHASE_START};
    if (!writable_dir(s->spec.db_path, "--db-path", err) || !make_private_dir(s->spec.log_dir, err))
        return false;
    if (nem_server_launch(srv, stop_later, err) && nem_server_wait_ready(srv, err) && check_login(s, err) &&
        !interrupted(srv, err)) {
        /* Without --db-stop the server is meant to outlive this run: no more cleanup on signals or exit. */
        if (!stop_later)
            nem_cleanup_server_pid(0);
        return true;
    }
    if (srv->pid)
        nem_server_stop(srv, &ignored);
    return false;
}

static bool do_stop(nem_serve_t *s, bson_error_t *err)
{
    nem_server_t srv = {.engine = s->engine ? s->engine : &nem_engine_ferretdb, .spec = &s->spec};
    bool running;

    if (s->server.pid)
        return nem_server_stop(&s->server, err);
    if (!nem_server_attach(&srv, &running, err))
        return false;
    if (!running) {
        NEM_WARN("--db-stop: no server is running on db path %s", s->spec.db_path);
        return true;
    }
    return nem_server_stop(&srv, err);
}

/* Rank 0: -1 when serving is done (or nothing was asked), else an exit status. several_hosts: the ranks run on
 * more than one host. Takes the plan's server spec. */
/* Where clients on other hosts find the server this run started: its first --db-bind-ip when that is an address or
 * a name, this host's name when it listens on a wildcard, loopback when it listens there only. */
static const char *address_host(const nem_server_spec_t *spec, char *buf, size_t len)
{
    for (size_t i = 0; i < spec->n_bind_ip; i++) {
        const char *ip = spec->bind_ip[i];
        if (!strcmp(ip, "0.0.0.0") || !strcmp(ip, "::") || !strcmp(ip, "*")) {
            if (gethostname(buf, len) == 0) {
                buf[len - 1] = '\0';
                return buf;
            }
        } else if (!nem_serve_is_loopback(ip)) {
            return ip;
        }
    }
    return "127.0.0.1";
}

/* --db-address-file: {host, port, tls} written to a private file beside it, synced, then renamed over it, so a
 * client never reads half of one; mode 0600. */
static bool write_address_file(const nem_serve_plan_t *plan, const nem_server_spec_t *spec, bson_error_t *err)
{
    char host[256], *tmp = bson_strdup_printf("%s.XXXXXX", plan->address_file);
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&doc, "host", address_host(spec, host, sizeof host));
    BSON_APPEND_INT32(&doc, "port", spec->port);
    BSON_APPEND_BOOL(&doc, "tls", plan->tls);
    size_t n;
    char *json = bson_as_relaxed_extended_json(&doc, &n);
    int fd = mkstemp(tmp);
    bool ok = fd >= 0 && fchmod(fd, 0600) == 0 && write(fd, json, n) == (ssize_t)n && write(fd, "\n", 1) == 1 &&
              fsync(fd) == 0;
    int e = errno;
    if (fd >= 0 && close(fd) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (ok && rename(tmp, plan->address_file) != 0) {
        ok = false;
        e = errno;
    }
    if (!ok) {
        if (fd >= 0)
            unlink(tmp);
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EOPTION, "--db-address-file '%s' cannot be written: %s",
                       plan->address_file, strerror(e));
    } else {
        NEM_INFO("--db-address-file %s: clients find the server at %s port %d%s", plan->address_file, host[0] ? host
                 : address_host(spec, host, sizeof host), spec->port, plan->tls ? " (TLS)" : "");
    }
    bson_free(json);
    bson_destroy(&doc);
    bson_free(tmp);
    return ok;
}

static int root_begin(nem_serve_plan_t *plan, nem_serve_t *s, bool several_hosts)
{
    bool init = plan->init, start = plan->start;
    bson_error_t err = {0};

    if (!init && !start && !plan->stop && !plan->login)
        return -1;
    s->spec = plan->spec;
    memset(&plan->spec, 0, sizeof plan->spec);
    if (!nem_serve_spec_check(&s->spec, &err))
        goto fail;
    if (start && nem_serve_unreachable_by_ranks(several_hosts, s->spec.bind_ip, s->spec.n_bind_ip)) {
        bson_string_t *ips = bson_string_new(NULL);
        for (size_t i = 0; i < s->spec.n_bind_ip; i++)
            bson_string_append_printf(ips, "%s%s", i ? " " : "", s->spec.bind_ip[i]);
        bson_set_error(&err, NEM_ERROR_SERVE, NEM_SERVE_EOPTION, "the ranks run on more than one host, but "
                       "--db-bind-ip %s is loopback only: the ranks on other hosts could not reach the server on "
                       "rank 0's host; add an address they can reach to --db-bind-ip (this host's name or address, "
                       "or 0.0.0.0)", ips->str);
        bson_string_free(ips, true);
        init = false;   /* nothing was done: the message names --db-start only */
        goto fail;
    }
    if ((init || start) && !nem_engine_choose(plan->engine, &s->engine, &s->spec.program, &err))
        goto fail;
    if (init && !do_init(s, plan->intervention, &err))
        goto fail;
    if (start && !do_start(s, plan->stop, &err))
        goto fail;
    if (start && plan->address_file && !write_address_file(plan, &s->spec, &err)) {
        bson_error_t ignored;
        if (plan->stop && s->server.pid) /* a server nobody can find is stopped if this run owns its life */
            nem_server_stop(&s->server, &ignored);
        goto fail;
    }
    return -1;
fail:
    NEM_ERROR("%s%s: %s", init ? "--db-init" : "", start ? (init ? "/--db-start" : "--db-start") : "", err.message);
    return failure_status(&err);
}

/* Where this rank reaches the server this run started, when --db-ip is loopback (its default, localhost): reach is
 * the address rank 0 itself uses (the spec's connect_ip: loopback when the server listens there or on a wildcard,
 * else its first --db-bind-ip). Ranks on rank 0's host use it; ranks elsewhere use it too unless it is loopback,
 * and then rank 0's host name (the server listens on a wildcard: a loopback-only one was refused before it
 * started). NULL: the client's host stands (a --db-ip the user aimed elsewhere, or a server this run did not
 * start). */
static char *where_to_connect(const nem_world_t *world, const nem_serve_plan_t *plan, const char *host0,
                              int served, const char *reach)
{
    if (!served || !plan->client || !nem_serve_is_loopback(plan->client->host) || !reach[0])
        return NULL;
    if (!nem_serve_is_loopback(reach))
        return bson_strdup(reach);
    return world->rank != 0 && strcmp(world->host, host0) != 0 ? bson_strdup(host0) : NULL;
}

int nem_serve_begin(const nem_world_t *world, nem_serve_plan_t *plan, nem_serve_t **out)
{
    nem_serve_t *s = bson_malloc0(sizeof *s);
    int msg[2] = {-1, 0};   /* status, server started by rank 0 */
    char host0[sizeof world->host];
    int elsewhere, several_hosts = 0;

    nem_signals_install();
    /* Which hosts the ranks run on, before anything starts: a server only rank 0's host can reach is refused. */
    memcpy(host0, world->host, sizeof host0);
    nem_mpi_bcast(host0, (int)sizeof host0, MPI_CHAR, 0);
    host0[sizeof host0 - 1] = '\0';
    elsewhere = strcmp(world->host, host0) != 0;
    nem_mpi_allreduce(&elsewhere, &several_hosts, 1, MPI_INT, MPI_MAX);
    if (world->rank == 0) {
        msg[0] = root_begin(plan, s, several_hosts != 0);
        msg[1] = s->server.pid > 0 || (msg[0] == -1 && plan->start);
    }
    nem_mpi_bcast(msg, 2, MPI_INT, 0);
    char reach[256] = "";
    if (world->rank == 0 && msg[0] == -1 && msg[1] && s->spec.connect_ip)
        bson_strncpy(reach, s->spec.connect_ip, sizeof reach);
    nem_mpi_bcast(reach, (int)sizeof reach, MPI_CHAR, 0);
    reach[sizeof reach - 1] = '\0';
    if (msg[0] != -1) {
        nem_serve_spec_clear(&s->spec);
        bson_free(s);
        *out = NULL;
        return msg[0];
    }
    if ((s->db_host = where_to_connect(world, plan, host0, msg[1], reach)))
        NEM_DEBUG("--db-ip %s: the server this run started answers on %s: connecting there", plan->client->host,
                  s->db_host);
    *out = s;
    return -1;
}

const char *nem_serve_db_host(const nem_serve_t *s)
{
    return s ? s->db_host : NULL;
}

static int root_end(const nem_serve_plan_t *plan, nem_serve_t *s)
{
    bson_error_t err = {0};
    int status = 0;

    if (plan->login && !nem_signal_pending() && !nem_serve_login(plan->client, &s->spec, &err)) {
        NEM_ERROR("%s", err.message);
        status = NEM_EXIT_SERVER;
    }
    if (plan->stop) {
        if (!do_stop(s, &err)) {
            NEM_ERROR("--db-stop: %s", err.message);
            status = NEM_EXIT_SERVER;
        } else if (plan->address_file && unlink(plan->address_file) != 0 && errno != ENOENT) {
            NEM_WARN("--db-address-file %s not removed: %s", plan->address_file, strerror(errno));
        }
    } else if (s->server.pid) {
        NEM_INFO("%s keeps running (pid %d, pid file %s/" NEM_PIDFILE_NAME "): stop it with --db-stop",
                 s->engine->name, (int)s->server.pid, s->spec.db_path);
    }
    return status;
}

int nem_serve_end(const nem_world_t *world, const nem_serve_plan_t *plan, nem_serve_t *s, int status_so_far)
{
    int status = 0;

    if (world->rank == 0 && s)
        status = root_end(plan, s);
    nem_mpi_bcast(&status, 1, MPI_INT, 0);
    if (s) {
        nem_serve_spec_clear(&s->spec);
        bson_free(s->db_host);
        bson_free(s);
    }
    return status_so_far ? status_so_far : status;
}

void nem_serve_plan_clear(nem_serve_plan_t *plan)
{
    nem_serve_spec_clear(&plan->spec);
    bson_free(plan->engine);
    bson_free(plan->address_file);
    memset(plan, 0, sizeof *plan);
}
