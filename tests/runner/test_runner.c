/* Runners: each kind of stage script started in a child, its items and verdicts read back.
 * Run by tests/runner/runner.sh, which provides a FerretDB (NEM_TEST_URI) and the fixture locations. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <mongoc/mongoc.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "stage/runner/runner.h"
#define NEMESYST_NO_API_STAMP /* for its version only: this is no plugin */
#include "nemesyst.h"

#define TEST_PASSWORD "s3cret-pw-4711"
/* this nemesyst's major.minor, as the plugin host names it */
#define NEM_T_STR(x) #x
#define NEM_T_XSTR(x) NEM_T_STR(x)
#define NEM_T_MAJOR_MINOR NEM_T_XSTR(NEMESYST_VERSION_MAJOR) "." NEM_T_XSTR(NEMESYST_VERSION_MINOR)

typedef struct {
    bson_t items; /* {"0": {kind, doc, path, temp, where, bytes}, ...} */
    uint32_t n;
    bool ok;
    bson_error_t err;
} result_t;

static char g_workdir[256], g_log[300], g_db[64];

static void setup(void)
{
    snprintf(g_workdir, sizeof g_workdir, "/tmp/nem-runner-test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_workdir));
    snprintf(g_log, sizeof g_log, "%s/host.log", g_workdir);
    snprintf(g_db, sizeof g_db, "runner_%d", (int)getpid());
    bson_error_t err;
    ck_assert_msg(nem_log_open_file(g_log, &err), "%s", err.message);
    nem_log_set_level(NEM_LOG_DEBUG);
}

static void teardown(void)
{
    char cmd[400];
    nem_log_close();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_workdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", g_workdir);
}

static char *fixture(const char *name)
{
    const char *dir = getenv("NEM_RUNNER_FIXTURES");
    ck_assert_ptr_nonnull(dir);
    return bson_strdup_printf("%s/%s", dir, name);
}

static char *plugin_path(void)
{
    const char *p = getenv("NEM_RUNNER_PLUGIN");
    ck_assert_ptr_nonnull(p);
    return bson_strdup(p);
}

static void spec_init(nem_script_spec_t *spec, const char *path, const bson_t *args)
{
    memset(spec, 0, sizeof *spec);
    spec->path = path;
    spec->stage = "clean";
    spec->run_id = "run-test";
    spec->workdir = g_workdir;
    spec->args = args;
    spec->db_uri = getenv("NEM_TEST_URI");
    spec->db_name = g_db;
    spec->rank = 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = bson_malloc0(64 << 20);
    *len = fread(buf, 1, (64 << 20) - 1, f);
    fclose(f);
    return buf;
}

/* Records the item and, for models, the file's bytes (then removes a temp file as the host would). */
static bool collect(void *ud, nem_item_t *item, bson_error_t *err)
{
    result_t *res = ud;
    char key[16];
    const char *k;
    bson_t rec;
    bson_uint32_to_string(res->n++, &k, key, sizeof key);
    BSON_APPEND_DOCUMENT_BEGIN(&res->items, k, &rec);
    BSON_APPEND_UTF8(&rec, "kind", item->kind == NEM_ITEM_DOC          ? "doc"
                                   : item->kind == NEM_ITEM_MODEL      ? "model"
                                   : item->kind == NEM_ITEM_METRIC     ? "metric"
                                   : item->kind == NEM_ITEM_CODE       ? "code"
                                   : item->kind == NEM_ITEM_CHECKPOINT ? "checkpoint"
                                   : item->kind == NEM_ITEM_CHECKPOINT_COMMIT ? "checkpoint_commit"
                                                                       : "consumed");
    BSON_APPEND_DOCUMENT(&rec, "doc", &item->doc);
    BSON_APPEND_INT64(&rec, "where", (int64_t)item->where);
    if (item->path) {
        size_t len = 0;
        char *bytes = slurp(item->path, &len);
        BSON_APPEND_UTF8(&rec, "bytes", bytes ? bytes : "");
        BSON_APPEND_BOOL(&rec, "temp", item->path_is_temp);
        if (item->path_is_temp)
            unlink(item->path);
        bson_free(bytes);
    }
    bson_append_document_end(&res->items, &rec);
    nem_item_clear(item);
    return true;
}

/* The worker's loop in miniature: poll every runner's fds, pump the ready ones, finish at EOF or timeout. */
static void drive(nem_runner_t **rs, result_t *res, size_t n)
{
    bool done[16] = {false};
    size_t left = n;
    while (left > 0) {
        struct pollfd pfds[48];
        size_t np = 0;
        int timeout = -1;
        for (size_t i = 0; i < n; i++) {
            if (done[i])
                continue;
            int fds[3];
            size_t k = nem_runner_fds(rs[i], fds);
            for (size_t j = 0; j < k; j++)
                pfds[np++] = (struct pollfd){.fd = fds[j], .events = POLLIN};
            int ms = nem_runner_ms_left(rs[i]);
            if (ms >= 0 && (timeout < 0 || ms < timeout))
                timeout = ms;
        }
        poll(pfds, np, timeout);
        for (size_t i = 0; i < n; i++) {
            bool eof = false;
            if (done[i])
                continue;
            bool ok = nem_runner_pump(rs[i], collect, &res[i], &eof, &res[i].err);
            if (!ok || eof || nem_runner_ms_left(rs[i]) == 0) {
                res[i].ok = nem_runner_finish(rs[i], &res[i].err);
                done[i] = true;
                left--;
            }
        }
    }
}

static void result_init(result_t *res)
{
    memset(res, 0, sizeof *res);
    bson_init(&res->items);
}

static void run_spec(const nem_script_spec_t *spec, result_t *res)
{
    bson_error_t err;
    result_init(res);
    nem_runner_t *r = nem_runner_start(spec, &err);
    ck_assert_msg(r != NULL, "start: %s", err.message);
    drive(&r, res, 1);
    nem_runner_destroy(r);
}

static void run_path(const char *path, result_t *res)
{
    nem_script_spec_t spec;
    spec_init(&spec, path, NULL);
    run_spec(&spec, res);
}

/* Item i as a document, a view into res->items (a static bson_t cannot be returned by value: it points into
 * itself). */
#define ITEM(name, res, i) \
    bson_t name;           \
    item_at(res, i, &name)

static void item_at(const result_t *res, uint32_t i, bson_t *out)
{
    char key[16];
    const char *k;
    bson_iter_t it;
    const uint8_t *data;
    uint32_t len;
    bson_uint32_to_string(i, &k, key, sizeof key);
    ck_assert_msg(bson_iter_init_find(&it, &res->items, k), "no item %u", i);
    bson_iter_document(&it, &len, &data);
    ck_assert(bson_init_static(out, data, len));
}

static const char *str_at(const bson_t *doc, const char *dotted)
{
    bson_iter_t it, f;
    ck_assert(bson_iter_init(&it, doc));
    ck_assert_msg(bson_iter_find_descendant(&it, dotted, &f) && BSON_ITER_HOLDS_UTF8(&f), "no string %s", dotted);
    return bson_iter_utf8(&f, NULL);
}

static int64_t int_at(const bson_t *doc, const char *dotted)
{
    bson_iter_t it, f;
    ck_assert(bson_iter_init(&it, doc));
    ck_assert_msg(bson_iter_find_descendant(&it, dotted, &f) && BSON_ITER_HOLDS_NUMBER(&f), "no number %s", dotted);
    return bson_iter_as_int64(&f);
}

static bool bool_at(const bson_t *doc, const char *dotted)
{
    bson_iter_t it, f;
    ck_assert(bson_iter_init(&it, doc));
    ck_assert_msg(bson_iter_find_descendant(&it, dotted, &f) && BSON_ITER_HOLDS_BOOL(&f), "no bool %s", dotted);
    return bson_iter_bool(&f);
}

static char *host_log(void)
{
    size_t len;
    char *s = slurp(g_log, &len);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* ---------------------------------------------------------------- executables */

START_TEST(exec_json_lines_become_documents_models_and_consumed_records)
{
    char *path = fixture("emit_json.sh");
    result_t res;
    run_path(path, &res);
    ck_assert_msg(res.ok, "%s", res.err.message);
    ck_assert_uint_eq(res.n, 4);
    ITEM(a, &res, 0);
    ITEM(b, &res, 1);
    ITEM(m, &res, 2);
    ITEM(c, &res, 3);
    bson_iter_t it;
    ck_assert_str_eq(str_at(&a, "kind"), "doc");
    ck_assert_int_eq(int_at(&a, "where"), 1);
    ck_assert_int_eq(int_at(&a, "doc.big"), 9007199254740993LL);
    ck_assert(bson_iter_init(&it, &a) && bson_iter_find_descendant(&it, "doc.when", &it) && BSON_ITER_HOLDS_DATE_TIME(&it));
    ck_assert_int_eq(bson_iter_date_time(&it), 1577934245000LL);
    ck_assert_int_eq(int_at(&b, "where"), 3); /* line 2 was blank */
    ck_assert_str_eq(str_at(&b, "doc.stage"), "clean");
    ck_assert_str_eq(str_at(&b, "doc.run"), "run-test");
    ck_assert_str_eq(str_at(&b, "doc.db"), g_db);
    ck_assert_str_eq(str_at(&m, "kind"), "model");
    ck_assert_str_eq(str_at(&m, "bytes"), "model-bytes");
    ck_assert(bool_at(&m, "temp"));
    ck_assert(bson_iter_init(&it, &m) && bson_iter_find_descendant(&it, "doc.loss", &it));
    ck_assert(bson_iter_as_double(&it) == 0.5);
    ck_assert_str_eq(str_at(&c, "kind"), "consumed");
    ck_assert_str_eq(str_at(&c, "doc.collection"), "c");
    ck_assert_int_eq(int_at(&c, "doc.count"), 3);
    char *log = host_log();
    ck_assert_msg(strstr(log, "emit_json.sh #0 (rank 0): hello from stderr"), "log: %s", log);
    ck_assert_msg(strstr(log, "warn") && strstr(log, ": a warning"), "log: %s", log);
    bson_free(log);
    bson_destroy(&res.items);
    bson_free(path);
}
END_TEST

/* One JSON reader serves a whole stream: every line still becomes the document a fresh parse of that line gives,
 * with brackets and quotes inside strings, a line longer than the reader's buffer, and lines that end in spaces. */
START_TEST(exec_json_stream_lines_parse_as_each_line_alone)
{
    char *big = bson_malloc(40000);
    memset(big, 'x', 39999);
    big[39999] = '\0';
    char *lines[] = {
        "{\"s\": \"{not: a doc}\", \"t\": \"]]}}\"}",
        "{\"q\": \"a \\\"quoted\\\" {brace\", \"a\": [[1, 2], {\"b\": [3]}], \"e\": {}}",
        "  {\"u\": \"\\u00e9\\u4e2d\", \"n\": null, \"f\": -1.5e3, \"bool\": true}  ",
        NULL, /* the long line */
        "{\"after\": \"the long line\", \"d\": {\"$numberDecimal\": \"1.10\"}}",
        "{}",
    };
    char *long_line = bson_strdup_printf("{\"big\": \"%s\", \"tail\": [1, {\"k\": \"}\"}]}", big);
    lines[3] = long_line;
    size_t nl = sizeof lines / sizeof lines[0];
    char *data = bson_strdup_printf("%s/lines.json", g_workdir), *path = bson_strdup_printf("%s/cat.sh", g_workdir);
    FILE *f = fopen(data, "w");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < nl; i++)
        fprintf(f, "%s\n", lines[i]);
    fclose(f);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/bin/sh\nexec cat '%s'\n", data);
    fclose(f);
    ck_assert_int_eq(chmod(path, 0700), 0);
    result_t res;
    run_path(path, &res);
    ck_assert_msg(res.ok, "%s", res.err.message);
    ck_assert_uint_eq(res.n, nl);
    for (size_t i = 0; i < nl; i++) {
        bson_error_t jerr;
        bson_t *want = bson_new_from_json((const uint8_t *)lines[i], -1, &jerr);
        ck_assert_msg(want, "line %zu: %s", i + 1, jerr.message);
        bson_t got;
        bson_iter_t it;
        uint32_t len;
        const uint8_t *buf;
        char key[16];
        const char *k;
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        ck_assert(bson_iter_init_find(&it, &res.items, k) && bson_iter_recurse(&it, &it) && bson_iter_find(&it, "doc"));
        bson_iter_document(&it, &len, &buf);
        ck_assert(bson_init_static(&got, buf, len));
        ck_assert_msg(bson_equal(&got, want), "line %zu differs", i + 1);
        bson_destroy(want);
    }
    bson_destroy(&res.items);
    bson_free(long_line);
    bson_free(big);
    bson_free(data);
    bson_free(path);
}
END_TEST

START_TEST(exec_bson_stream_after_magic_line)
{
    char *path = fixture("emit_bson");
    result_t res;
    run_path(path, &res);
    ck_assert_msg(res.ok, "%s", res.err.message);
    ck_assert_uint_eq(res.n, 3);
    ITEM(a, &res, 0);
    ITEM(m, &res, 1);
    ITEM(b, &res, 2);
    ck_assert_int_eq(int_at(&a, "doc.i"), 1);
    ck_assert_int_eq(int_at(&a, "where"), 15); /* right after "#nemesyst:bson\n" */
    ck_assert_str_eq(str_at(&m, "bytes"), "abc");
    ck_assert_str_eq(str_at(&m, "doc.k"), "v");
    ck_assert(!bool_at(&m, "temp"));
    ck_assert_int_eq(int_at(&b, "doc.i"), 2);
    bson_destroy(&res.items);
    bson_free(path);
}
END_TEST

static bool proc_file_has(pid_t pid, const char *what, const char *needle)
{
    char path[64];
    size_t len;
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
    char *s = slurp(path, &len);
    ck_assert_ptr_nonnull(s);
    bool found = false;
    for (size_t i = 0; i + strlen(needle) <= len && !found; i++)
        found = memcmp(s + i, needle, strlen(needle)) == 0;
    bson_free(s);
    return found;
}

/* The password reaches the script through its pipe only: never argv, never the environment, not even through
 * the N_DB_PASSWORD variable the host may have read it from. */
static void check_password_handover(const char *path)
{
    nem_script_spec_t spec;
    result_t res;
    bson_error_t err;
    setenv("N_DB_PASSWORD", TEST_PASSWORD, 1);
    spec_init(&spec, path, NULL);
    spec.password = TEST_PASSWORD;
    result_init(&res);
    nem_runner_t *r = nem_runner_start(&spec, &err);
    ck_assert_msg(r != NULL, "%s", err.message);
    ck_assert(!proc_file_has(nem_runner_pid(r), "environ", TEST_PASSWORD));
    ck_assert(!proc_file_has(nem_runner_pid(r), "cmdline", TEST_PASSWORD));
    drive(&r, &res, 1);
    nem_runner_destroy(r);
    ck_assert_msg(res.ok, "%s", res.err.message);
    ITEM(d, &res, 0);
    ck_assert_int_eq(int_at(&d, "doc.pw_len"), (int64_t)strlen(TEST_PASSWORD));
    ck_assert(!bool_at(&d, "doc.in_env"));
    ck_assert(!bool_at(&d, "doc.in_cmd"));
    ck_assert_str_eq(str_at(&d, "doc.n_db_password"), "unset");
    bson_destroy(&res.items);
}

START_TEST(exec_password_only_through_its_pipe)
{
    char *path = fixture("password.sh");
    check_password_handover(path);
    bson_free(path);
}
END_TEST

/* Half a line is buffered, not parsed and not waited for: pump returns at once. */
START_TEST(pump_never_blocks_on_a_partial_line)
{
    char *path = fixture("partial.sh");
    nem_script_spec_t spec;
    result_t res;
    bson_error_t err;
    bool eof = false;
    spec_init(&spec, path, NULL);
    result_init(&res);
    nem_runner_t *r = nem_runner_start(&spec, &err);
    ck_assert_ptr_nonnull(r);
    usleep(200000); /* the half line is in the pipe now */
    for (int i = 0; i < 20; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        ck_assert(nem_runner_pump(r, collect, &res, &eof, &err));
        clock_gettime(CLOCK_MONOTONIC, &b);
        ck_assert_int_lt((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000, 50);
        ck_assert(!eof);
        ck_assert_uint_eq(res.n, 0);
    }
    drive(&r, &res, 1);
    nem_runner_destroy(r);
    ck_assert_msg(res.ok, "%s", res.err.message);
    ck_assert_uint_eq(res.n, 1);
    ITEM(d, &res, 0);
    ck_assert_int_eq(int_at(&d, "doc.a"), 1);
    bson_destroy(&res.items);
    bson_free(path);
}
END_TEST

/* Three scripts that each sleep 1 s run side by side under one polling loop. */
START_TEST(runners_run_concurrently_under_one_poll_loop)
{
    char *path = fixture("sleep_emit.sh");
    nem_runner_t *rs[3];
    result_t res[3];
    bson_error_t err;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (size_t i = 0; i < 3; i++) {
        nem_script_spec_t spec;
        spec_init(&spec, path, NULL);
        spec.position = i;
        result_init(&res[i]);
        rs[i] = nem_runner_start(&spec, &err);
        ck_assert_ptr_nonnull(rs[i]);
    }
    drive(rs, res, 3);
    clock_gettime(CLOCK_MONOTONIC, &b);
    ck_assert_int_lt(b.tv_sec - a.tv_sec, 3);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_msg(res[i].ok, "%s", res[i].err.message);
        ITEM(d, &res[i], 0);
        ck_assert_int_eq(int_at(&d, "doc.i"), (int64_t)i);
        nem_runner_destroy(rs[i]);
        bson_destroy(&res[i].items);
    }
    bson_free(path);
}
END_TEST

START_TEST(missing_script_fails_to_start)
{
    nem_script_spec_t spec;
    bson_error_t err;
    spec_init(&spec, "/no/such/script.sh", NULL);
    ck_assert_ptr_null(nem_runner_start(&spec, &err));
    ck_assert_int_eq(err.domain, NEM_ERROR_RUNNER);
    ck_assert_int_eq(err.code, NEM_RUNNER_ESPAWN);
    ck_assert_msg(strstr(err.message, "/no/such/script.sh") && strstr(err.message, "No such file"), "%s", err.message);
}
END_TEST

static bool refuse_second(void *ud, nem_item_t *item, bson_error_t *err)
{
    result_t *res = ud;
    if (res->n == 1) {
        bson_set_error(err, 42, 7, "host refuses item");
        return false;
    }
    return collect(ud, item, err);
}

START_TEST(callback_refusal_stops_the_script)
{
    char *path = fixture("emit_json.sh");
    nem_script_spec_t spec;
    result_t res;
    bson_error_t err;
    bool eof = false;
    spec_init(&spec, path, NULL);
    result_init(&res);
    nem_runner_t *r = nem_runner_start(&spec, &err);
    ck_assert_ptr_nonnull(r);
    while (nem_runner_pump(r, refuse_second, &res, &eof, &err) && !eof)
        usleep(1000);
    /* the host's own error comes back unchanged: its domain and code, not a runner error */
    ck_assert_str_eq(err.message, "host refuses item");
    ck_assert_int_eq(err.domain, 42);
    ck_assert_int_eq(err.code, 7);
    ck_assert(!nem_runner_finish(r, &res.err));
    ck_assert_str_eq(res.err.message, "host refuses item");
    ck_assert_int_eq(res.err.domain, 42);
    ck_assert_int_eq(res.err.code, 7);
    nem_runner_destroy(r);
    bson_destroy(&res.items);
    bson_free(path);
}
END_TEST

/* ---------------------------------------------------------------- python */

static bson_t *learn_args(void)
{
    return BCON_NEW("data-collection", "[", BCON_UTF8("cleaned"), "]", "dl-batch-size", "[", BCON_INT64(7), "]",
                    "dl-epochs", "[", BCON_INT64(2), "]", "dl-data-collection", "[", BCON_UTF8("points"), "]",
                    "dl-data-pipeline", "[", BCON_UTF8("[{\"$match\": {\"n\": {\"$lt\": 50}}}, {\"$sort\": {\"n\": 1}}]"), "]",
                    "dl-output-model-collection", "[", BCON_UTF8("models"), "]", "db-name", BCON_UTF8(g_db));
}

static mongoc_client_t *client(void)
{
    mongoc_client_t *c = mongoc_client_new(getenv("NEM_TEST_URI"));
    ck_assert_ptr_nonnull(c);
    mongoc_client_set_error_api(c, MONGOC_ERROR_API_VERSION_2);
    return c;
}

/* 60 documents {n: 0..59}: the learners' pipeline takes n < 50. */
static void insert_points(void)
{
    mongoc_client_t *c = client();
    mongoc_collection_t *coll = mongoc_client_get_collection(c, g_db, "points");
    bson_error_t err;
    for (int i = 0; i < 60; i++) {
        bson_t *d = BCON_NEW("n", BCON_INT32(i), "sq", BCON_DOUBLE(i * 0.5));
        ck_assert_msg(mongoc_collection_insert_one(coll, d, NULL, NULL, &err), "%s", err.message);
        bson_destroy(d);
    }
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(c);
}

/* What the lineage digest must be: sha256 over the pipeline's documents, as the server sends them. */
static void expected_digest(char hex[65], int64_t *count)
{
    mongoc_client_t *c = client();
    mongoc_collection_t *coll = mongoc_client_get_collection(c, g_db, "points");
    bson_t *pipeline = BCON_NEW("0", "{", "$match", "{", "n", "{", "$lt", BCON_INT32(50), "}", "}", "}",
                                "1", "{", "$sort", "{", "n", BCON_INT32(1), "}", "}");
    mongoc_cursor_t *cur = mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    const bson_t *doc;
    unsigned char md[32];
    unsigned int len;
    EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
    *count = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        EVP_DigestUpdate(sha, bson_get_data(doc), doc->len);
        (*count)++;
    }
    EVP_DigestFinal_ex(sha, md, &len);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    EVP_MD_CTX_free(sha);
    mongoc_cursor_destroy(cur);
    bson_destroy(pipeline);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(c);
}

