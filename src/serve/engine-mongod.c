/* mongod, the production engine. It cannot run on the development machines, so everything here only says what
 * to run; tests/serve/test_engines.c pins these command lines and commands down. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/engine.h"

/* --bind_ip takes one comma-separated list. */
static char *joined_bind_ip(const nem_server_spec_t *spec)
{
    bson_string_t *s = bson_string_new(NULL);
    for (size_t i = 0; i < spec->n_bind_ip; i++)
        bson_string_append_printf(s, "%s%s", i ? "," : "", spec->bind_ip[i]);
    return bson_string_free(s, false);
}

static void push_paths(const nem_server_spec_t *spec, nem_strv_t *argv)
{
    nem_strv_push(argv, "--dbpath");
    nem_strv_push(argv, spec->db_path);
    nem_strv_push(argv, "--logpath");
    nem_strv_push(argv, spec->log_file);
    /* Keep earlier runs' lines instead of mongod's rename-on-start; the error tail still shows the newest. */
    nem_strv_push(argv, "--logappend");
}

/* The one PEM of certificate and key mongod reads: the certificate file itself unless the key is apart. */
static char *tls_pem_path(const nem_server_spec_t *spec)
{
    return spec->tls_key_file ? bson_strdup_printf("%s/" NEM_MONGOD_TLS_PEM_NAME, spec->db_path)
                              : bson_strdup(spec->tls_cert_file);
}

/* requireTLS: TLS connections only. With --db-server-tls-ca-file every client must show a certificate that CA
 * signed; without it clients need none, and mongod, which wants a chain of trust, is given the system's. */
static void push_tls(const nem_server_spec_t *spec, nem_strv_t *argv)
{
    char *pem = tls_pem_path(spec);
    nem_strv_push(argv, "--tlsMode");
    nem_strv_push(argv, "requireTLS");
    nem_strv_push(argv, "--tlsCertificateKeyFile");
    nem_strv_push(argv, pem);
    if (spec->tls_ca_file) {
        nem_strv_push(argv, "--tlsCAFile");
        nem_strv_push(argv, spec->tls_ca_file);
    } else {
        nem_strv_push(argv, "--tlsAllowConnectionsWithoutCertificates");
        nem_strv_push(argv, "--setParameter");
        nem_strv_push(argv, "tlsUseSystemCA=true");
    }
    bson_free(pem);
}

static bool append_file(int out, const char *path, const char *what, bson_error_t *err)
{
    char buf[8192];
    ssize_t n;
    int in = open(path, O_RDONLY | O_CLOEXEC);
    bool ok = in >= 0, nl = true;

    while (ok && (n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ok = false;
            break;
        }
        ok = write(out, buf, (size_t)n) == n;
        nl = buf[n - 1] == '\n';
    }
    if (ok && !nl)
        ok = write(out, "\n", 1) == 1;
    if (!ok)
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, "cannot put %s '%s' into mongod's file of "
                       "certificate and key (" NEM_MONGOD_TLS_PEM_NAME " in --db-path): %s", what, path, strerror(errno));
    if (in >= 0)
        close(in);
    return ok;
}

/* With the key apart, mongod gets both in one private file in the db path, made anew at each start. */
static bool mongod_prepare(const nem_server_spec_t *spec, nem_phase_t phase, bson_error_t *err)
{
    if (phase != NEM_PHASE_START || !spec->tls || !spec->tls_key_file)
        return true;
    char *pem = tls_pem_path(spec);
    int fd = open(pem, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    bool ok = fd >= 0 && fchmod(fd, 0600) == 0;
    if (!ok)
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, "cannot write %s (mongod's certificate and key): %s",
                       pem, strerror(errno));
    ok = ok && append_file(fd, spec->tls_cert_file, "--db-server-tls-cert-file", err) &&
         append_file(fd, spec->tls_key_file, "--db-server-tls-key-file", err);
    if (fd >= 0 && close(fd) != 0 && ok) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, "cannot write %s: %s", pem, strerror(errno));
        ok = false;
    }
    bson_free(pem);
    return ok;
}

static bool mongod_argv(const nem_server_spec_t *spec, nem_phase_t phase, nem_strv_t *argv, bson_error_t *err)
{
    nem_strv_push(argv, spec->program);
    if (phase == NEM_PHASE_INIT) {
        /* No users yet and no --auth: never reachable from outside the machine. */
        nem_strv_push(argv, "--bind_ip");
        nem_strv_push(argv, "127.0.0.1");
    } else {
        char *ips = joined_bind_ip(spec);
        nem_strv_push(argv, "--auth");
        nem_strv_push(argv, "--bind_ip");
        nem_strv_push(argv, ips);
        bson_free(ips);
    }
    nem_strv_push(argv, "--port");
    nem_strv_pushf(argv, "%d", spec->port);
    if (phase == NEM_PHASE_START && spec->tls)
        push_tls(spec, argv);
    push_paths(spec, argv);
    if (phase == NEM_PHASE_START) {
        nem_strv_push(argv, "--setParameter");
        nem_strv_pushf(argv, "cursorTimeoutMillis=%" PRId64, spec->cursor_timeout);
        if (spec->replset) {
            nem_strv_push(argv, "--replSet");
            nem_strv_push(argv, spec->replset);
        }
    }
    /* The original ignored --db-config-path; command-line options above override the file where both set a key. */
    if (spec->config_path) {
        nem_strv_push(argv, "--config");
        nem_strv_push(argv, spec->config_path);
    }
    return true;
}

static void mongod_env(const nem_server_spec_t *spec, nem_phase_t phase, nem_strv_t *env)
{
    /* mongod takes no secret from nemesyst at start: the user is created over the wire. */
}

void nem_mongod_create_user_command(const nem_server_spec_t *spec, bson_t *cmd)
{
    bson_t roles, role;

    BSON_APPEND_UTF8(cmd, "createUser", spec->user);
    BSON_APPEND_UTF8(cmd, "pwd", spec->password ? spec->password : "");
    BSON_APPEND_ARRAY_BEGIN(cmd, "roles", &roles);
    BSON_APPEND_DOCUMENT_BEGIN(&roles, "0", &role);
    BSON_APPEND_UTF8(&role, "role", spec->role);
    BSON_APPEND_UTF8(&role, "db", spec->auth_db);
    bson_append_document_end(&roles, &role);
    bson_append_array_end(cmd, &roles);
}

/* Error code mongod gives createUser for an existing user. */
#define MONGOD_USER_EXISTS 51003

static bool mongod_init_user(const nem_server_spec_t *spec, bson_error_t *err)
{
    bson_t cmd = BSON_INITIALIZER;
    bool ok;

    nem_mongod_create_user_command(spec, &cmd);
    ok = nem_serve_command(spec, false, spec->auth_db, &cmd, 10000, NULL, err);
    bson_reinit(&cmd);          /* drop the password from memory now */
    bson_destroy(&cmd);
    if (!ok && err->code == MONGOD_USER_EXISTS) {
        memset(err, 0, sizeof *err);
        return true;            /* re-running init on an initialised path keeps the user */
    }
    return ok;
}

static void mongod_stop_command(const nem_server_spec_t *spec, bson_t *cmd)
{
    BSON_APPEND_INT32(cmd, "shutdown", 1);
}

const nem_engine_t nem_engine_mongod = {
    .name = "mongod",
    .program = "mongod",
    .build_argv = mongod_argv,
    .build_env = mongod_env,
    .prepare = mongod_prepare,
    .init_user = mongod_init_user,
    .stop_command = mongod_stop_command,
    .log_to_stderr = false,
};
