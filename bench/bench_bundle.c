/* The baseline of bench/run-bundle.sh: what `nemesyst-registry bundle --with-data` and `import` do at their
 * simplest, on the same store layer, with no tar, no sha256, no lookups and no journal.
 *   read:  every document of COLLECTION, in the collection's order, into DIR/docs.bson (a BSON stream, as a
 *          bundle's part holds them), and every file of BUCKET into DIR/model.N (nem_gridfs_download_to_file)
 *   write: DIR/docs.bson into COLLECTION (nem_bulk: unordered inserts, 1000 documents or 8 MiB a batch, as import's
 *          are), then each DIR/model.N uploaded into BUCKET (nem_gridfs_upload_file)
 * Prints one line: documents, bytes, files, and this process's peak resident memory (ru_maxrss, KiB).
 * Usage: bench_bundle read|write --port P --db DB --collection C --bucket B --dir DIR */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "store/store.h"

typedef struct {
    FILE *f;
    uint64_t docs, bytes;
} sink_t;

static bool put_doc(const bson_t *doc, void *ud, bson_error_t *err)
{
    sink_t *s = ud;
    s->docs++;
    s->bytes += doc->len;
    if (fwrite(bson_get_data(doc), 1, doc->len, s->f) != doc->len) {
        bson_set_error(err, NEM_ERROR_STORE, NEM_STORE_EIO, "write: %s", strerror(errno));
        return false;
    }
    return true;
}

typedef struct {
    nem_store_t *store;
    const char *bucket, *dir;
    unsigned files;
} models_t;

static bool get_model(const bson_t *file, void *ud, bson_error_t *err)
{
    models_t *m = ud;
    bson_iter_t it;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.%u", m->dir, m->files++);
    return bson_iter_init_find(&it, file, "_id") &&
           nem_gridfs_download_to_file(m->store, m->bucket, bson_iter_value(&it), path, err);
}

static bool do_read(nem_store_t *store, const char *coll, const char *bucket, const char *dir, sink_t *s,
                    unsigned *files, bson_error_t *err)
{
    char path[4096];
    bson_t empty = BSON_INITIALIZER;
    snprintf(path, sizeof path, "%s/docs.bson", dir);
    if (!(s->f = fopen(path, "wb"))) {
        bson_set_error(err, NEM_ERROR_STORE, NEM_STORE_EIO, "%s: %s", path, strerror(errno));
        return false;
    }
    bool ok = nem_store_find(store, coll, &empty, NULL, put_doc, s, err);
    if (fclose(s->f) != 0 && ok) {
        bson_set_error(err, NEM_ERROR_STORE, NEM_STORE_EIO, "%s: %s", path, strerror(errno));
        ok = false;
    }
    models_t m = {.store = store, .bucket = bucket, .dir = dir};
    char *files_coll = bson_strdup_printf("%s.files", bucket);
    ok = ok && nem_store_find(store, files_coll, &empty, NULL, get_model, &m, err);
    bson_free(files_coll);
    *files = m.files;
    return ok;
}

static bool do_write(nem_store_t *store, const char *coll, const char *bucket, const char *dir, sink_t *s,
                     unsigned *files, bson_error_t *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/docs.bson", dir);
    bson_reader_t *reader = bson_reader_new_from_file(path, err);
    if (!reader)
        return false;
    nem_bulk_t *bulk = nem_bulk_new(store, coll, 0, 0);
    const bson_t *doc;
    bool eof = false, ok = true;
    while (ok && (doc = bson_reader_read(reader, &eof))) {
        s->docs++;
        s->bytes += doc->len;
        ok = nem_bulk_add(bulk, doc, err);
    }
    ok = ok && nem_bulk_flush(bulk, err);
    nem_bulk_destroy(bulk);
    bson_reader_destroy(reader);
    if (ok && !eof) {
        bson_set_error(err, NEM_ERROR_STORE, NEM_STORE_EIO, "%s: a damaged document", path);
        ok = false;
    }
    for (unsigned i = 0; ok; i++) {
        bson_value_t id;
        snprintf(path, sizeof path, "%s/model.%u", dir, i);
        FILE *f = fopen(path, "rb");
        if (!f)
            break;
        fclose(f);
        if ((ok = nem_gridfs_upload_file(store, bucket, "model", path, NULL, &id, err))) {
            bson_value_destroy(&id);
            (*files)++;
        }
    }
    return ok;
}

int main(int argc, char **argv)
{
    static const struct option longs[] = {{"port", required_argument, NULL, 'p'}, {"db", required_argument, NULL, 'd'},
                                          {"collection", required_argument, NULL, 'c'},
                                          {"bucket", required_argument, NULL, 'b'},
                                          {"dir", required_argument, NULL, 'D'}, {NULL, 0, NULL, 0}};
    const char *db = NULL, *coll = NULL, *bucket = NULL, *dir = NULL, *mode = argc > 1 ? argv[1] : "";
    int port = 0, c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'p': port = atoi(optarg); break;
        case 'd': db = optarg; break;
        case 'c': coll = optarg; break;
        case 'b': bucket = optarg; break;
        case 'D': dir = optarg; break;
        default: return 2;
        }
    }
    if ((strcmp(mode, "read") != 0 && strcmp(mode, "write") != 0) || !port || !db || !coll || !bucket || !dir) {
        fprintf(stderr, "usage: bench_bundle read|write --port P --db DB --collection C --bucket B --dir DIR\n");
        return 2;
    }
    mongoc_init();
    bson_error_t err = {0};
    nem_store_opts_t o = {.host = "127.0.0.1", .port = port, .db_name = db, .max_staleness = -1};
    nem_store_t *store = nem_store_new(&o, &err);
    sink_t s = {0};
    unsigned files = 0;
    bool ok = store && (!strcmp(mode, "read") ? do_read(store, coll, bucket, dir, &s, &files, &err)
                                              : do_write(store, coll, bucket, dir, &s, &files, &err));
    if (store)
        nem_store_destroy(store);
    mongoc_cleanup();
    if (!ok) {
        fprintf(stderr, "bench_bundle %s: %s\n", mode, err.message);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%s: %llu documents, %llu bytes, %u files, peak %ld KiB\n", mode, (unsigned long long)s.docs,
           (unsigned long long)s.bytes, files, ru.ru_maxrss);
    return 0;
}