static void upload_model(const char *bucket, const char *bytes_path)
{
    mongoc_client_t *c = client();
    mongoc_database_t *db = mongoc_client_get_database(c, g_db);
    bson_t *opts = BCON_NEW("bucketName", BCON_UTF8(bucket));
    bson_error_t err;
    mongoc_gridfs_bucket_t *gb = mongoc_gridfs_bucket_new(db, opts, NULL, &err);
    ck_assert_msg(gb != NULL, "%s", err.message);
    mongoc_stream_t *src = mongoc_stream_file_new_for_path(bytes_path, O_RDONLY, 0);
    ck_assert_ptr_nonnull(src);
    ck_assert_msg(mongoc_gridfs_bucket_upload_from_stream(gb, "model", src, NULL, NULL, &err), "%s", err.message);
    mongoc_stream_destroy(src);
    mongoc_gridfs_bucket_destroy(gb);
    bson_destroy(opts);
    mongoc_database_destroy(db);
    mongoc_client_destroy(c);
}

START_TEST(python_cleaner_yields_documents_and_prints_to_the_log)
{
    char *path = fixture("py/cleaner.py");
    bson_t *args = learn_args();
    nem_script_spec_t spec;
    result_t res;
    spec_init(&spec, path, args);
    run_spec(&spec, &res);
    ck_assert_msg(res.ok, "%s", res.err.message);
    ck_assert_uint_eq(res.n, 5);
    ITEM(d, &res, 4);
    ck_assert_int_eq(int_at(&d, "doc.img_num"), 4);
    ck_assert_str_eq(str_at(&d, "doc.collection"), "cleaned");
    ck_assert_int_eq(int_at(&d, "doc.x.1"), 8);
    bson_iter_t it;
    ck_assert(bson_iter_init(&it, &d) && bson_iter_find_descendant(&it, "doc.utc_import_time", &it) &&
              BSON_ITER_HOLDS_DATE_TIME(&it));
    char *log = host_log();
    ck_assert_msg(strstr(log, "cleaner.py #0 (rank 0): importing toy dataset..."), "log: %s", log);
    ck_assert_msg(strstr(log, ": done"), "log: %s", log);
    bson_free(log);
    bson_destroy(&res.items);
    bson_destroy(args);
    bson_free(path);
}
END_TEST

