/* --db-login. The shell gets its connection and credentials from a script it reads from a FIFO in a private
 * directory: the password is on no command line and never on disk. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log/log.h"
#include "serve/login.h"
#include "util/clock.h"
#include "serve/proc.h"

void nem_login_argv(const char *shell, const char *script, nem_strv_t *argv)
{
    nem_strv_push(argv, shell);
    nem_strv_push(argv, "--nodb");   /* the script connects, so no host or user goes on argv either */
    nem_strv_push(argv, "--shell");  /* stay interactive after the script */
    nem_strv_push(argv, script);
}

/* A JavaScript string literal. */
static void js_string(bson_string_t *out, const char *s)
{
    bson_string_append_c(out, '"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            bson_string_append_printf(out, "\\%c", *p);
        else if (*p < 0x20)
            bson_string_append_printf(out, "\\u%04x", *p);
        else
            bson_string_append_c(out, (char)*p);
    }
    bson_string_append_c(out, '"');
}

/* "&name=value" with the value percent-encoded (RFC 3986 unreserved characters and '/' stay as they are), so a
 * path or password holding '&', '=', '%' or '#' reaches the shell intact. */
static void append_param(bson_string_t *uri, const char *name, const char *value)
{
    if (!value)
        return;
    bson_string_append_printf(uri, "&%s=", name);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-._~/", *p))
            bson_string_append_c(uri, (char)*p);
        else
            bson_string_append_printf(uri, "%%%02X", *p);
    }
}

/* The connection string, TLS settings included. It holds the key file's password, so like the database password
 * it lives only in the script (read from the private FIFO), never on the shell's command line. */
static void append_uri(bson_string_t *js, const nem_store_opts_t *client)
{
    bson_string_t *uri = bson_string_new(NULL);

    bson_string_append_printf(uri, "mongodb://%s:%d/%s?directConnection=true", client->host, client->port,
                              client->db_name);
    if (nem_store_opts_use_tls(client))
        bson_string_append(uri, "&tls=true");
    append_param(uri, "tlsCAFile", client->tls_ca_file);
    append_param(uri, "tlsCertificateKeyFile", client->tls_cert_key_file);
    append_param(uri, "tlsCertificateKeyFilePassword", client->tls_cert_key_password);
    append_param(uri, "tlsCRLFile", client->tls_crl_file);
    js_string(js, uri->str);
    memset(uri->str, 0, uri->len);   /* it may hold the key file's password */
    bson_string_free(uri, true);
}

char *nem_login_script(const nem_store_opts_t *client, const nem_server_spec_t *spec)
{
    bson_string_t *js = bson_string_new("db = connect(");

    append_uri(js, client);
    bson_string_append(js, ");\n");
    if (spec->user && client->user) { /* no user for the clients: --db-authentication '' */
        bson_string_append(js, "db.getSiblingDB(");
        js_string(js, spec->auth_db);
        bson_string_append(js, ").auth({user: ");
        js_string(js, spec->user);
        bson_string_append(js, ", pwd: ");
        js_string(js, spec->password);
        bson_string_append(js, ", mechanism: ");
        js_string(js, spec->auth_mechanism);
        bson_string_append(js, "});\n");
    }
    return bson_string_free(js, false);
}

/* Writes the script once the shell opens the FIFO; gives up when the shell ends first. */
static bool feed_fifo(const char *fifo, const char *text, pid_t shell)
{
    int fd = -1;
    size_t len = strlen(text), done = 0;

    while ((fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0 && errno == ENXIO) {
        if (waitpid(shell, NULL, WNOHANG) != 0)
            return false;
        nem_sleep_ms(10);
    }
    if (fd < 0)
        return false;
    fcntl(fd, F_SETFL, 0);
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w <= 0 && errno != EINTR)
            break;
        done += w > 0 ? (size_t)w : 0;
    }
    close(fd);
    return done == len;
}

static int run_shell(const char *shell, const char *fifo, const char *script)
{
    nem_strv_t argv = {0};
    bson_error_t err;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_int;
    int status = -1;
    pid_t pid;

    nem_login_argv(shell, fifo, &argv);
    /* Ctrl-C belongs to the shell (it cancels a query there), not to nemesyst, which would stop the server. */
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &ign, &old_int);
    {
        nem_spawn_t sp = {.argv = argv.v, .in_fd = NEM_FD_INHERIT, .out_fd = NEM_FD_INHERIT, .keep_fd = -1,
                         .private_umask = true};
        pid = nem_proc_spawn(&sp, &err);
    }
    if (pid < 0)
        NEM_ERROR("--db-login: %s", err.message);
    else if (!feed_fifo(fifo, script, pid))
        NEM_WARN("--db-login: %s did not read its connection script", shell);
    if (pid > 0)
        nem_spawn_reap(pid, true, &status);
    sigaction(SIGINT, &old_int, NULL);
    nem_strv_free(&argv);
    return status;
}

bool nem_serve_login(const nem_store_opts_t *client, const nem_server_spec_t *spec, bson_error_t *err)
{
    char *shell = nem_find_program("mongosh"), *script = NULL, dir[] = "/tmp/nemesyst-login.XXXXXX", *fifo = NULL;
    int status;
    bool ok = false;

    if (!shell && !(shell = nem_find_program("mongo"))) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ELOGIN, "--db-login: neither mongosh nor mongo is on PATH");
        return false;
    }
    if (!mkdtemp(dir)) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, "--db-login: cannot make a private directory: %s", strerror(errno));
        goto out;
    }
    fifo = bson_strdup_printf("%s/login.js", dir);
    if (mkfifo(fifo, 0600) != 0) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, "--db-login: cannot make %s: %s", fifo, strerror(errno));
        goto out;
    }
    script = nem_login_script(client, spec);
    NEM_INFO("--db-login: %s on %s:%d as %s", shell, client->host, client->port, client->user ? client->user : "(no user)");
    status = run_shell(shell, fifo, script);
    ok = status >= 0;
    if (!ok)
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ELOGIN, "--db-login: %s could not be run", shell);
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char how[128];
        nem_spawn_describe(status, how, sizeof how);
        NEM_WARN("--db-login: %s %s", shell, how);
    }
out:
    if (fifo)
        unlink(fifo);
    rmdir(dir);
    if (script)
        memset(script, 0, strlen(script));
    bson_free(script);
    bson_free(fifo);
    bson_free(shell);
    return ok;
}
