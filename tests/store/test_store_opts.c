/* Unit suite (no server): connection options from the configuration, the public URI, and every bad setting caught
 * by nem_store_new with a one-line message naming the option and value; an unreachable host named with its
 * timeout. What FerretDB 1.x cannot store (store/storable.h): each limit found with its field's path, what it stores
 * passed, and which buildInfo replies mean FerretDB 1.x. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/plan.h"
#include "store/storable.h"
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

static bson_t *json(const char *text)
{
    bson_error_t err;
    bson_t *doc = bson_new_from_json((const uint8_t *)text, -1, &err);
    ck_assert_msg(doc, "%s: %s", text, err.message);
    return doc;
}

/* doc is refused at path, with what starting with what. */
static void expect_unstorable(bson_t *doc, const char *path, const char *what)
{
    nem_unstorable_t why;
    char *text = bson_as_canonical_extended_json(doc, NULL);
    ck_assert_msg(!nem_storable_ferretdb(doc, &why), "accepted: %s", text);
    ck_assert_msg(strcmp(why.path, path) == 0, "%s: path '%s', want '%s'", text, why.path, path);
    ck_assert_msg(strncmp(why.what, what, strlen(what)) == 0, "%s: '%s', want '%s'", text, why.what, what);
    ck_assert_msg(strstr(why.fix, "--db-engine mongod") || strstr(why.fix, "bson_uint32_to_string"), "%s", why.fix);
    bson_free(text);
    bson_destroy(doc);
}

/* Everything FerretDB 1.24 stores (each sent to it): -0.0 (stored as 0), '$' inside a key, an empty key, arrays of
 * documents holding arrays, binary, regex, timestamp, dates, NUL inside a string, 150 levels of nesting. */
START_TEST(storable_accepts_what_ferretdb_stores)
{
    nem_unstorable_t why;
    bson_t *doc = json("{\"i\": 1, \"l\": {\"$numberLong\": \"4611686018427387904\"}, \"z\": -0.0, \"d\": 1.5e308,"
                       " \"s\": \"miNVpaKWqm\", \"a$\": 1, \"\": {\"\": 2}, \"rows\": [{\"x\": [1, 2]}, {\"y\": []}],"
                       " \"e\": [], \"n\": null, \"b\": {\"$binary\": {\"base64\": \"AAE=\", \"subType\": \"05\"}},"
                       " \"r\": {\"$regularExpression\": {\"pattern\": \"x\", \"options\": \"i\"}},"
                       " \"t\": {\"$timestamp\": {\"t\": 1, \"i\": 1}},"
                       " \"o\": {\"$oid\": \"5f1e6a6c2b3c4d5e6f708192\"},"
                       " \"dt\": {\"$date\": {\"$numberLong\": \"253370764800000\"}}, \"nul\": \"a\\u0000b\"}");
    ck_assert_msg(nem_storable_ferretdb(doc, &why), "%s %s", why.path, why.what);
    bson_destroy(doc);
    bson_t *deep = bson_new(), *inner = bson_new();
    BSON_APPEND_INT32(inner, "x", 1);
    for (int i = 0; i < 150; i++) {
        bson_reinit(deep);
        BSON_APPEND_DOCUMENT(deep, "n", inner);
        bson_destroy(inner);
        inner = bson_copy(deep);
    }
    ck_assert(nem_storable_ferretdb(deep, &why));
    bson_destroy(deep);
    bson_destroy(inner);
    bson_t empty = BSON_INITIALIZER;
    ck_assert(nem_storable_ferretdb(&empty, &why));
}
END_TEST

/* Each limit, with the path of the field that holds it. */
START_TEST(storable_refuses_each_limit)
{
    expect_unstorable(json("{\"a\": 1, \"price\": {\"$numberDouble\": \"NaN\"}}"), "price", "holds NaN");
    expect_unstorable(json("{\"rows\": [{\"p\": 1.0}, {\"p\": 2.0}, {\"p\": 3.0}, {\"p\": {\"$numberDouble\": "
                           "\"NaN\"}}]}"), "rows.3.p", "holds NaN");
    expect_unstorable(json("{\"x\": {\"y\": {\"$numberDouble\": \"Infinity\"}}}"), "x.y", "holds Infinity");
    expect_unstorable(json("{\"x\": [{\"$numberDouble\": \"-Infinity\"}]}"), "x.0", "holds -Infinity");
    expect_unstorable(json("{\"d\": {\"$numberDecimal\": \"1.5\"}}"), "d", "holds a Decimal128");
    expect_unstorable(json("{\"a\": [1, [2]]}"), "a.1", "is an array inside an array");
    expect_unstorable(json("{\"a\": [[]]}"), "a.0", "is an array inside an array");
    expect_unstorable(json("{\"a\": [{\"b\": [1, [2]]}]}"), "a.0.b.1", "is an array inside an array");
    expect_unstorable(json("{\"m\": {\"a.b\": 1}}"), "m.a.b", "has a key that contains '.'");
    expect_unstorable(json("{\"a.b\": 1}"), "a.b", "has a key that contains '.'");
    expect_unstorable(json("{\"l\": [{\"k\": {\"x.\": 1}}]}"), "l.0.k.x.", "has a key that contains '.'");
    expect_unstorable(json("{\"c\": {\"$code\": \"f()\"}}"), "c", "holds JavaScript code");
    expect_unstorable(json("{\"c\": {\"$code\": \"f()\", \"$scope\": {}}}"), "c", "holds JavaScript code");
    expect_unstorable(json("{\"k\": {\"$minKey\": 1}}"), "k", "holds MinKey");
    expect_unstorable(json("{\"k\": {\"$maxKey\": 1}}"), "k", "holds MaxKey");
    expect_unstorable(json("{\"u\": {\"$undefined\": true}}"), "u", "holds undefined");
    expect_unstorable(json("{\"s\": {\"$symbol\": \"x\"}}"), "s", "holds a symbol");
    expect_unstorable(json("{\"p\": {\"$dbPointer\": {\"$ref\": \"c\", \"$id\": {\"$oid\": "
                           "\"5f1e6a6c2b3c4d5e6f708192\"}}}}"), "p", "holds a DBPointer");
    bson_t *doc = bson_new(), sub;
    BSON_APPEND_DOCUMENT_BEGIN(doc, "x", &sub);
    BSON_APPEND_INT32(&sub, "$set", 1);
    bson_append_document_end(doc, &sub);
    expect_unstorable(doc, "x.$set", "has a key that starts with '$'");
    /* an array whose keys are not 0, 1, 2, ... (a common mistake with libbson): the array's own path */
    doc = bson_new();
    BSON_APPEND_ARRAY_BEGIN(doc, "v", &sub);
    BSON_APPEND_INT32(&sub, "0", 1);
    BSON_APPEND_INT32(&sub, "2", 2);
    bson_append_array_end(doc, &sub);
    expect_unstorable(doc, "v", "is an array whose keys are not 0, 1, 2");
    doc = bson_new();
    BSON_APPEND_ARRAY_BEGIN(doc, "v", &sub);
    BSON_APPEND_INT32(&sub, "00", 1);
    bson_append_array_end(doc, &sub);
    expect_unstorable(doc, "v", "is an array whose keys are not 0, 1, 2");
}
END_TEST

