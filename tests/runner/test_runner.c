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
#include "stage/runner.h"

#define TEST_PASSWORD "s3cret-pw-4711"

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
    BSON_APPEND_UTF8(&rec, "kind", item->kind == NEM_ITEM_DOC ? "doc" : item->kind == NEM_ITEM_MODEL ? "model" : "consumed");
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

static void assert_fails(const result_t *res, int code, const char *needle)
{
    ck_assert_msg(!res->ok, "script succeeded");
    ck_assert_int_eq(res->err.domain, NEM_ERROR_RUNNER);
    ck_assert_msg((int)res->err.code == code, "code %u, want %d: %s", res->err.code, code, res->err.message);
    ck_assert_msg(strstr(res->err.message, needle), "'%s' not in: %s", needle, res->err.message);
}

/* Runs a fixture that must fail with code and a message containing needle. */
static void fixture_fails(const char *name, int code, const char *needle)
{
    char *path = fixture(name);
    result_t res;
    run_path(path, &res);
    assert_fails(&res, code, needle);
    bson_destroy(&res.items);
    bson_free(path);
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

START_TEST(malformed_json_names_script_position_and_line)
{
    char *path = fixture("bad_json.sh");
    nem_script_spec_t spec;
    result_t res;
    spec_init(&spec, path, NULL);
    spec.position = 2;
    run_spec(&spec, &res);
    assert_fails(&res, NEM_RUNNER_EOUTPUT, "line 3: malformed JSON");
    ck_assert_msg(strstr(res.err.message, "clean script #2") && strstr(res.err.message, "bad_json.sh"), "%s",
                  res.err.message);
    ck_assert_uint_eq(res.n, 1); /* the good first line still came through */
    bson_destroy(&res.items);
    bson_free(path);
}
END_TEST

START_TEST(two_documents_on_one_line_are_malformed)
{
    fixture_fails("two_docs_line.sh", NEM_RUNNER_EOUTPUT, "line 1: malformed JSON: more than one document");
}
END_TEST

START_TEST(malformed_bson_names_byte_offset)
{
    /* {"good": true} is 12 bytes: the bad length field starts at byte 15 + 12 */
    fixture_fails("bad_bson", NEM_RUNNER_EOUTPUT, "byte 27: malformed BSON: document length 3");
}
END_TEST

START_TEST(document_over_16_mib_fails_the_script)
{
    char *path = fixture("too_big.sh");
    result_t res;
    run_path(path, &res);
    assert_fails(&res, NEM_RUNNER_ETOOBIG, "line 2: document of");
    ck_assert_msg(strstr(res.err.message, "16 MiB"), "%s", res.err.message);
    bson_destroy(&res.items);
    bson_free(path);
}
END_TEST

START_TEST(nonzero_exit_fails_with_status_and_last_stderr_line)
{
    char *path = fixture("exit3.sh");
    result_t res;
    run_path(path, &res);
    assert_fails(&res, NEM_RUNNER_EEXIT, "exited with status 3: going down");
    ck_assert_uint_eq(res.n, 1);
    bson_destroy(&res.items);
    bson_free(path);
}
END_TEST

START_TEST(crash_reports_the_signal_name)
{
    fixture_fails("segv.sh", NEM_RUNNER_ESIGNAL, "killed by SIGSEGV");
}
END_TEST

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

START_TEST(timeout_kills_the_whole_process_tree)
{
    char *path = fixture("hang.sh");
    nem_script_spec_t spec;
    result_t res;
    spec_init(&spec, path, NULL);
    spec.timeout_s = 1;
    time_t t0 = time(NULL);
    run_spec(&spec, &res);
    assert_fails(&res, NEM_RUNNER_ETIMEOUT, "timed out after 1 s");
    ck_assert_int_le(time(NULL) - t0, 5);
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

/* An executable may end its output with the end record: it is checked, never stored. */
START_TEST(exec_end_record_is_checked)
{
    char *path = fixture("end_record.sh");
    result_t res;
    run_path(path, &res);
    ck_assert_msg(res.ok, "%s", res.err.message);
    ck_assert_uint_eq(res.n, 2);
    bson_destroy(&res.items);
    setenv("NEM_T_END_ITEMS", "5", 1);
    run_path(path, &res);
    assert_fails(&res, NEM_RUNNER_EINCOMPLETE, "announced 5 items but 2 arrived");
    bson_destroy(&res.items);
    unsetenv("NEM_T_END_ITEMS");
    setenv("NEM_T_AFTER_END", "1", 1);
    run_path(path, &res);
    assert_fails(&res, NEM_RUNNER_EOUTPUT, "line 4: output after the end-of-output record");
    bson_destroy(&res.items);
    unsetenv("NEM_T_AFTER_END");
    bson_free(path);
}
END_TEST

START_TEST(missing_script_fails_to_start)
{
    nem_script_spec_t spec;
    bson_error_t err;
    spec_init(&spec, "/no/such/script.sh", NULL);
    ck_assert_ptr_null(nem_runner_start(&spec, &err));
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
    ck_assert_str_eq(err.message, "host refuses item");
    ck_assert(!nem_runner_finish(r, &res.err));
    ck_assert_str_eq(res.err.message, "host refuses item");
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
    ck_assert_uint_eq(res.n, 2); /* one consumed record for two identical epochs, one model */
    ITEM(c, &res, 0);
    ITEM(m, &res, 1);
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

START_TEST(python_exception_fails_with_its_traceback_in_the_log)
{
    char *path = fixture("py/raises.py");
    result_t res;
    run_path(path, &res);
    assert_fails(&res, NEM_RUNNER_EEXIT, "exited with status 1: ValueError: boom from script");
    ck_assert_uint_eq(res.n, 1);
    char *log = host_log();
    ck_assert_msg(strstr(log, "Traceback (most recent call last)"), "log: %s", log);
    ck_assert_msg(strstr(log, "raises.py\", line 3"), "log: %s", log);
    bson_free(log);
    bson_destroy(&res.items);
    bson_free(path);
}
END_TEST

START_TEST(python_os_exit_fails_as_incomplete)
{
    char *path = fixture("py/os_exit.py");
    result_t res;
    run_path(path, &res);
    assert_fails(&res, NEM_RUNNER_EINCOMPLETE, "os._exit()");
    bson_destroy(&res.items);
    bson_free(path);
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
    ck_assert_uint_eq(res.n, 2);
    ITEM(c, &res, 0);
    ITEM(m, &res, 1);
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
    bson_destroy(&res.items);
    bson_destroy(args);
}
END_TEST

START_TEST(plugin_returning_false_fails_with_its_message)
{
    result_t res;
    run_plugin("refuse", "clean", NULL, &res);
    assert_fails(&res, NEM_RUNNER_EEXIT, "plugin says no");
    ck_assert_uint_eq(res.n, 1);
    bson_destroy(&res.items);
}
END_TEST

START_TEST(plugin_crash_reports_the_signal)
{
    result_t res;
    run_plugin("crash", "clean", NULL, &res);
    assert_fails(&res, NEM_RUNNER_ESIGNAL, "SIGSEGV");
    bson_destroy(&res.items);
}
END_TEST

START_TEST(plugin_without_the_entry_point_fails)
{
    result_t res;
    run_plugin("nope", "clean", NULL, &res);
    assert_fails(&res, NEM_RUNNER_EEXIT, "has no entry point 'nope'");
    bson_destroy(&res.items);
}
END_TEST

/* A plugin that ends its own process with status 0 has not succeeded: its buffered items never arrived. */
START_TEST(plugin_that_exits_early_fails_as_incomplete)
{
    static const char *entries[] = {"exit_early", "quit_early"};
    for (size_t i = 0; i < 2; i++) {
        result_t res;
        run_plugin(entries[i], "clean", NULL, &res);
        assert_fails(&res, NEM_RUNNER_EINCOMPLETE, "before its output was complete");
        bson_destroy(&res.items);
    }
}
END_TEST

/* A plugin stamped with another API version is refused before anything in it runs. */
START_TEST(plugin_built_for_another_api_version_is_refused)
{
    const char *path = getenv("NEM_RUNNER_BADAPI_PLUGIN");
    ck_assert_ptr_nonnull(path);
    result_t res;
    run_path(path, &res);
    assert_fails(&res, NEM_RUNNER_EEXIT, "built against nemesyst plugin API version 999, this nemesyst provides version 1");
    bson_destroy(&res.items);
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
    tcase_add_test(exec, exec_bson_stream_after_magic_line);
    tcase_add_test(exec, malformed_json_names_script_position_and_line);
    tcase_add_test(exec, two_documents_on_one_line_are_malformed);
    tcase_add_test(exec, malformed_bson_names_byte_offset);
    tcase_add_test(exec, document_over_16_mib_fails_the_script);
    tcase_add_test(exec, nonzero_exit_fails_with_status_and_last_stderr_line);
    tcase_add_test(exec, crash_reports_the_signal_name);
    tcase_add_test(exec, timeout_kills_the_whole_process_tree);
    tcase_add_test(exec, exec_password_only_through_its_pipe);
    tcase_add_test(exec, pump_never_blocks_on_a_partial_line);
    tcase_add_test(exec, runners_run_concurrently_under_one_poll_loop);
    tcase_add_test(exec, missing_script_fails_to_start);
    tcase_add_test(exec, exec_end_record_is_checked);
    tcase_add_test(exec, callback_refusal_stops_the_script);
    tcase_add_test(py, python_cleaner_yields_documents_and_prints_to_the_log);
    tcase_add_test(py, python_learner_batches_without_empty_last_batch_and_reports_lineage);
    tcase_add_test(py, python_predictor_reads_the_newest_model_with_getfiles);
    tcase_add_test(py, python_scripts_with_the_same_file_name_stay_distinct);
    tcase_add_test(py, python_exception_fails_with_its_traceback_in_the_log);
    tcase_add_test(py, python_custom_entry_point_may_return_a_dict);
    tcase_add_test(py, python_os_exit_fails_as_incomplete);
    tcase_add_test(py, python_password_only_through_its_pipe);
    tcase_add_test(plug, plugin_emits_documents_and_models_and_reads_options);
    tcase_add_test(plug, plugin_batches_never_end_empty_and_report_lineage);
    tcase_add_test(plug, plugin_fetches_a_stored_model);
    tcase_add_test(plug, plugin_returning_false_fails_with_its_message);
    tcase_add_test(plug, plugin_crash_reports_the_signal);
    tcase_add_test(plug, plugin_without_the_entry_point_fails);
    tcase_add_test(plug, plugin_that_exits_early_fails_as_incomplete);
    tcase_add_test(plug, plugin_built_for_another_api_version_is_refused);
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