START_TEST(python_learner_batches_without_empty_last_batch_and_reports_lineage)
{
    char *path = fixture("py/learner.py");
    bson_t *args = learn_args();
    nem_script_spec_t spec;
    result_t res;
    char hex[65];
    int64_t count;
    insert_points();
    expected_digest(hex, &count);
    ck_assert_int_eq(count, 50);
    spec_init(&spec, path, args);
    spec.stage = "learn";
    run_spec(&spec, &res);
    ck_assert_msg(res.ok, "%s", res.err.message);
    ck_assert_uint_eq(res.n, 3); /* one consumed record for two identical epochs, what it ran, one model */
    ITEM(c, &res, 0);
    ITEM(code, &res, 1);
    ITEM(m, &res, 2);
    ck_assert_str_eq(str_at(&code, "kind"), "code"); /* the adapter says what the script ran before its model */
    ck_assert_msg(strstr(str_at(&code, "doc.python"), "."), "the interpreter's version");
    ck_assert_str_eq(str_at(&c, "kind"), "consumed");
    ck_assert_str_eq(str_at(&c, "doc.collection"), "points");
    ck_assert_int_eq(int_at(&c, "doc.count"), 50);
    ck_assert_str_eq(str_at(&c, "doc.digest"), hex);
    ck_assert(bool_at(&c, "doc.complete"));
    ck_assert_int_eq(int_at(&c, "doc.pipeline.0.$match.n.$lt"), 50);
    ck_assert_str_eq(str_at(&m, "kind"), "model");
    ck_assert(bool_at(&m, "temp"));
    ck_assert_str_eq(str_at(&m, "doc.model"), "toy_example");
    /* 50 documents in batches of 7: seven full batches and a last one of 1, twice */
    for (int i = 0; i < 16; i++) {
        char key[40];
        snprintf(key, sizeof key, "doc.batch_sizes.%d", i);
        ck_assert_int_eq(int_at(&m, key), i % 8 == 7 ? 1 : 7);
    }
    bson_iter_t it;
    ck_assert(bson_iter_init(&it, &m) && !bson_iter_find_descendant(&it, "doc.batch_sizes.16", &it));
    bson_destroy(&res.items);
    bson_destroy(args);
    bson_free(path);
}
END_TEST

