/* What each engine would run, checked exactly: mongod cannot run on the development machines, so its command
 * lines, its createUser and its shutdown are pinned down here. Also: secrets stay off every argv. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/engine.h"
#include "serve/login.h"
#include "serve/proc.h"
#include "serve/server.h"
#include "serve/spec.h"
#include "config/env.h"

static char *bind_two[] = {"127.0.0.1", "10.1.2.3", NULL};
static char *bind_one[] = {"localhost", NULL};

static nem_server_spec_t spec_full(void)
{
    nem_server_spec_t s = {
        .program = "/opt/mongo/bin/mongod", .db_path = "/data/db", .log_dir = "/data/db/log",
        .log_file = "/data/db/log/mongo_log", .config_path = "/etc/mongod.yaml", .bind_ip = bind_two,
        .n_bind_ip = 2, .connect_ip = "127.0.0.1", .port = 65535, .cursor_timeout = 600000, .replset = "rs0",
        .user = "alice", .password = "s3cr\"et", .auth_db = "nemesyst", .role = "readWrite",
        .auth_mechanism = "SCRAM-SHA-1", .start_timeout_ms = 60000, .stop_timeout_ms = 30000,
    };
    return s;
}

static void assert_argv(const nem_strv_t *got, const char *const *want)
{
    size_t n = 0;
    while (want[n])
        n++;
    for (size_t i = 0; i < n && i < got->n; i++)
        ck_assert_msg(strcmp(got->v[i], want[i]) == 0, "argv[%zu]: got '%s', want '%s'", i, got->v[i], want[i]);
    ck_assert_uint_eq(got->n, n);
    ck_assert_ptr_null(got->v[n]);
}

static void assert_no_secret(const nem_strv_t *argv, const char *secret)
{
    for (size_t i = 0; i < argv->n; i++)
        ck_assert_msg(!strstr(argv->v[i], secret), "secret in argv[%zu] '%s'", i, argv->v[i]);
}

START_TEST(mongod_init_is_loopback_only_without_auth)
{
    nem_server_spec_t s = spec_full();
    nem_strv_t argv = {0};
    bson_error_t err;
    const char *want[] = {"/opt/mongo/bin/mongod", "--bind_ip", "127.0.0.1", "--port", "65535", "--dbpath", "/data/db",
                          "--logpath", "/data/db/log/mongo_log", "--logappend", "--config", "/etc/mongod.yaml", NULL};
    ck_assert(nem_engine_mongod.build_argv(&s, NEM_PHASE_INIT, &argv, &err));
    assert_argv(&argv, want);
    assert_no_secret(&argv, "s3cr");
    nem_strv_free(&argv);
}
END_TEST

START_TEST(mongod_start_has_auth_bind_list_cursor_timeout_replset_and_config)
{
    nem_server_spec_t s = spec_full();
    nem_strv_t argv = {0};
    bson_error_t err;
    const char *want[] = {"/opt/mongo/bin/mongod", "--auth", "--bind_ip", "127.0.0.1,10.1.2.3", "--port", "65535",
                          "--dbpath", "/data/db", "--logpath", "/data/db/log/mongo_log", "--logappend",
                          "--setParameter", "cursorTimeoutMillis=600000", "--replSet", "rs0",
                          "--config", "/etc/mongod.yaml", NULL};
    ck_assert(nem_engine_mongod.build_argv(&s, NEM_PHASE_START, &argv, &err));
    assert_argv(&argv, want);
    assert_no_secret(&argv, "s3cr");
    nem_strv_free(&argv);
}
END_TEST

START_TEST(mongod_start_without_optional_settings)
{
    nem_server_spec_t s = spec_full();
    nem_strv_t argv = {0};
    bson_error_t err;
    const char *want[] = {"/opt/mongo/bin/mongod", "--auth", "--bind_ip", "localhost", "--port", "27017",
                          "--dbpath", "/data/db", "--logpath", "/data/db/log/mongo_log", "--logappend",
                          "--setParameter", "cursorTimeoutMillis=1000", NULL};
    s.bind_ip = bind_one;
    s.n_bind_ip = 1;
    s.port = 27017;
    s.cursor_timeout = 1000;
    s.replset = NULL;
    s.config_path = NULL;
    ck_assert(nem_engine_mongod.build_argv(&s, NEM_PHASE_START, &argv, &err));
    assert_argv(&argv, want);
    nem_strv_free(&argv);
}
END_TEST

START_TEST(mongod_init_creates_the_user_with_its_role_over_the_wire)
{
    nem_server_spec_t s = spec_full();
    bson_t cmd = BSON_INITIALIZER;
    nem_strv_t env = {0};
    char *json;

    nem_mongod_create_user_command(&s, &cmd);
    json = bson_as_relaxed_extended_json(&cmd, NULL);
    ck_assert_str_eq(json, "{ \"createUser\" : \"alice\", \"pwd\" : \"s3cr\\\"et\", \"roles\" : "
                           "[ { \"role\" : \"readWrite\", \"db\" : \"nemesyst\" } ] }");
    nem_engine_mongod.build_env(&s, NEM_PHASE_INIT, &env);
    ck_assert_uint_eq(env.n, 0);
    bson_free(json);
    bson_destroy(&cmd);
}
END_TEST

START_TEST(mongod_stops_with_the_admin_shutdown_command)
{
    nem_server_spec_t s = spec_full();
    bson_t cmd = BSON_INITIALIZER;
    char *json;

    nem_engine_mongod.stop_command(&s, &cmd);
    json = bson_as_relaxed_extended_json(&cmd, NULL);
    ck_assert_str_eq(json, "{ \"shutdown\" : 1 }");
    bson_free(json);
    bson_destroy(&cmd);
}
END_TEST

START_TEST(ferretdb_init_takes_the_password_from_its_environment_only)
{
    nem_server_spec_t s = spec_full();
    nem_strv_t argv = {0}, env = {0};
    bson_error_t err;
    const char *want[] = {"/opt/mongo/bin/mongod", "--handler=sqlite", "--sqlite-url=file:/data/db/",
                          "--state-dir=/data/db", "--listen-addr=127.0.0.1:65535", "--debug-addr=-",
                          "--telemetry=disable", "--test-enable-new-auth", "--setup-database=nemesyst",
                          "--setup-username=alice", NULL};
    ck_assert(nem_engine_ferretdb.build_argv(&s, NEM_PHASE_INIT, &argv, &err));
    assert_argv(&argv, want);
    assert_no_secret(&argv, "s3cr");
    nem_engine_ferretdb.build_env(&s, NEM_PHASE_INIT, &env);
    ck_assert_uint_eq(env.n, 1);
    ck_assert_str_eq(env.v[0], "FERRETDB_SETUP_PASSWORD=s3cr\"et");
    nem_strv_free(&argv);
    nem_strv_free(&env);
}
END_TEST

START_TEST(ferretdb_start_has_auth_and_one_listen_address)
{
    nem_server_spec_t s = spec_full();
    nem_strv_t argv = {0}, env = {0};
    bson_error_t err;
    bson_t cmd = BSON_INITIALIZER;
    const char *want[] = {"/opt/mongo/bin/mongod", "--handler=sqlite", "--sqlite-url=file:/data/db/",
                          "--state-dir=/data/db", "--listen-addr=127.0.0.1:27017", "--debug-addr=-",
                          "--telemetry=disable", "--test-enable-new-auth", "--repl-set-name=rs0", NULL};
    s.bind_ip = bind_one;
    s.n_bind_ip = 1;
    s.port = 27017;
    s.config_path = NULL;
    ck_assert(nem_engine_ferretdb.build_argv(&s, NEM_PHASE_START, &argv, &err));
    assert_argv(&argv, want);
    nem_engine_ferretdb.build_env(&s, NEM_PHASE_START, &env);
    ck_assert_uint_eq(env.n, 0);
    nem_engine_ferretdb.stop_command(&s, &cmd);
    ck_assert(bson_empty(&cmd));   /* no shutdown command: SIGTERM */
    nem_strv_free(&argv);
    bson_destroy(&cmd);
}
END_TEST

