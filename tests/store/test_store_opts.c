/* Unit suite (no server): connection options from the configuration, the public URI, and every bad setting caught
 * by nem_store_new with a one-line message naming the option and value; an unreachable host named with its
 * timeout. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/plan.h"
#include "store/store.h"

/* Resolves a command line (writable copies: the resolver scrubs passwords in argv). */
static nem_config_t *resolve(const char *const *args)
{
    char *argv[64];
    int argc = 0;
    bson_error_t err;
    nem_config_t *cfg = nem_config_new();

    argv[argc++] = bson_strdup("nemesyst");
    for (; *args; args++)
        argv[argc++] = bson_strdup(*args);
    argv[argc] = NULL;
    ck_assert_msg(nem_config_resolve(cfg, argc, argv, &err), "%s", err.message);
    ck_assert_msg(nem_config_resolve_password(cfg, &err), "%s", err.message);
    for (int i = 0; i < argc; i++)
        bson_free(argv[i]);
    return cfg;
}

static nem_store_opts_t base_opts(void)
{
    nem_store_opts_t o = {.host = "127.0.0.1", .port = 27017, .db_name = "nemtest", .max_staleness = -1};
    return o;
}

/* nem_store_new must fail with code and a message containing each of the given fragments. */
static void expect_refused(const nem_store_opts_t *o, uint32_t code, const char *frag1, const char *frag2)
{
    bson_error_t err;
    nem_store_t *s = nem_store_new(o, &err);
    ck_assert_ptr_null(s);
    ck_assert_uint_eq(err.domain, NEM_ERROR_STORE);
    ck_assert_uint_eq(err.code, code);
    ck_assert_msg(strstr(err.message, frag1), "'%s' not in: %s", frag1, err.message);
    ck_assert_msg(!frag2 || strstr(err.message, frag2), "'%s' not in: %s", frag2, err.message);
    ck_assert_ptr_null(strchr(err.message, '\n'));
}

START_TEST(every_connection_option_is_mapped)
{
    const char *args[] = {"--db-ip", "db.example", "--db-port", "27018", "--db-name", "science",
                          "--db-user-name", "alice", "--db-password", "pa:ss@word", "--db-authentication",
                          "SCRAM-SHA-256", "--db-authentication-database", "admin", "--db-replica-set-name", "rs0",
                          "--db-replica-read-preference", "secondaryPreferred", "--db-replica-max-staleness", "120",
                          "--db-tls", "--db-tls-ca-file", "/ca.pem", "--db-tls-certificate-key-file", "/me.pem",
                          "--db-tls-certificate-key-file-password", "keypw", "--db-tls-crl-file", "/crl.pem", NULL};
    nem_config_t *cfg = resolve(args);
    nem_store_opts_t o;

    nem_strv_t paths = {0};
    nem_store_opts_from_config(&o, cfg, &paths);
    ck_assert_str_eq(o.host, "db.example");
    ck_assert_int_eq(o.port, 27018);
    ck_assert_str_eq(o.db_name, "science");
    ck_assert_str_eq(o.user, "alice");
    ck_assert_str_eq(o.password, "pa:ss@word");
    ck_assert_str_eq(o.auth_mechanism, "SCRAM-SHA-256");
    ck_assert_str_eq(o.auth_db, "admin");
    ck_assert_str_eq(o.replica_set, "rs0");
    ck_assert_str_eq(o.read_preference, "secondaryPreferred");
    ck_assert_int_eq(o.max_staleness, 120);
    ck_assert(o.tls);
    ck_assert_str_eq(o.tls_ca_file, "/ca.pem");
    ck_assert_str_eq(o.tls_cert_key_file, "/me.pem");
    ck_assert_str_eq(o.tls_cert_key_password, "keypw");
    ck_assert_str_eq(o.tls_crl_file, "/crl.pem");
    nem_strv_free(&paths);
    nem_config_destroy(cfg);
}
END_TEST

START_TEST(defaults_mean_no_auth_no_tls)
{
    const char *args[] = {NULL};
    nem_config_t *cfg = resolve(args);
    nem_store_opts_t o;

    nem_strv_t paths = {0};
    nem_store_opts_from_config(&o, cfg, &paths);
    ck_assert_str_eq(o.host, "localhost");
    ck_assert_int_eq(o.port, 65535);
    ck_assert_str_eq(o.db_name, "nemesyst");
    ck_assert_ptr_null(o.user);
    ck_assert_ptr_null(o.password);
    ck_assert_ptr_null(o.auth_db);
    ck_assert_ptr_null(o.replica_set);
    ck_assert_int_eq(o.max_staleness, -1);
    ck_assert(!o.tls);
    ck_assert_ptr_null(o.tls_ca_file);
    nem_strv_free(&paths);
    nem_config_destroy(cfg);
}
END_TEST