START_TEST(python_predictor_reads_the_newest_model_with_getfiles)
{
    char *path = fixture("py/predictor.py");
    bson_t *args = learn_args();
    nem_script_spec_t spec;
    result_t res;
    char model[400];
    /* pickle.dumps({"weights": [21]}) made by the test's own python */
    snprintf(model, sizeof model, "%s/model.pkl", g_workdir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s -c 'import pickle,sys; sys.stdout.buffer.write(pickle.dumps({\"weights\": [21]}))' > %s",
             getenv("PYTHON3") ? getenv("PYTHON3") : "/usr/bin/python3", model);
    ck_assert_int_eq(system(cmd), 0);
    upload_model("models", model);
    spec_init(&spec, path, args);
    spec.stage = "predict";
    run_spec(&spec, &res);
    ck_assert_msg(res.ok, "%s", res.err.message);
    ck_assert_uint_ge(res.n, 2);
    /* Loading the model is reported first (the host makes later predictions reference it), then the prediction. */
    ITEM(used, &res, 0);
    ck_assert_str_eq(str_at(&used, "kind"), "consumed");
    ck_assert_str_eq(str_at(&used, "doc.model.bucket"), "models");
    ITEM(p, &res, 1);
    ck_assert_str_eq(str_at(&p, "kind"), "doc");
    ck_assert_int_eq(int_at(&p, "doc.prediction"), 42);
    bson_iter_t it;
    ck_assert(bson_iter_init(&it, &p) && bson_iter_find_descendant(&it, "doc.model_id", &it) && BSON_ITER_HOLDS_OID(&it));
    bson_destroy(&res.items);
    bson_destroy(args);
    bson_free(path);
}
END_TEST