/* The path is one line of valid UTF-8 whatever the keys: control characters and invalid bytes become '?', a long
 * path is cut (never inside a character) and ends with "...". Deeper than NEM_STORABLE_MAX_DEPTH is not walked. */
START_TEST(storable_path_is_one_short_line)
{
    nem_unstorable_t why;
    bson_t *doc = bson_new(), sub;
    BSON_APPEND_DOCUMENT_BEGIN(doc, "line\nbreak\xff", &sub);
    BSON_APPEND_DOUBLE(&sub, "x", NAN);
    bson_append_document_end(doc, &sub);
    ck_assert(!nem_storable_ferretdb(doc, &why));
    ck_assert_str_eq(why.path, "line?break?.x");
    bson_destroy(doc);

    char key[200];
    memset(key, 'k', sizeof key);
    memcpy(key + 150, "\xc3\xa9\xc3\xa9\xc3\xa9", 6); /* "é" x 3 across the cut */
    key[sizeof key - 1] = '\0';
    doc = bson_new();
    BSON_APPEND_DOUBLE(doc, key, INFINITY);
    ck_assert(!nem_storable_ferretdb(doc, &why));
    size_t n = strlen(why.path);
    ck_assert_uint_lt(n, NEM_STORABLE_PATH_MAX);
    ck_assert_str_eq(why.path + n - 3, "...");
    ck_assert(bson_utf8_validate(why.path, n, false));
    bson_destroy(doc);

    /* a NaN 1000 levels down: not walked (no crash), left to the server; 300 levels down: found */
    for (int depth = 300; depth <= 1000; depth += 700) {
        bson_t *d = bson_new(), *inner = bson_new();
        BSON_APPEND_DOUBLE(inner, "x", NAN);
        for (int i = 0; i < depth; i++) {
            bson_reinit(d);
            BSON_APPEND_DOCUMENT(d, "n", inner);
            bson_destroy(inner);
            inner = bson_copy(d);
        }
        ck_assert_int_eq(nem_storable_ferretdb(d, &why), depth > NEM_STORABLE_MAX_DEPTH);
        bson_destroy(d);
        bson_destroy(inner);
    }
}
END_TEST

/* FerretDB 1.x says "ferretdbVersion"; FerretDB 2.x ("ferretdb": {"version"}) and mongod have no such limits. */
START_TEST(ferretdb_limits_from_build_info)
{
    static const struct {
        const char *reply;
        bool limits;
    } cases[] = {
        {"{\"version\": \"7.0.42\", \"ferretdbVersion\": \"v1.24.2\", \"ok\": 1.0}", true},
        {"{\"version\": \"6.0.42\", \"ferretdbVersion\": \"v0.9.0\", \"ok\": 1.0}", true},
        {"{\"version\": \"7.0.77\", \"ferretdb\": {\"version\": \"v2.1.0\", \"package\": \"deb\"}}", false},
        {"{\"version\": \"7.0.14\", \"gitVersion\": \"ce59cfc6a3c5e5c067dca0d30697edd68d4f5188\", \"ok\": 1.0}", false},
        {"{\"ok\": 1.0}", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bson_t *reply = json(cases[i].reply);
        ck_assert_msg(nem_store_ferretdb_limits_of(reply) == cases[i].limits, "%s", cases[i].reply);
        bson_destroy(reply);
    }
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
    TCase *st = tcase_create("storable");
    tcase_add_test(st, storable_accepts_what_ferretdb_stores);
    tcase_add_test(st, storable_refuses_each_limit);
    tcase_add_test(st, storable_path_is_one_short_line);
    tcase_add_test(st, ferretdb_limits_from_build_info);
    suite_add_tcase(s, st);
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
