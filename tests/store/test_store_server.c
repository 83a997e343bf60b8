/* Store suite against a real server (the FerretDB fixture: NEM_TEST_PORT): every value written is read back. */
#include <check.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

static nem_store_t *store;
static char dbname[64];

static void setup(void)
{
    static int seq;
    nem_store_opts_t o = {.host = "127.0.0.1", .db_name = dbname, .max_staleness = -1, .app_name = "store-test"};
    const char *port = getenv("NEM_TEST_PORT");
    bson_error_t err;

    ck_assert_msg(port != NULL, "NEM_TEST_PORT is not set: run through tests/fixtures/with-ferretdb.sh");
    bson_snprintf(dbname, sizeof dbname, "storetest_%d_%d", (int)getpid(), seq++);
    o.port = atoi(port);
    store = nem_store_new(&o, &err);
    ck_assert_msg(store != NULL, "%s", err.message);
    ck_assert_msg(nem_store_ping(store, &err), "%s", err.message);
}

static void teardown(void)
{
    bson_error_t err;
    mongoc_database_drop(nem_store_database(store), &err);
    nem_store_destroy(store);
    store = NULL;
}

static mongoc_collection_t *coll(const char *name)
{
    return mongoc_database_get_collection(nem_store_database(store), name);
}

static int64_t count(const char *name)
{
    mongoc_collection_t *c = coll(name);
    bson_t filter = BSON_INITIALIZER;
    bson_error_t err;
    int64_t n = mongoc_collection_count_documents(c, &filter, NULL, NULL, NULL, &err);
    ck_assert_msg(n >= 0, "%s", err.message);
    bson_destroy(&filter);
    mongoc_collection_destroy(c);
    return n;
}

/* Adds n documents {i: first+k, pad: <pad bytes>} to bulk, failing the test on error. */
static void add_docs(nem_bulk_t *bulk, int first, int n, size_t pad)
{
    char *text = bson_malloc(pad + 1);
    bson_error_t err;
    memset(text, 'x', pad);
    text[pad] = '\0';
    for (int k = 0; k < n; k++) {
        bson_t *doc = BCON_NEW("i", BCON_INT32(first + k), "pad", BCON_UTF8(text));
        ck_assert_msg(nem_bulk_add(bulk, doc, &err), "%s", err.message);
        bson_destroy(doc);
    }
    bson_free(text);
}

START_TEST(connect_insert_read_back)
{
    nem_bulk_t *bulk = nem_bulk_new(store, "items", 0, 0);
    mongoc_collection_t *c = coll("items");
    bson_t *filter = BCON_NEW("name", BCON_UTF8("beta"));
    bson_t *doc;
    mongoc_cursor_t *cur;
    const bson_t *got;
    bson_iter_t it;
    bson_error_t err;

    doc = BCON_NEW("name", BCON_UTF8("alpha"), "value", BCON_DOUBLE(1.5));
    ck_assert(nem_bulk_add(bulk, doc, &err));
    bson_destroy(doc);
    doc = BCON_NEW("name", BCON_UTF8("beta"), "value", BCON_DOUBLE(2.5), "tags", "[", BCON_UTF8("a"), "]");
    ck_assert(nem_bulk_add(bulk, doc, &err));
    bson_destroy(doc);
    ck_assert_uint_eq(nem_bulk_inserted(bulk), 0);
    ck_assert_msg(nem_bulk_flush(bulk, &err), "%s", err.message);
    ck_assert_uint_eq(nem_bulk_inserted(bulk), 2);
    ck_assert_msg(nem_bulk_flush(bulk, &err), "an empty flush is a no-op");

    cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
    ck_assert(mongoc_cursor_next(cur, &got));
    ck_assert(bson_iter_init_find(&it, got, "value") && bson_iter_double(&it) == 2.5);
    ck_assert(bson_iter_init_find(&it, got, "tags") && BSON_ITER_HOLDS_ARRAY(&it));
    ck_assert(!mongoc_cursor_next(cur, &got));
    ck_assert_int_eq(count("items"), 2);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(c);
    nem_bulk_destroy(bulk);
}
END_TEST