START_TEST(python_scripts_with_the_same_file_name_stay_distinct)
{
    char *a = fixture("py/a/cleaner.py"), *b = fixture("py/b/cleaner.py");
    nem_runner_t *rs[2];
    result_t res[2];
    bson_error_t err;
    const char *paths[2] = {a, b};
    for (size_t i = 0; i < 2; i++) {
        nem_script_spec_t spec;
        spec_init(&spec, paths[i], NULL);
        spec.position = i;
        result_init(&res[i]);
        rs[i] = nem_runner_start(&spec, &err);
        ck_assert_ptr_nonnull(rs[i]);
    }
    drive(rs, res, 2);
    for (size_t i = 0; i < 2; i++) {
        ck_assert_msg(res[i].ok, "%s", res[i].err.message);
        ITEM(d, &res[i], 0);
        ck_assert_str_eq(str_at(&d, "doc.which"), i == 0 ? "a" : "b");
        const char *file = str_at(&d, "doc.file");
        ck_assert_msg(strstr(file, i == 0 ? "/py/a/cleaner.py" : "/py/b/cleaner.py"), "%s", file);
        nem_runner_destroy(rs[i]);
        bson_destroy(&res[i].items);
    }
    bson_free(a);
    bson_free(b);
}
END_TEST

START_TEST(python_custom_entry_point_may_return_a_dict)
{
    char *path = fixture("py/entry.py");
    nem_script_spec_t spec;
    result_t res;
    spec_init(&spec, path, NULL);
    spec.entry_point = "custom";
    spec.stage = "predict";
    run_spec(&spec, &res);
    ck_assert_msg(res.ok, "%s", res.err.message);
    ck_assert_uint_eq(res.n, 1);
    ITEM(d, &res, 0);
    ck_assert_str_eq(str_at(&d, "doc.entry"), "custom");
    ck_assert_str_eq(str_at(&d, "doc.stage"), "predict");
    bson_destroy(&res.items);
    bson_free(path);
}
END_TEST