START_TEST(ferretdb_listens_everywhere_when_given_several_bind_ips)
{
    nem_server_spec_t s = spec_full();
    nem_strv_t argv = {0};
    bson_error_t err;
    ck_assert(nem_engine_ferretdb.build_argv(&s, NEM_PHASE_START, &argv, &err));
    ck_assert_str_eq(argv.v[4], "--listen-addr=0.0.0.0:65535");
    nem_strv_free(&argv);
}
END_TEST

static nem_server_spec_t spec_tls(void)
{
    nem_server_spec_t s = spec_full();
    s.bind_ip = bind_one;
    s.n_bind_ip = 1;
    s.port = 27017;
    s.config_path = NULL;
    s.replset = NULL;
    s.tls = true;
    s.tls_cert_file = "/etc/tls/server.pem";
    s.tls_key_file = "/etc/tls/server.key";
    s.tls_ca_file = "/etc/tls/ca.pem";
    s.client_cert_key_password = "k3y-s3cr";
    return s;
}

START_TEST(ferretdb_start_with_tls_listens_on_tls_only)
{
    nem_server_spec_t s = spec_tls();
    nem_strv_t argv = {0};
    bson_error_t err;
    const char *want[] = {"/opt/mongo/bin/mongod", "--handler=sqlite", "--sqlite-url=file:/data/db/",
                          "--state-dir=/data/db", "--listen-addr=", "--listen-tls=127.0.0.1:27017",
                          "--listen-tls-cert-file=/etc/tls/server.pem", "--listen-tls-key-file=/etc/tls/server.key",
                          "--listen-tls-ca-file=/etc/tls/ca.pem", "--debug-addr=-", "--telemetry=disable",
                          "--test-enable-new-auth", NULL};
    ck_assert(nem_engine_ferretdb.build_argv(&s, NEM_PHASE_START, &argv, &err));
    assert_argv(&argv, want);
    assert_no_secret(&argv, "s3cr");
    nem_strv_free(&argv);
}
END_TEST