START_TEST(bulk_flushes_by_count)
{
    nem_bulk_t *bulk = nem_bulk_new(store, "counted", 100, 0);
    bson_error_t err;

    add_docs(bulk, 0, 1050, 10);
    /* Ten automatic flushes of exactly 100; 50 still pending. */
    ck_assert_uint_eq(nem_bulk_inserted(bulk), 1000);
    ck_assert_int_eq(count("counted"), 1000);
    ck_assert_msg(nem_bulk_flush(bulk, &err), "%s", err.message);
    ck_assert_uint_eq(nem_bulk_inserted(bulk), 1050);
    ck_assert_int_eq(count("counted"), 1050);
    nem_bulk_destroy(bulk);
}
END_TEST

START_TEST(bulk_flushes_by_bytes)
{
    const size_t max_bytes = 64 * 1024;
    nem_bulk_t *bulk = nem_bulk_new(store, "sized", 100000, max_bytes);
    bson_t *probe = BCON_NEW("i", BCON_INT32(0), "pad", BCON_UTF8(""));
    size_t len = probe->len + 1000, per = max_bytes / len;
    uint64_t before;
    bson_error_t err;

    bson_destroy(probe);
    add_docs(bulk, 0, 500, 1000);
    /* The count limit is far away: only the byte budget flushed, in batches of whole documents within it. */
    before = nem_bulk_inserted(bulk);
    ck_assert_uint_gt(before, 0);
    ck_assert_uint_eq(before % per, 0);
    ck_assert_uint_ge(before, 500 - per);
    ck_assert_int_eq(count("sized"), (int64_t)before);
    ck_assert_msg(nem_bulk_flush(bulk, &err), "%s", err.message);
    ck_assert_uint_eq(nem_bulk_inserted(bulk), 500);
    ck_assert_int_eq(count("sized"), 500);
    nem_bulk_destroy(bulk);
}
END_TEST

START_TEST(bulk_error_names_index_and_server_code)
{
    nem_bulk_t *bulk = nem_bulk_new(store, "dups", 1000, 0);
    bson_error_t err;

    for (int k = 0; k < 10; k++) {
        bson_t *doc = BCON_NEW("_id", BCON_INT32(k < 5 ? 100 + k : 100 + k - 3)); /* index 5 repeats 102 */
        ck_assert(nem_bulk_add(bulk, doc, &err));
        bson_destroy(doc);
    }
    ck_assert(!nem_bulk_flush(bulk, &err));
    ck_assert_uint_eq(err.domain, NEM_ERROR_STORE);
    ck_assert_uint_eq(err.code, NEM_STORE_ESERVER);
    ck_assert_msg(strstr(err.message, "first at index 5:"), "%s", err.message);
    ck_assert_msg(strstr(err.message, "(server code 11000)"), "%s", err.message);
    ck_assert_msg(strstr(err.message, ".dups failed for 3 of 10 documents"), "%s", err.message);
    /* Unordered: the seven distinct documents went in. */
    ck_assert_uint_eq(nem_bulk_inserted(bulk), 7);
    ck_assert_int_eq(count("dups"), 7);
    nem_bulk_destroy(bulk);
}
END_TEST

static void fill(const char *name, int n)
{
    nem_bulk_t *bulk = nem_bulk_new(store, name, 0, 0);
    bson_error_t err;
    add_docs(bulk, 0, n, 4);
    ck_assert_msg(nem_bulk_flush(bulk, &err), "%s", err.message);
    nem_bulk_destroy(bulk);
}