START_TEST(python_password_only_through_its_pipe)
{
    char *path = fixture("py/password.py");
    check_password_handover(path);
    bson_free(path);
}
END_TEST

/* ---------------------------------------------------------------- plugins */

static void run_plugin(const char *entry, const char *stage, const bson_t *args, result_t *res)
{
    char *path = plugin_path();
    nem_script_spec_t spec;
    spec_init(&spec, path, args);
    spec.entry_point = entry;
    spec.stage = stage;
    spec.position = 1;
    run_spec(&spec, res);
    bson_free(path);
}

START_TEST(plugin_emits_documents_and_models_and_reads_options)
{
    bson_t *args = BCON_NEW("dl-batch-size", "[", BCON_INT64(7), BCON_INT64(5), BCON_INT64(3), "]",
                            "data-collection", "[", BCON_UTF8("only"), "]");
    result_t res;
    run_plugin("main", "clean", args, &res);
    ck_assert_msg(res.ok, "%s", res.err.message);
    ck_assert_uint_eq(res.n, 3);
    ITEM(d, &res, 0);
    ITEM(m1, &res, 1);
    ITEM(m2, &res, 2);
    ck_assert_str_eq(str_at(&d, "doc.stage"), "clean");
    ck_assert_int_eq(int_at(&d, "doc.position"), 1);
    ck_assert_str_eq(str_at(&d, "doc.run"), "run-test");
    ck_assert_int_eq(int_at(&d, "doc.batch"), 5);   /* index 1 */
    ck_assert_str_eq(str_at(&d, "doc.coll"), "only"); /* repeat-last */
    ck_assert_str_eq(str_at(&m1, "bytes"), "weights!");
    ck_assert_str_eq(str_at(&m1, "doc.kind"), "buffer");
    ck_assert(bool_at(&m1, "temp"));
    ck_assert_str_eq(str_at(&m2, "bytes"), "file-model");
    ck_assert(!bool_at(&m2, "temp"));
    char *log = host_log();
    ck_assert_msg(strstr(log, "plugin at position 1"), "log: %s", log);
    bson_free(log);
    bson_destroy(&res.items);
    bson_destroy(args);
}
END_TEST

START_TEST(plugin_batches_never_end_empty_and_report_lineage)
{
    bson_t *args = learn_args();
    result_t res;
    char hex[65];
    int64_t count;
    insert_points();
    expected_digest(hex, &count);
    run_plugin("learn", "learn", args, &res);
    ck_assert_msg(res.ok, "%s", res.err.message);
    ck_assert_uint_eq(res.n, 4); /* consumed (once for both epochs), a metric an epoch, the model */
    ITEM(c, &res, 0);
    ITEM(e0, &res, 1);
    ITEM(e1, &res, 2);
    ITEM(m, &res, 3);
    ck_assert_str_eq(str_at(&e0, "kind"), "metric");
    ck_assert_str_eq(str_at(&e0, "doc.name"), "seen");
    ck_assert_int_eq(int_at(&e0, "doc.step"), 0);
    ck_assert_int_eq(int_at(&e1, "doc.step"), 1);
    ck_assert_str_eq(str_at(&c, "kind"), "consumed");
    ck_assert_int_eq(int_at(&c, "doc.count"), 50);
    ck_assert_str_eq(str_at(&c, "doc.digest"), hex);
    ck_assert(bool_at(&c, "doc.complete"));
    ck_assert_str_eq(str_at(&m, "doc.digest"), hex);
    for (int i = 0; i < 16; i++) {
        char key[40];
        snprintf(key, sizeof key, "doc.batch_sizes.%d", i);
        ck_assert_int_eq(int_at(&m, key), i % 8 == 7 ? 1 : 7);
    }
    bson_destroy(&res.items);
    bson_destroy(args);
}
END_TEST