START_TEST(ferretdb_tls_without_ca_or_key_apart)
{
    nem_server_spec_t s = spec_tls();
    nem_strv_t argv = {0};
    bson_error_t err;
    const char *want[] = {"/opt/mongo/bin/mongod", "--handler=sqlite", "--sqlite-url=file:/data/db/",
                          "--state-dir=/data/db", "--listen-addr=", "--listen-tls=10.1.2.3:27017",
                          "--listen-tls-cert-file=/etc/tls/server.pem", "--listen-tls-key-file=/etc/tls/server.pem",
                          "--debug-addr=-", "--telemetry=disable", "--test-enable-new-auth", NULL};
    char *bind[] = {"10.1.2.3", NULL};
    s.bind_ip = bind;
    s.tls_key_file = NULL;   /* one PEM with both */
    s.tls_ca_file = NULL;    /* no client certificates */
    ck_assert(nem_engine_ferretdb.build_argv(&s, NEM_PHASE_START, &argv, &err));
    assert_argv(&argv, want);
    nem_strv_free(&argv);
}
END_TEST

START_TEST(tls_is_for_the_started_server_not_init)
{
    nem_server_spec_t s = spec_tls();
    nem_strv_t argv = {0};
    bson_error_t err;
    ck_assert(nem_engine_ferretdb.build_argv(&s, NEM_PHASE_INIT, &argv, &err));
    for (size_t i = 0; i < argv.n; i++)
        ck_assert_msg(!strstr(argv.v[i], "tls"), "ferretdb init argv[%zu] '%s'", i, argv.v[i]);
    ck_assert_str_eq(argv.v[4], "--listen-addr=127.0.0.1:27017");
    nem_strv_free(&argv);
    ck_assert(nem_engine_mongod.build_argv(&s, NEM_PHASE_INIT, &argv, &err));
    for (size_t i = 0; i < argv.n; i++)
        ck_assert_msg(!strstr(argv.v[i], "tls"), "mongod init argv[%zu] '%s'", i, argv.v[i]);
    nem_strv_free(&argv);
    ck_assert(nem_engine_mongod.prepare(&s, NEM_PHASE_INIT, &err));   /* writes nothing at init */
}
END_TEST

START_TEST(mongod_start_with_tls_and_client_certificates)
{
    nem_server_spec_t s = spec_tls();
    nem_strv_t argv = {0};
    bson_error_t err;
    const char *want[] = {"/opt/mongo/bin/mongod", "--auth", "--bind_ip", "localhost", "--port", "27017",
                          "--tlsMode", "requireTLS", "--tlsCertificateKeyFile", "/data/db/" NEM_MONGOD_TLS_PEM_NAME,
                          "--tlsCAFile", "/etc/tls/ca.pem", "--dbpath", "/data/db", "--logpath",
                          "/data/db/log/mongo_log", "--logappend", "--setParameter", "cursorTimeoutMillis=600000",
                          NULL};
    ck_assert(nem_engine_mongod.build_argv(&s, NEM_PHASE_START, &argv, &err));
    assert_argv(&argv, want);
    assert_no_secret(&argv, "s3cr");
    nem_strv_free(&argv);
}
END_TEST