/* Reads every batch of a sorted pipeline; checks the documents come in order and returns the batch sizes. */
static size_t read_batches(const char *name, size_t batch_size, size_t *sizes, size_t max)
{
    bson_t *pipeline = BCON_NEW("0", "{", "$sort", "{", "i", BCON_INT32(1), "}", "}");
    nem_batches_t *b;
    const bson_t *const *docs;
    size_t n, nb = 0;
    int32_t next = 0;
    bson_iter_t it;
    bson_error_t err;

    b = nem_batches_new(store, name, pipeline, batch_size, &err);
    ck_assert_msg(b != NULL, "%s", err.message);
    while (nem_batches_next(b, &docs, &n, &err)) {
        ck_assert_uint_lt(nb, max);
        ck_assert_uint_gt(n, 0);
        sizes[nb++] = n;
        for (size_t k = 0; k < n; k++)
            ck_assert(bson_iter_init_find(&it, docs[k], "i") && bson_iter_int32(&it) == next++);
    }
    ck_assert_msg(err.code == 0, "%s", err.message);
    nem_batches_destroy(b);
    bson_destroy(pipeline);
    return nb;
}

START_TEST(batches_multiple_of_size_has_no_empty_last_batch)
{
    size_t sizes[16];
    fill("exact", 96);
    ck_assert_uint_eq(read_batches("exact", 32, sizes, 16), 3);
    ck_assert(sizes[0] == 32 && sizes[1] == 32 && sizes[2] == 32);
}
END_TEST

START_TEST(batches_remainder_is_the_last_batch)
{
    size_t sizes[16];
    fill("rem", 100);
    ck_assert_uint_eq(read_batches("rem", 32, sizes, 16), 4);
    ck_assert(sizes[0] == 32 && sizes[2] == 32 && sizes[3] == 4);
}
END_TEST

START_TEST(batches_of_an_empty_collection)
{
    size_t sizes[4];
    ck_assert_uint_eq(read_batches("nothing_here", 8, sizes, 4), 0);
}
END_TEST

START_TEST(batches_bad_pipeline_gives_server_code)
{
    bson_t *pipeline = BCON_NEW("0", "{", "$noSuchStage", "{", "}", "}");
    const bson_t *const *docs;
    size_t n;
    bson_error_t err;
    nem_batches_t *b;

    fill("bad", 3);
    b = nem_batches_new(store, "bad", pipeline, 10, &err);
    ck_assert_ptr_nonnull(b);
    ck_assert(!nem_batches_next(b, &docs, &n, &err));
    ck_assert_uint_ne(err.code, 0);
    ck_assert_msg(strstr(err.message, "aggregate on storetest_") && strstr(err.message, "(server code "), "%s",
                  err.message);
    nem_batches_destroy(b);
    bson_destroy(pipeline);
    ck_assert_ptr_null(nem_batches_new(store, "bad", NULL, 0, &err));
    ck_assert_uint_eq(err.code, NEM_STORE_EOPTION);
}
END_TEST

/* ---- GridFS ---- */

static char tmpdir[] = "/tmp/nem-test-gridfs.XXXXXX";