START_TEST(plugin_fetches_a_stored_model)
{
    bson_t *args = learn_args();
    result_t res;
    char model[400];
    snprintf(model, sizeof model, "%s/m.bin", g_workdir);
    FILE *f = fopen(model, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("twelve bytes", f);
    fclose(f);
    upload_model("models", model);
    run_plugin("predict", "predict", args, &res);
    ck_assert_msg(res.ok, "%s", res.err.message);
    ITEM(used, &res, 0);
    ck_assert_str_eq(str_at(&used, "kind"), "consumed");
    ck_assert_str_eq(str_at(&used, "doc.model.bucket"), "models");
    ITEM(p, &res, 1);
    ck_assert_int_eq(int_at(&p, "doc.model_len"), 12);
    ck_assert(!bool_at(&p, "doc.input_model")); /* none was handed to it */
    bson_destroy(&res.items);
    bson_destroy(args);
}
END_TEST

/* ---------------------------------------------------------------- verdicts, table-driven */

/* Where a case's script comes from. */
typedef enum {
    FROM_FIXTURE, /* script: a file under NEM_RUNNER_FIXTURES */
    FROM_PLUGIN,  /* script: an entry point of the test plugin (NEM_RUNNER_PLUGIN), run at position 1 */
    FROM_BADAPI,  /* the plugin stamped with another API version (NEM_RUNNER_BADAPI_PLUGIN) */
} source_t;

typedef struct {
    const char *script;
    source_t from;
    bool ok;                /* the verdict nem_runner_finish must give */
    int code;               /* when !ok: the NEM_RUNNER_E* code of the NEM_ERROR_RUNNER error */
    const char *message[3]; /* when !ok: fragments of its message */
    int items;              /* items that came through before the verdict; -1: not checked */
    const char *env;        /* "NAME=VALUE" in the script's environment, or NULL */
    size_t position;        /* the script's position (plugins: 1) */
    int timeout_s;          /* --script-timeout; 0: none */
    void (*also)(const result_t *res); /* further checks, or NULL */
} run_case_t;

static bool pid_alive(pid_t pid)
{
    char stat[64], buf[512];
    snprintf(stat, sizeof stat, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(stat, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[2] != 'Z'; /* a zombie is dead */
}

/* hang.sh timed out: at once, and its grandchild (pid in the workdir) went with it. */
static void whole_tree_killed(const result_t *res)
{
    char pidfile[400];
    size_t len;
    snprintf(pidfile, sizeof pidfile, "%s/grandchild.pid", g_workdir);
    char *text = slurp(pidfile, &len);
    ck_assert_ptr_nonnull(text);
    pid_t gc = (pid_t)atoi(text);
    ck_assert_int_gt(gc, 0);
    for (int i = 0; i < 100 && pid_alive(gc); i++)
        usleep(10000);
    ck_assert_msg(!pid_alive(gc), "grandchild %d survived", (int)gc);
    bson_free(text);
}

/* A Python exception's traceback reaches the host's log. */
static void traceback_in_the_log(const result_t *res)
{
    char *log = host_log();
    ck_assert_msg(strstr(log, "Traceback (most recent call last)"), "log: %s", log);
    ck_assert_msg(strstr(log, "raises.py\", line 3"), "log: %s", log);
    bson_free(log);
}

static const run_case_t exec_cases[] = {
    /* the good first line still came through; the message names stage, position, script and line */
    {"bad_json.sh", FROM_FIXTURE, false, NEM_RUNNER_EOUTPUT, {"line 3: malformed JSON", "clean script #2", "bad_json.sh"},
     1, NULL, 2, 0, NULL},
    {"two_docs_line.sh", FROM_FIXTURE, false, NEM_RUNNER_EOUTPUT, {"line 1: malformed JSON: more than one document"},
     -1, NULL, 0, 0, NULL},
    /* {"good": true} is 12 bytes: the bad length field starts at byte 15 + 12 */
    {"bad_bson", FROM_FIXTURE, false, NEM_RUNNER_EOUTPUT, {"byte 27: malformed BSON: document length 3"}, -1, NULL, 0,
     0, NULL},
    {"too_big.sh", FROM_FIXTURE, false, NEM_RUNNER_ETOOBIG, {"line 2: document of", "16 MiB"}, -1, NULL, 0, 0, NULL},
    /* a non-zero exit: the status and the last stderr line */
    {"exit3.sh", FROM_FIXTURE, false, NEM_RUNNER_EEXIT, {"exited with status 3: going down"}, 1, NULL, 0, 0, NULL},
    {"segv.sh", FROM_FIXTURE, false, NEM_RUNNER_ESIGNAL, {"killed by SIGSEGV"}, -1, NULL, 0, 0, NULL},
    {"hang.sh", FROM_FIXTURE, false, NEM_RUNNER_ETIMEOUT, {"timed out after 1 s"}, -1, NULL, 0, 1, whole_tree_killed},
    /* an executable may end its output with the end record: it is checked, never stored */
    {"end_record.sh", FROM_FIXTURE, true, 0, {NULL}, 2, NULL, 0, 0, NULL},
    {"end_record.sh", FROM_FIXTURE, false, NEM_RUNNER_EINCOMPLETE, {"announced 5 items but 2 arrived"}, -1,
     "NEM_T_END_ITEMS=5", 0, 0, NULL},
    {"end_record.sh", FROM_FIXTURE, false, NEM_RUNNER_EOUTPUT, {"line 4: output after the end-of-output record"}, -1,
     "NEM_T_AFTER_END=1", 0, 0, NULL},
};

static const run_case_t python_cases[] = {
    {"py/raises.py", FROM_FIXTURE, false, NEM_RUNNER_EEXIT, {"exited with status 1: ValueError: boom from script"}, 1,
     NULL, 0, 0, traceback_in_the_log},
    /* the stage tests' fixture: one copy */
    {"../../stage/fixtures/os_exit.py", FROM_FIXTURE, false, NEM_RUNNER_EINCOMPLETE, {"os._exit()"}, -1, NULL, 0, 0,
     NULL},
};

static const run_case_t plugin_cases[] = {
    /* returning false: the plugin's own message, after the document it emitted */
    {"refuse", FROM_PLUGIN, false, NEM_RUNNER_EEXIT, {"plugin says no"}, 1, NULL, 1, 0, NULL},
    {"crash", FROM_PLUGIN, false, NEM_RUNNER_ESIGNAL, {"SIGSEGV"}, -1, NULL, 1, 0, NULL},
    {"nope", FROM_PLUGIN, false, NEM_RUNNER_EEXIT, {"has no entry point 'nope'"}, -1, NULL, 1, 0, NULL},
    /* a plugin that ends its own process with status 0 has not succeeded: its buffered items never arrived */
    {"exit_early", FROM_PLUGIN, false, NEM_RUNNER_EINCOMPLETE, {"before its output was complete"}, -1, NULL, 1, 0, NULL},
    {"quit_early", FROM_PLUGIN, false, NEM_RUNNER_EINCOMPLETE, {"before its output was complete"}, -1, NULL, 1, 0, NULL},
    /* a plugin stamped with a newer major is refused before anything in it runs, both versions named */
    {"badapi", FROM_BADAPI, false, NEM_RUNNER_EEXIT,
     {"was built against nemesyst 99.0 (needs a newer nemesyst), this nemesyst is " NEM_T_MAJOR_MINOR}, -1, NULL, 0,
     0, NULL},
};

/* Runs one case and checks its verdict: ok, or the NEM_ERROR_RUNNER error with its code and message fragments. */
static void run_case(const run_case_t *c)
{
    const char *badapi = getenv("NEM_RUNNER_BADAPI_PLUGIN");
    char *path = c->from == FROM_FIXTURE ? fixture(c->script)
                 : c->from == FROM_PLUGIN ? plugin_path()
                                          : bson_strdup(badapi);
    char *env = c->env ? bson_strdup(c->env) : NULL, *eq = env ? strchr(env, '=') : NULL;
    nem_script_spec_t spec;
    result_t res;
    ck_assert_ptr_nonnull(path);
    if (eq) {
        *eq = '\0';
        setenv(env, eq + 1, 1);
    }
    spec_init(&spec, path, NULL);
    spec.position = c->position;
    spec.timeout_s = c->timeout_s;
    if (c->from == FROM_PLUGIN)
        spec.entry_point = c->script;
    time_t t0 = time(NULL);
    run_spec(&spec, &res);
    if (c->timeout_s > 0)
        ck_assert_int_le(time(NULL) - t0, c->timeout_s + 4);
    if (c->ok) {
        ck_assert_msg(res.ok, "%s: %s", c->script, res.err.message);
    } else {
        ck_assert_msg(!res.ok, "%s succeeded", c->script);
        ck_assert_msg(res.err.domain == NEM_ERROR_RUNNER, "%s: domain %u, want NEM_ERROR_RUNNER: %s", c->script,
                      res.err.domain, res.err.message);
        ck_assert_msg((int)res.err.code == c->code, "%s: code %u, want %d: %s", c->script, res.err.code, c->code,
                      res.err.message);
        for (size_t i = 0; i < sizeof c->message / sizeof c->message[0] && c->message[i]; i++)
            ck_assert_msg(strstr(res.err.message, c->message[i]), "%s: '%s' not in: %s", c->script, c->message[i],
                          res.err.message);
    }
    if (c->items >= 0)
        ck_assert_msg(res.n == (uint32_t)c->items, "%s: %u items, want %d", c->script, res.n, c->items);
    if (c->also)
        c->also(&res);
    if (eq)
        unsetenv(env);
    bson_free(env);
    bson_destroy(&res.items);
    bson_free(path);
}

#define N_CASES(table) ((int)(sizeof table / sizeof table[0]))

START_TEST(exec_verdicts)
{
    run_case(&exec_cases[_i]);
}
END_TEST

START_TEST(python_verdicts)
{
    run_case(&python_cases[_i]);
}
END_TEST

START_TEST(plugin_verdicts)
{
    run_case(&plugin_cases[_i]);
}
END_TEST

START_TEST(script_kind_follows_the_file_name)
{
    ck_assert_int_eq(nem_script_kind("a/b.so"), NEM_SCRIPT_PLUGIN);
    ck_assert_int_eq(nem_script_kind("x.py"), NEM_SCRIPT_PYTHON);
    ck_assert_int_eq(nem_script_kind("run.sh"), NEM_SCRIPT_EXEC);
    ck_assert_int_eq(nem_script_kind("py"), NEM_SCRIPT_EXEC);
}
END_TEST

static Suite *runner_suite(void)
{
    Suite *s = suite_create("runner");
    TCase *exec = tcase_create("exec"), *py = tcase_create("python"), *plug = tcase_create("plugin");
    TCase *all[] = {exec, py, plug};
    for (size_t i = 0; i < 3; i++) {
        tcase_add_checked_fixture(all[i], setup, teardown);
        tcase_set_timeout(all[i], 60);
        suite_add_tcase(s, all[i]);
    }
    tcase_add_test(exec, script_kind_follows_the_file_name);
    tcase_add_test(exec, exec_json_lines_become_documents_models_and_consumed_records);
    tcase_add_test(exec, exec_json_stream_lines_parse_as_each_line_alone);
    tcase_add_test(exec, exec_bson_stream_after_magic_line);
    tcase_add_test(exec, exec_password_only_through_its_pipe);
    tcase_add_test(exec, pump_never_blocks_on_a_partial_line);
    tcase_add_test(exec, runners_run_concurrently_under_one_poll_loop);
    tcase_add_test(exec, missing_script_fails_to_start);
    tcase_add_test(exec, callback_refusal_stops_the_script);
    tcase_add_loop_test(exec, exec_verdicts, 0, N_CASES(exec_cases));
    tcase_add_test(py, python_cleaner_yields_documents_and_prints_to_the_log);
    tcase_add_test(py, python_learner_batches_without_empty_last_batch_and_reports_lineage);
    tcase_add_test(py, python_predictor_reads_the_newest_model_with_getfiles);
    tcase_add_test(py, python_scripts_with_the_same_file_name_stay_distinct);
    tcase_add_test(py, python_custom_entry_point_may_return_a_dict);
    tcase_add_test(py, python_password_only_through_its_pipe);
    tcase_add_loop_test(py, python_verdicts, 0, N_CASES(python_cases));
    tcase_add_test(plug, plugin_emits_documents_and_models_and_reads_options);
    tcase_add_test(plug, plugin_batches_never_end_empty_and_report_lineage);
    tcase_add_test(plug, plugin_fetches_a_stored_model);
    tcase_add_loop_test(plug, plugin_verdicts, 0, N_CASES(plugin_cases));
    return s;
}

int main(void)
{
    mongoc_init();
    SRunner *sr = srunner_create(runner_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    mongoc_cleanup();
    return failed ? 1 : 0;
}