START_TEST(mongod_start_with_tls_without_client_certificates)
{
    nem_server_spec_t s = spec_tls();
    nem_strv_t argv = {0};
    bson_error_t err;
    const char *want[] = {"/opt/mongo/bin/mongod", "--auth", "--bind_ip", "localhost", "--port", "27017",
                          "--tlsMode", "requireTLS", "--tlsCertificateKeyFile", "/etc/tls/server.pem",
                          "--tlsAllowConnectionsWithoutCertificates", "--setParameter", "tlsUseSystemCA=true",
                          "--dbpath", "/data/db", "--logpath", "/data/db/log/mongo_log", "--logappend",
                          "--setParameter", "cursorTimeoutMillis=600000", NULL};
    s.tls_key_file = NULL;
    s.tls_ca_file = NULL;
    ck_assert(nem_engine_mongod.build_argv(&s, NEM_PHASE_START, &argv, &err));
    assert_argv(&argv, want);
    nem_strv_free(&argv);
}
END_TEST

/* mongod reads certificate and key from one file: with the key apart, prepare joins them, privately. */
START_TEST(mongod_prepare_joins_certificate_and_key)
{
    char dir[] = "/tmp/nem-test-tlspem.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *cert = bson_strdup_printf("%s/c.pem", dir), *key = bson_strdup_printf("%s/k.pem", dir);
    char *pem = bson_strdup_printf("%s/" NEM_MONGOD_TLS_PEM_NAME, dir);
    FILE *f = fopen(cert, "w");
    fputs("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", f); /* no final newline */
    fclose(f);
    f = fopen(key, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    nem_server_spec_t s = spec_tls();
    s.db_path = dir;
    s.tls_cert_file = cert;
    s.tls_key_file = key;
    bson_error_t err;
    ck_assert_msg(nem_engine_mongod.prepare(&s, NEM_PHASE_START, &err), "%s", err.message);
    char buf[512] = {0};
    f = fopen(pem, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    ck_assert_str_eq(buf, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
                          "-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n");
    ck_assert_uint_gt(n, 0);
    struct stat st;
    ck_assert_int_eq(stat(pem, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    /* a key that cannot be read: one line naming it */
    s.tls_key_file = "/no/such/key.pem";
    ck_assert(!nem_engine_mongod.prepare(&s, NEM_PHASE_START, &err));
    ck_assert_msg(strstr(err.message, "--db-server-tls-key-file '/no/such/key.pem'"), "%s", err.message);
    unlink(pem);
    unlink(cert);
    unlink(key);
    rmdir(dir);
    bson_free(cert);
    bson_free(key);
    bson_free(pem);
}
END_TEST

START_TEST(login_argv_names_only_the_script)
{
    nem_strv_t argv = {0};
    const char *want[] = {"/usr/bin/mongosh", "--nodb", "--shell", "/tmp/x/login.js", NULL};
    nem_login_argv("/usr/bin/mongosh", "/tmp/x/login.js", &argv);
    assert_argv(&argv, want);
    nem_strv_free(&argv);
}
END_TEST

START_TEST(engine_auto_falls_back_to_ferretdb_without_mongod)
{
    const nem_engine_t *e = NULL;
    char *program = NULL;
    bson_error_t err;

    setenv("PATH", "/nonexistent", 1);
    setenv("NEMESYST_FERRETDB", "/bin/true", 1);
    ck_assert(nem_engine_choose("auto", &e, &program, &err));
    ck_assert_ptr_eq(e, &nem_engine_ferretdb);
    ck_assert_str_eq(program, "/usr/bin/true");
    bson_free(program);
    ck_assert(!nem_engine_choose("mongod", &e, &program, &err));
    ck_assert(strstr(err.message, "mongod is neither on PATH"));
    ck_assert(!nem_engine_choose("postgres", &e, &program, &err));
    ck_assert(strstr(err.message, "not known"));
}
END_TEST

START_TEST(log_tail_quotes_the_last_lines_of_this_run_with_the_secret_masked)
{
    char path[] = "/tmp/nem-tail.XXXXXX";
    int fd = mkstemp(path);
    const char *old = "old line\n", *text = "one\ntwo hunter2 x\nthree\n";
    char *tail;

    ck_assert(write(fd, old, strlen(old)) > 0 && write(fd, text, strlen(text)) > 0);
    close(fd);
    tail = nem_serve_log_tail(path, (int64_t)strlen(old), 2, 400, "hunter2");
    ck_assert_str_eq(tail, "\n    | two ******* x\n    | three");
    bson_free(tail);
    /* a long first line (FerretDB's start-up line is ~700 bytes) is cut, and the last line always fits */
    fd = open(path, O_WRONLY | O_APPEND);
    char longline[3000];
    memset(longline, 'a', sizeof longline - 1);
    longline[sizeof longline - 1] = '\n';
    ck_assert(write(fd, longline, sizeof longline) > 0 && write(fd, "fatal: address already in use\n", 30) > 0);
    close(fd);
    tail = nem_serve_log_tail(path, 0, 10, 250, "hunter2");
    ck_assert_msg(strstr(tail, "\n    | fatal: address already in use") && strlen(tail) <= 250, "got: %s", tail);
    ck_assert_msg(!strstr(tail, "three"), "older lines past the budget are left out: %s", tail);
    bson_free(tail);
    tail = nem_serve_log_tail(path, 0, 10, 1000, NULL);
    ck_assert_msg(strstr(tail, "aaa...\n    | fatal") && strlen(tail) < 1000, "got: %s", tail);
    bson_free(tail);
    unlink(path);
}
END_TEST

/* An exec failure reaches the caller as an error, with and without a kept descriptor (the pid-file lock): the
 * report pipe must survive the child's closing of every other descriptor. */
static void assert_spawn_fails(char *program, int keep_fd, const char *want)
{
    char *argv[] = {program, NULL};
    nem_spawn_t sp = {.argv = argv, .out_fd = -1, .in_fd = -1, .keep_fd = keep_fd};
    bson_error_t err = {0};

    ck_assert_int_eq(nem_proc_spawn(&sp, &err), -1);
    ck_assert_msg(strstr(err.message, want), "got '%s', want '%s'", err.message, want);
}

/* Valgrind maps its preload libraries into the process. */
static bool under_valgrind(void)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    bool found = false;

    while (maps && !found && fgets(line, sizeof line, maps))
        found = strstr(line, "vgpreload") != NULL;
    if (maps)
        fclose(maps);
    return found;
}

START_TEST(spawn_reports_exec_failures)
{
    char dir[] = "/tmp/nem-spawn.XXXXXX", script[64], msg[128];
    int keep = open("/dev/null", O_RDONLY | O_CLOEXEC);
    FILE *f;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    bson_snprintf(script, sizeof script, "%s/badinterp", dir);
    ck_assert_ptr_nonnull(f = fopen(script, "w"));
    fputs("#!/nonexistent/interp\n", f);
    fclose(f);
    chmod(script, 0700);
    assert_spawn_fails("/nonexistent/server", keep, "cannot execute /nonexistent/server: No such file");
    /* Valgrind cannot survive an execve that fails past its own checks (a script whose interpreter is missing):
     * there the shell test (failures.sh) covers these cases. */
    if (!under_valgrind()) {
        bson_snprintf(msg, sizeof msg, "cannot execute %s: No such file or directory", script);
        assert_spawn_fails(script, -1, msg);
        assert_spawn_fails(script, keep, msg);
        chmod(script, 0600);
        bson_snprintf(msg, sizeof msg, "cannot execute %s: Permission denied", script);
        assert_spawn_fails(script, -1, msg);
    }
    close(keep);
    unlink(script);
    rmdir(dir);
}
END_TEST

START_TEST(spawned_children_get_no_secret_variables)
{
    nem_strv_t env = {0};
    char *extra[] = {"FERRETDB_SETUP_PASSWORD=given", NULL};
    bool path = false;

    ck_assert(nem_env_withheld("N_DB_PASSWORD=x"));
    ck_assert(nem_env_withheld("N_DB_PASSWORD="));
    ck_assert(nem_env_withheld("N_DB_TLS_CERTIFICATE_KEY_FILE_PASSWORD=x"));
    ck_assert(nem_env_withheld("NEMESYST_RUN_ID=old"));
    ck_assert(!nem_env_withheld("N_DB_PASSWORD_FILE=/p"));   /* a path, not a secret */
    ck_assert(!nem_env_withheld("N_DB_PASSWORDX=x"));
    ck_assert(!nem_env_withheld("N_DB_USER_NAME=alice"));
    ck_assert(!nem_env_withheld("PATH=/bin"));
    ck_assert(nem_env_withheld("OMPI_ARGV=--db-password x"));   /* the launcher's copy of the command line */
    ck_assert(!nem_env_withheld("NEMESYST_USER_SETTING=mine")); /* a user's own variable, as in 2.0.6 */
    setenv("N_DB_PASSWORD", "hunter2", 1);
    setenv("NEMESYST_STAGE", "old", 1);
    setenv("NEMESYST_MINE", "kept", 1);
    nem_spawn_environ(extra, nem_env_withheld, &env);
    bool mine = false;
    for (size_t i = 0; i < env.n; i++) {
        ck_assert_msg(!strstr(env.v[i], "hunter2") && strncmp(env.v[i], "NEMESYST_STAGE=", 15) != 0, "%s", env.v[i]);
        path = path || strncmp(env.v[i], "PATH=", 5) == 0;
        mine = mine || strcmp(env.v[i], "NEMESYST_MINE=kept") == 0;
    }
    ck_assert(path);
    ck_assert(mine);
    unsetenv("NEMESYST_MINE");
    ck_assert_str_eq(env.v[env.n - 1], "FERRETDB_SETUP_PASSWORD=given");
    unsetenv("N_DB_PASSWORD");
    unsetenv("NEMESYST_STAGE");
    nem_strv_free(&env);
}
END_TEST

START_TEST(loopback_only_server_is_refused_when_ranks_span_hosts)
{
    char *lo[] = {"localhost", "127.0.0.1", "::1", NULL}, *any[] = {"localhost", "0.0.0.0", NULL};
    char *addr[] = {"10.1.2.3", NULL};

    ck_assert(nem_serve_unreachable_by_ranks(true, lo, 1));
    ck_assert(nem_serve_unreachable_by_ranks(true, lo, 3));
    ck_assert(!nem_serve_unreachable_by_ranks(false, lo, 3));   /* one host: loopback is fine */
    ck_assert(!nem_serve_unreachable_by_ranks(true, any, 2));
    ck_assert(!nem_serve_unreachable_by_ranks(true, addr, 1));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("serve-engines");
    TCase *tc = tcase_create("engines");
    tcase_add_test(tc, mongod_init_is_loopback_only_without_auth);
    tcase_add_test(tc, mongod_start_has_auth_bind_list_cursor_timeout_replset_and_config);
    tcase_add_test(tc, mongod_start_without_optional_settings);
    tcase_add_test(tc, mongod_init_creates_the_user_with_its_role_over_the_wire);
    tcase_add_test(tc, mongod_stops_with_the_admin_shutdown_command);
    tcase_add_test(tc, ferretdb_init_takes_the_password_from_its_environment_only);
    tcase_add_test(tc, ferretdb_start_has_auth_and_one_listen_address);
    tcase_add_test(tc, ferretdb_listens_everywhere_when_given_several_bind_ips);
    tcase_add_test(tc, ferretdb_start_with_tls_listens_on_tls_only);
    tcase_add_test(tc, ferretdb_tls_without_ca_or_key_apart);
    tcase_add_test(tc, tls_is_for_the_started_server_not_init);
    tcase_add_test(tc, mongod_start_with_tls_and_client_certificates);
    tcase_add_test(tc, mongod_start_with_tls_without_client_certificates);
    tcase_add_test(tc, mongod_prepare_joins_certificate_and_key);
    tcase_add_test(tc, login_argv_names_only_the_script);
    tcase_add_test(tc, engine_auto_falls_back_to_ferretdb_without_mongod);
    tcase_add_test(tc, log_tail_quotes_the_last_lines_of_this_run_with_the_secret_masked);
    tcase_add_test(tc, spawn_reports_exec_failures);
    tcase_add_test(tc, spawned_children_get_no_secret_variables);
    tcase_add_test(tc, loopback_only_server_is_refused_when_ranks_span_hosts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