static void gridfs_setup(void)
{
    setup();
    strcpy(tmpdir, "/tmp/nem-test-gridfs.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void gridfs_teardown(void)
{
    char *cmd = bson_strdup_printf("rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    bson_free(cmd);
    teardown();
}

/* Deterministic pseudo-random bytes, so a misplaced chunk cannot go unnoticed. */
static uint8_t *make_data(size_t len)
{
    uint8_t *d = bson_malloc(len ? len : 1);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        d[i] = (uint8_t)x;
    }
    return d;
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void sha256_file(const char *path, unsigned char out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char buf[65536];
    unsigned int n;
    size_t got;
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(ctx, buf, got);
    EVP_DigestFinal_ex(ctx, out, &n);
    EVP_MD_CTX_free(ctx);
    fclose(f);
}

static void check_files_doc(const bson_value_t *id, const char *filename, int64_t length)
{
    mongoc_collection_t *files = coll("models.files");
    bson_t filter = BSON_INITIALIZER;
    mongoc_cursor_t *cur;
    const bson_t *doc;
    bson_iter_t it, sub;

    BSON_APPEND_VALUE(&filter, "_id", id);
    cur = mongoc_collection_find_with_opts(files, &filter, NULL, NULL);
    ck_assert(mongoc_cursor_next(cur, &doc));
    ck_assert(bson_iter_init_find(&it, doc, "filename") && strcmp(bson_iter_utf8(&it, NULL), filename) == 0);
    ck_assert(bson_iter_init_find(&it, doc, "length") && bson_iter_as_int64(&it) == length);
    ck_assert(bson_iter_init_find(&it, doc, "chunkSize") && bson_iter_as_int64(&it) == NEM_GRIDFS_CHUNK_BYTES);
    ck_assert(bson_iter_init_find(&it, doc, "metadata") && BSON_ITER_HOLDS_DOCUMENT(&it));
    ck_assert(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "metadata.learner", &sub) &&
              strcmp(bson_iter_utf8(&sub, NULL), "cnn.py") == 0);
    ck_assert(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "metadata.metrics.loss", &sub) &&
              bson_iter_double(&sub) == 0.25);
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    mongoc_collection_destroy(files);
}

START_TEST(gridfs_file_round_trip_with_metadata)
{
    /* Several MiB and not a whole number of chunks. */
    const size_t len = 9 * 1024 * 1024 + 12345;
    uint8_t *data = make_data(len), *back = NULL;
    char *src = bson_strdup_printf("%s/model.bin", tmpdir), *dst = bson_strdup_printf("%s/back.bin", tmpdir);
    bson_t *meta = BCON_NEW("learner", BCON_UTF8("cnn.py"), "metrics", "{", "loss", BCON_DOUBLE(0.25), "}");
    unsigned char h1[32], h2[32];
    bson_value_t id;
    size_t back_len = 0;
    bson_error_t err;

    write_file(src, data, len);
    ck_assert_msg(nem_gridfs_upload_file(store, "models", "model.bin", src, meta, &id, &err), "%s", err.message);
    ck_assert_int_eq(id.value_type, BSON_TYPE_OID);
    check_files_doc(&id, "model.bin", (int64_t)len);

    ck_assert_msg(nem_gridfs_download_to_file(store, "models", &id, dst, &err), "%s", err.message);
    sha256_file(src, h1);
    sha256_file(dst, h2);
    ck_assert_mem_eq(h1, h2, 32);

    ck_assert_msg(nem_gridfs_download_to_buffer(store, "models", &id, &back, &back_len, &err), "%s", err.message);
    ck_assert_uint_eq(back_len, len);
    ck_assert(memcmp(back, data, len) == 0);

    bson_free(back);
    bson_value_destroy(&id);
    bson_destroy(meta);
    bson_free(src);
    bson_free(dst);
    bson_free(data);
}
END_TEST

/* 80 MiB of 255 KiB chunks: with FerretDB's count-only batching, libmongoc's own download stream would get a
 * 57 MB getMore reply and refuse it (over 48 MB); ours batches the chunks cursor by bytes. */
START_TEST(gridfs_large_file_past_the_reply_limit)
{
    const size_t len = (size_t)80 << 20;
    uint8_t *data = make_data(len);
    char *src = bson_strdup_printf("%s/big.bin", tmpdir), *dst = bson_strdup_printf("%s/big.out", tmpdir);
    unsigned char h1[32], h2[32];
    bson_value_t id;
    bson_error_t err;

    write_file(src, data, len);
    bson_free(data);
    ck_assert_msg(nem_gridfs_upload_file(store, "big", "big.bin", src, NULL, &id, &err), "%s", err.message);
    ck_assert_msg(nem_gridfs_download_to_file(store, "big", &id, dst, &err), "%s", err.message);
    sha256_file(src, h1);
    sha256_file(dst, h2);
    ck_assert_mem_eq(h1, h2, 32);
    bson_free(src);
    bson_free(dst);
}
END_TEST

START_TEST(gridfs_buffer_round_trip_and_empty_file)
{
    const size_t len = 3 * NEM_GRIDFS_CHUNK_BYTES; /* an exact number of chunks */
    uint8_t *data = make_data(len), *back = NULL;
    bson_t *meta = BCON_NEW("learner", BCON_UTF8("cnn.py"), "metrics", "{", "loss", BCON_DOUBLE(0.25), "}");
    bson_value_t id, empty_id;
    size_t back_len = 0;
    bson_error_t err;

    ck_assert_msg(nem_gridfs_upload_buffer(store, "models", "w.h5", data, len, meta, &id, &err), "%s", err.message);
    check_files_doc(&id, "w.h5", (int64_t)len);
    ck_assert_msg(nem_gridfs_download_to_buffer(store, "models", &id, &back, &back_len, &err), "%s", err.message);
    ck_assert_uint_eq(back_len, len);
    ck_assert(memcmp(back, data, len) == 0);
    bson_free(back);

    ck_assert_msg(nem_gridfs_upload_buffer(store, "models", "empty", data, 0, meta, &empty_id, &err), "%s",
                  err.message);
    ck_assert_msg(nem_gridfs_download_to_buffer(store, "models", &empty_id, &back, &back_len, &err), "%s",
                  err.message);
    ck_assert_uint_eq(back_len, 0);
    bson_free(back);
    bson_destroy(meta);
    bson_free(data);
}
END_TEST

START_TEST(gridfs_missing_and_corrupt_files)
{
    uint8_t *data = make_data(3 * NEM_GRIDFS_CHUNK_BYTES + 7), *back = NULL;
    char *dst = bson_strdup_printf("%s/out.bin", tmpdir);
    mongoc_collection_t *chunks = coll("fs.chunks");
    bson_value_t id, nobody = {.value_type = BSON_TYPE_OID};
    bson_t *filter;
    size_t back_len;
    bson_error_t err;

    bson_oid_init(&nobody.value.v_oid, NULL);
    ck_assert(!nem_gridfs_download_to_buffer(store, NULL, &nobody, &back, &back_len, &err));
    ck_assert_uint_eq(err.code, NEM_STORE_ENOTFOUND);
    ck_assert_msg(strstr(err.message, "no GridFS file with _id") && strstr(err.message, ".fs"), "%s", err.message);

    ck_assert(nem_gridfs_upload_buffer(store, NULL, "x", data, 3 * NEM_GRIDFS_CHUNK_BYTES + 7, NULL, &id, &err));
    filter = BCON_NEW("n", BCON_INT32(1));
    ck_assert(mongoc_collection_delete_one(chunks, filter, NULL, NULL, &err));
    ck_assert(!nem_gridfs_download_to_file(store, NULL, &id, dst, &err));
    ck_assert_uint_eq(err.code, NEM_STORE_ECORRUPT);
    ck_assert_msg(strstr(err.message, "is corrupt: a chunk is missing or out of order (chunk 1)"), "%s", err.message);
    ck_assert_int_ne(access(dst, F_OK), 0); /* the partial file was removed */

    ck_assert(!nem_gridfs_upload_file(store, NULL, "x", "/nonexistent/model.bin", NULL, NULL, &err));
    ck_assert_uint_eq(err.code, NEM_STORE_EIO);
    ck_assert_msg(strstr(err.message, "'/nonexistent/model.bin'"), "%s", err.message);

    bson_destroy(filter);
    mongoc_collection_destroy(chunks);
    bson_free(dst);
    bson_free(data);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("store-server");
    TCase *tc = tcase_create("documents");
    TCase *gf = tcase_create("gridfs");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, connect_insert_read_back);
    tcase_add_test(tc, bulk_flushes_by_count);
    tcase_add_test(tc, bulk_flushes_by_bytes);
    tcase_add_test(tc, bulk_error_names_index_and_server_code);
    tcase_add_test(tc, batches_multiple_of_size_has_no_empty_last_batch);
    tcase_add_test(tc, batches_remainder_is_the_last_batch);
    tcase_add_test(tc, batches_of_an_empty_collection);
    tcase_add_test(tc, batches_bad_pipeline_gives_server_code);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(gf, gridfs_setup, gridfs_teardown);
    tcase_add_test(gf, gridfs_file_round_trip_with_metadata);
    tcase_add_test(gf, gridfs_large_file_past_the_reply_limit);
    tcase_add_test(gf, gridfs_buffer_round_trip_and_empty_file);
    tcase_add_test(gf, gridfs_missing_and_corrupt_files);
    tcase_set_timeout(gf, 300);
    suite_add_tcase(s, gf);
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