START_TEST(public_uri_has_every_setting_but_no_secret)
{
    char dir[] = "/tmp/nem-test-store.XXXXXX";
    char *ca, *key;
    nem_store_opts_t o = base_opts();
    bson_error_t err;
    nem_store_t *s;
    const char *uri;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    ca = bson_strdup_printf("%s/ca file.pem", dir);
    key = bson_strdup_printf("%s/me.pem", dir);
    fclose(fopen(ca, "w"));
    fclose(fopen(key, "w"));
    o.user = "alice";
    o.password = "TopSecret42";
    o.auth_db = "admin";
    o.auth_mechanism = "SCRAM-SHA-1";
    o.replica_set = "rs0";
    o.read_preference = "nearest";
    o.max_staleness = 90;
    o.tls_ca_file = ca;
    o.tls_cert_key_file = key;
    o.tls_cert_key_password = "KeySecret77";
    s = nem_store_new(&o, &err);
    ck_assert_msg(s != NULL, "%s", err.message);
    uri = nem_store_public_uri(s);
    ck_assert_ptr_null(strstr(uri, "TopSecret42"));
    ck_assert_ptr_null(strstr(uri, "KeySecret77"));
    ck_assert_msg(strncmp(uri, "mongodb://alice@127.0.0.1:27017/nemtest?", 40) == 0, "%s", uri);
    ck_assert_msg(strstr(uri, "authSource=admin&authMechanism=SCRAM-SHA-1&replicaSet=rs0&readPreference=nearest"
                              "&maxStalenessSeconds=90&tls=true&tlsCAFile="), "%s", uri);
    ck_assert_msg(strstr(uri, "ca%20file.pem"), "%s", uri);
    ck_assert_str_eq(nem_store_host_port(s), "127.0.0.1:27017");
    ck_assert_str_eq(nem_store_db_name(s), "nemtest");
    nem_store_destroy(s);
    unlink(ca);
    unlink(key);
    rmdir(dir);
    bson_free(ca);
    bson_free(key);
}
END_TEST

START_TEST(ipv6_host_is_bracketed_and_user_escaped)
{
    nem_store_opts_t o = base_opts();
    bson_error_t err;
    nem_store_t *s;
    o.host = "::1";
    o.user = "sam@lab";
    s = nem_store_new(&o, &err);
    ck_assert_msg(s != NULL, "%s", err.message);
    ck_assert_str_eq(nem_store_host_port(s), "[::1]:27017");
    /* The user name is escaped so the URI stays parseable. */
    ck_assert_str_eq(nem_store_public_uri(s), "mongodb://sam%40lab@[::1]:27017/nemtest?authSource=nemtest"
                                              "&serverSelectionTimeoutMS=10000");
    nem_store_destroy(s);
}
END_TEST

START_TEST(bad_read_preference)
{
    nem_store_opts_t o = base_opts();
    o.read_preference = "sometimes";
    expect_refused(&o, NEM_STORE_EOPTION, "--db-replica-read-preference 'sometimes'", "secondaryPreferred");
}
END_TEST

START_TEST(max_staleness_with_primary)
{
    nem_store_opts_t o = base_opts();
    o.read_preference = "primary";
    o.max_staleness = 120;
    expect_refused(&o, NEM_STORE_EOPTION, "--db-replica-max-staleness 120", "primary");
}
END_TEST

START_TEST(max_staleness_too_small)
{
    nem_store_opts_t o = base_opts();
    o.read_preference = "secondary";
    o.max_staleness = 10;
    expect_refused(&o, NEM_STORE_EOPTION, "--db-replica-max-staleness 10", "at least 90");
}
END_TEST

START_TEST(missing_tls_files)
{
    nem_store_opts_t o = base_opts();
    o.tls = true;
    o.tls_ca_file = "/nonexistent/ca.pem";
    expect_refused(&o, NEM_STORE_EOPTION, "--db-tls-ca-file '/nonexistent/ca.pem'", "No such file");
    o.tls_ca_file = NULL;
    o.tls_cert_key_file = "/nonexistent/me.pem";
    expect_refused(&o, NEM_STORE_EOPTION, "--db-tls-certificate-key-file '/nonexistent/me.pem'", "No such file");
    o.tls_cert_key_file = NULL;
    o.tls_crl_file = "/nonexistent/crl.pem";
    expect_refused(&o, NEM_STORE_EOPTION, "--db-tls-crl-file '/nonexistent/crl.pem'", "No such file");
}
END_TEST

START_TEST(bad_port_host_db_mechanism)
{
    nem_store_opts_t o = base_opts();
    o.port = 70000;
    expect_refused(&o, NEM_STORE_EOPTION, "--db-port 70000", NULL);
    o = base_opts();
    o.host = "";
    expect_refused(&o, NEM_STORE_EOPTION, "--db-ip", NULL);
    o = base_opts();
    o.db_name = "";
    expect_refused(&o, NEM_STORE_EOPTION, "--db-name", NULL);
    o = base_opts();
    o.user = "alice";
    o.auth_mechanism = "MAGIC";
    expect_refused(&o, NEM_STORE_EOPTION, "--db-authentication 'MAGIC'", NULL);
}
END_TEST

START_TEST(unreachable_host_names_address_and_timeout)
{
    nem_store_opts_t o = base_opts();
    bson_error_t err;
    nem_store_t *s;
    o.port = 1; /* nothing listens on port 1 */
    o.connect_timeout_ms = 2000;
    s = nem_store_new(&o, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert(!nem_store_ping(s, &err));
    ck_assert_uint_eq(err.domain, NEM_ERROR_STORE);
    ck_assert_uint_eq(err.code, NEM_STORE_ECONNECT);
    ck_assert_msg(strstr(err.message, "cannot reach MongoDB at 127.0.0.1:1 within 2000 ms: "), "%s", err.message);
    nem_store_destroy(s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("store-opts");
    TCase *tc = tcase_create("opts");
    tcase_add_test(tc, every_connection_option_is_mapped);
    tcase_add_test(tc, defaults_mean_no_auth_no_tls);
    tcase_add_test(tc, public_uri_has_every_setting_but_no_secret);
    tcase_add_test(tc, ipv6_host_is_bracketed_and_user_escaped);
    tcase_add_test(tc, bad_read_preference);
    tcase_add_test(tc, max_staleness_with_primary);
    tcase_add_test(tc, max_staleness_too_small);
    tcase_add_test(tc, missing_tls_files);
    tcase_add_test(tc, bad_port_host_db_mechanism);
    tcase_add_test(tc, unreachable_host_names_address_and_timeout);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;
    mongoc_init();
    sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    mongoc_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
