/* `bundle RUN_ID... -o FILE [--with-data]` and `import FILE`: runs moved between stores, exactly once (README
 * "Many jobs, one store": "Moving runs between stores").
 *
 * The format (version NEM_BUNDLE_FORMAT): a POSIX ustar archive (`tar tvf FILE` lists it, `tar xf` unpacks it),
 * its members in this order:
 *   nemesyst-bundle        "nemesyst-bundle VERSION\n": what the file is, read first, so a newer format is refused
 *                          before anything else is read
 *   NNN-KIND.bson          one part each: a BSON stream (the documents' bytes one after the other, as bsondump
 *                          reads them) of one collection, as the source store holds them, in this order (the order
 *                          import writes them in): data (--with-data: the documents the models consumed, stamps
 *                          included), predictions (by the predictors' stamps), metrics, blobs (nemesyst_blobs the
 *                          records and metadata refer to), chunks then files of each GridFS bucket (the models), and
 *                          runs (the run records) last, so no store ever shows a run whose models are not all there
 *   manifest.json          {format: "nemesyst-bundle", version, created, source: {db, host}, runs: [ids],
 *                          parent_runs: [ids], with_data, parts: [{name, kind, collection, documents, bytes,
 *                          sha256}]}, canonical extended JSON; runs are those asked for, then parent_runs: the runs
 *                          that made the parents of their models (metadata._nemesyst.parent), transitively, so that
 *                          lineage on the target walks the whole chain (add_ancestors)
 *   manifest.sha256        the sha256 of manifest.json, as 64 hex digits and a newline
 * then the two zero blocks that end a tar. A part over 8 GiB has its size in the base-256 form GNU tar and bsdtar
 * read. Written streaming (a part is written, then its header, left blank until then, is filled in: one
 * document, or one GridFS chunk, in memory at a time) into a temporary file in FILE's directory that is renamed to
 * FILE once complete and synced.
 *
 * import reads the file three times, never more than a batch of documents in memory: (1) every member's sha256 and
 * size against the manifest, before connecting (a corrupt, truncated or newer bundle is refused naming the part or
 * the versions: nothing written); (2) every document against the store, by _id, a batch at a time: one there with
 * other content is a conflict and refuses the whole bundle (nothing written); one there with the same content is
 * skipped, so importing twice adds nothing; (3) the writes, part by part in the file's order, the run records last.
 * Passes 1 and 2 stay two: the manifest, which says each part's collection and sha256, is the file's last member
 * (the writer streams), and a part must be known whole and intact before the store is asked about its documents
 * (a damaged one would be parsed and looked up first, and a damaged bundle would need a reachable server to be
 * refused); pass 1 is one sequential read with sha256, a small share of an import (make bench-bundle).
 *
 * All or nothing when a write fails midway (the server goes away, a disk fills): import records the _id of every
 * document before it inserts it, in a journal (an unlinked temporary file, so memory stays bounded at any size), and
 * on a failure deletes exactly those, then drops the collections the import made once they are empty again. Staging collections renamed into place were the other way;
 * they cannot be: a bundle adds to collections that exist (data, predictions, nemesyst_runs), and renameCollection
 * replaces a collection, it does not merge into one. Documents that were there before are never touched. */
#include "registry/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "provenance/provenance.h"
#include "runrec/runrec.h"
#include "util/errors.h"
#include "util/exitcodes.h"
#include "util/sha256.h"

#define BLOCK 512
#define MAGIC_MEMBER "nemesyst-bundle"
#define MANIFEST_MEMBER "manifest.json"
#define MANIFEST_SHA_MEMBER "manifest.sha256"
#define MAX_DOC ((uint32_t)48 << 20)   /* a document over this is damage: MongoDB's limit is 16 MiB */
#define BATCH_DOCS 500
#define FIRST "(none: the first)"
#define BATCH_BYTES ((size_t)8 << 20)

static bool bad(bson_error_t *err, const char *fmt, ...) BSON_GNUC_PRINTF(2, 3);
static bool bad(bson_error_t *err, const char *fmt, ...)
{
    va_list ap;
    char msg[sizeof err->message];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s", msg);
    return false;
}

static bool io_error(bson_error_t *err, const char *what, const char *path)
{
    bson_set_error(err, NEM_ERROR_STORE, NEM_STORE_EIO, "%s '%s': %s", what, path, strerror(errno));
    return false;
}

/* ---- a ustar writer: members of sizes known only at their end ---- */

typedef struct {
    FILE *f;
    const char *path;
    off_t header;
    uint64_t size;
    EVP_MD_CTX *sha;
    char name[100];
} tarw_t;

static void octal(char *field, size_t width, uint64_t v)
{
    char text[32];
    int n = snprintf(text, sizeof text, "%0*llo", (int)width - 1, (unsigned long long)v);
    memcpy(field, text + (n > (int)width - 1 ? n - ((int)width - 1) : 0), width - 1); /* callers keep v in range */
    field[width - 1] = '\0';
}

static void tar_header(uint8_t h[BLOCK], const char *name, uint64_t size, int64_t mtime)
{
    memset(h, 0, BLOCK);
    memcpy(h, name, strlen(name));
    octal((char *)h + 100, 8, 0644);
    octal((char *)h + 108, 8, 0);
    octal((char *)h + 116, 8, 0);
    if (size < ((uint64_t)1 << 33)) {
        octal((char *)h + 124, 12, size);
    } else { /* base-256: the first byte's high bit, then the size big-endian */
        h[124] = 0x80;
        for (int i = 0; i < 8; i++)
            h[135 - i] = (uint8_t)(size >> (8 * i));
    }
    octal((char *)h + 136, 12, mtime > 0 ? (uint64_t)mtime : 0);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memcpy(h + 265, "nemesyst", 8);
    memcpy(h + 297, "nemesyst", 8);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < BLOCK; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

static bool tw_put(tarw_t *t, const void *data, size_t len, bson_error_t *err)
{
    if (len && fwrite(data, 1, len, t->f) != len)
        return io_error(err, "cannot write", t->path);
    return true;
}

static bool tw_begin(tarw_t *t, const char *name, bson_error_t *err)
{
    static const uint8_t zero[BLOCK];
    snprintf(t->name, sizeof t->name, "%s", name);
    if ((t->header = ftello(t->f)) < 0)
        return io_error(err, "cannot write", t->path);
    t->size = 0;
    EVP_DigestInit_ex(t->sha, EVP_sha256(), NULL);
    return tw_put(t, zero, BLOCK, err);
}

static bool tw_write(tarw_t *t, const void *data, size_t len, bson_error_t *err)
{
    EVP_DigestUpdate(t->sha, data, len);
    t->size += len;
    return tw_put(t, data, len, err);
}

static bool tw_end(tarw_t *t, char hex[65], bson_error_t *err)
{
    static const uint8_t zero[BLOCK];
    uint8_t h[BLOCK];
    nem_sha256_final_hex(t->sha, hex);
    if (!tw_put(t, zero, (BLOCK - t->size % BLOCK) % BLOCK, err))
        return false;
    off_t end = ftello(t->f);
    tar_header(h, t->name, t->size, time(NULL));
    if (end < 0 || fseeko(t->f, t->header, SEEK_SET) != 0 || !tw_put(t, h, BLOCK, err) ||
        fseeko(t->f, end, SEEK_SET) != 0)
        return io_error(err, "cannot write", t->path);
    return true;
}

/* ---- a ustar reader ---- */

typedef struct {
    FILE *f;
    const char *path;
    char name[101];
    uint64_t size, left; /* the member's size, and what is still unread of it */
} tarr_t;

/* The next member's header: 1, 0 at the end of the archive, -1 on damage (err names what came before). */
static int tr_next(tarr_t *t, const char *after, bson_error_t *err)
{
    uint8_t h[BLOCK], skip[BLOCK];
    while (t->left) { /* the rest of the previous member */
        size_t n = t->left < BLOCK ? (size_t)t->left : BLOCK;
        if (fread(skip, 1, n, t->f) != n)
            return bad(err, "import: bundle '%s' is truncated in part %s", t->path, t->name), -1;
        t->left -= n;
    }
    if (t->size % BLOCK && fread(skip, 1, BLOCK - t->size % BLOCK, t->f) != BLOCK - t->size % BLOCK)
        return bad(err, "import: bundle '%s' is truncated after part %s", t->path, t->name), -1;
    t->size = 0;
    size_t got = fread(h, 1, BLOCK, t->f);
    bool first = !strcmp(after, FIRST);
    if (first && got != BLOCK)
        return bad(err, "import: '%s' is not a nemesyst bundle (shorter than a tar header)", t->path), -1;
    if (got != BLOCK)
        return bad(err, "import: bundle '%s' is truncated after part %s (no manifest)", t->path, after), -1;
    bool zero = true;
    for (int i = 0; i < BLOCK && zero; i++)
        zero = h[i] == 0;
    if (zero)
        return 0;
    unsigned sum = 0, want;
    for (int i = 0; i < BLOCK; i++)
        sum += i >= 148 && i < 156 ? ' ' : h[i];
    char field[13] = {0};
    memcpy(field, h + 148, 8);
    bool header_ok = sscanf(field, "%o", &want) == 1 && want == sum && memcmp(h + 257, "ustar", 5) == 0;
    if (!header_ok && first)
        return bad(err, "import: '%s' is not a nemesyst bundle (no tar header at its start)", t->path), -1;
    if (!header_ok)
        return bad(err, "import: bundle '%s' is corrupt: the header after part %s is damaged (or it is no bundle)",
                   t->path, after), -1;
    memcpy(t->name, h, 100);
    t->name[100] = '\0';
    if (h[124] & 0x80) {
        for (int i = 125; i < 136; i++)
            t->size = (t->size << 8) | h[i];
    } else {
        memcpy(field, h + 124, 12);
        field[12] = '\0';
        t->size = strtoull(field, NULL, 8);
    }
    t->left = t->size;
    return 1;
}

static bool tr_read(tarr_t *t, void *buf, size_t len, bson_error_t *err)
{
    if (len > t->left)
        return bad(err, "import: bundle '%s' is corrupt: part %s ends inside a document", t->path, t->name);
    if (fread(buf, 1, len, t->f) != len)
        return bad(err, "import: bundle '%s' is truncated in part %s", t->path, t->name);
    t->left -= len;
    return true;
}

/* The member's next document: 1, 0 at its end, -1 on damage. */
static int tr_doc(tarr_t *t, bson_t **doc, bson_error_t *err)
{
    uint8_t len4[4];
    if (!t->left)
        return 0;
    if (!tr_read(t, len4, 4, err))
        return -1;
    uint32_t len = (uint32_t)len4[0] | (uint32_t)len4[1] << 8 | (uint32_t)len4[2] << 16 | (uint32_t)len4[3] << 24;
    if (len < 5 || len > MAX_DOC || len - 4 > t->left)
        return bad(err, "import: bundle '%s' is corrupt: part %s holds a damaged document", t->path, t->name), -1;
    uint8_t *buf = bson_malloc(len);
    memcpy(buf, len4, 4);
    if (!tr_read(t, buf + 4, len - 4, err)) {
        bson_free(buf);
        return -1;
    }
    *doc = bson_new_from_data(buf, len);
    bson_free(buf);
    if (!*doc)
        return bad(err, "import: bundle '%s' is corrupt: part %s holds a damaged document", t->path, t->name), -1;
    return 1;
}

/* ---- bundle ---- */

typedef struct {
    char *collection;
    bson_t *matches; /* array of the consumed pipelines' leading $match filters (a pointer: a bson_t wants a
                      * 128-byte alignment that a realloc'ed array of these does not give) */
    uint32_t n;
    bool all;       /* a pipeline without one: the whole collection */
} consumed_t;

typedef struct {
    nem_reg_t *r;
    tarw_t tw;
    bson_t parts;
    uint32_t n_parts;
    uint64_t docs, total_docs, total_bytes;
    char kind[32], collection[256];
    nem_strv_t runs;     /* the runs asked for, then the runs their models were retrained from (transitively) */
    size_t n_asked;
    bson_t run_ids;      /* array of the run ids, for $in */
    uint32_t n_run_ids;
    nem_strv_t blobs;    /* sha256 of every blob referred to */
    nem_strv_t buckets;  /* the buckets with models of the runs */
    bson_t models;       /* array per bucket position: array of model ids */
    consumed_t *consumed;
    size_t n_consumed;
    bool with_data;
    const char *bucket;  /* the bucket being read */
    bson_t *bucket_ids;
    uint32_t n_bucket_ids;
} bw_t;

static bool part_begin(bw_t *b, const char *kind, const char *collection, bson_error_t *err)
{
    char name[100];
    snprintf(name, sizeof name, "%03u-%s.bson", b->n_parts + 1, kind);
    snprintf(b->kind, sizeof b->kind, "%s", kind);
    snprintf(b->collection, sizeof b->collection, "%s", collection);
    b->docs = 0;
    return tw_begin(&b->tw, name, err);
}

static bool part_doc(const bson_t *doc, void *ud, bson_error_t *err)
{
    bw_t *b = ud;
    b->docs++;
    return tw_write(&b->tw, bson_get_data(doc), doc->len, err);
}

static bool part_end(bw_t *b, bson_error_t *err)
{
    char hex[65], key[16];
    const char *k;
    bson_t p;
    if (!tw_end(&b->tw, hex, err))
        return false;
    bson_uint32_to_string(b->n_parts++, &k, key, sizeof key);
    BSON_APPEND_DOCUMENT_BEGIN(&b->parts, k, &p);
    BSON_APPEND_UTF8(&p, "name", b->tw.name);
    BSON_APPEND_UTF8(&p, "kind", b->kind);
    BSON_APPEND_UTF8(&p, "collection", b->collection);
    BSON_APPEND_INT64(&p, "documents", (int64_t)b->docs);
    BSON_APPEND_INT64(&p, "bytes", (int64_t)b->tw.size);
    BSON_APPEND_UTF8(&p, "sha256", hex);
    bson_append_document_end(&b->parts, &p);
    b->total_docs += b->docs;
    b->total_bytes += b->tw.size;
    return true;
}

/* One part: the documents of collection matching filter (opts: find's), streamed into the file. */
static bool part_find(bw_t *b, const char *kind, const char *collection, const bson_t *filter, const bson_t *opts,
                      bson_error_t *err)
{
    return part_begin(b, kind, collection, err) &&
           nem_store_find(b->r->store, collection, filter, opts, part_doc, b, err) && part_end(b, err);
}

/* Every {"blob": SHA256, "bytes": N} reference in doc, at any depth (provenance.h nem_lineage_compact). */
static void note_blobs(bw_t *b, const bson_iter_t *parent)
{
    bson_iter_t it;
    if (!bson_iter_recurse(parent, &it))
        return;
    bson_iter_t probe = it;
    const char *sha = NULL;
    bool bytes = false;
    int fields = 0;
    while (bson_iter_next(&probe)) {
        fields++;
        if (!strcmp(bson_iter_key(&probe), "blob") && BSON_ITER_HOLDS_UTF8(&probe))
            sha = bson_iter_utf8(&probe, NULL);
        else if (!strcmp(bson_iter_key(&probe), "bytes"))
            bytes = true;
    }
    if (fields == 2 && sha && bytes && BSON_ITER_HOLDS_DOCUMENT(parent)) {
        for (size_t i = 0; i < b->blobs.n; i++)
            if (!strcmp(b->blobs.v[i], sha))
                return;
        nem_strv_push(&b->blobs, sha);
        return;
    }
    while (bson_iter_next(&it))
        if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it))
            note_blobs(b, &it);
}

static void note_blobs_doc(bw_t *b, const bson_t *doc)
{
    bson_iter_t it;
    if (bson_iter_init(&it, doc))
        while (bson_iter_next(&it))
            if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it))
                note_blobs(b, &it);
}

static consumed_t *consumed_of(bw_t *b, const char *collection)
{
    for (size_t i = 0; i < b->n_consumed; i++)
        if (!strcmp(b->consumed[i].collection, collection))
            return &b->consumed[i];
    b->consumed = bson_realloc(b->consumed, (b->n_consumed + 1) * sizeof *b->consumed);
    consumed_t *c = &b->consumed[b->n_consumed++];
    c->collection = bson_strdup(collection);
    c->matches = bson_new();
    c->n = 0;
    c->all = false;
    return c;
}

/* A consumed record (collection, pipeline): the documents its pipeline can read are those of its leading $match,
 * the same filter verify's and the learner's cursor start from; all of them are bundled, in the collection's order,
 * so every later stage sees the same input on the target. A learner group's members each read their own shard: the
 * whole collection. */
static bool note_consumed(bw_t *b, const bson_t *rec, bool group, bson_error_t *err)
{
    const char *coll = nem_reg_str(rec, "collection", NULL);
    bson_iter_t it;
    char *text = NULL;
    bson_t pipeline, stage, match;
    if (!coll)
        return true;
    consumed_t *c = consumed_of(b, coll);
    if (c->all)
        return true;
    if (group || !bson_iter_init_find(&it, rec, "pipeline")) {
        c->all = true;
        return true;
    }
    if (!nem_reg_text(b->r->store, &it, &text, err))
        return false;
    if (!text || !bson_init_from_json(&pipeline, text, -1, NULL)) {
        c->all = true;
        bson_free(text);
        return true;
    }
    if (nem_reg_sub(&pipeline, "0", &stage) && nem_reg_sub(&stage, "$match", &match)) {
        bson_iter_t m;
        bool seen = false;
        if (bson_iter_init(&m, c->matches))
            while (!seen && bson_iter_next(&m)) {
                uint32_t len;
                const uint8_t *data;
                bson_t prev;
                bson_iter_document(&m, &len, &data);
                seen = bson_init_static(&prev, data, len) && bson_equal(&prev, &match);
            }
        if (!seen) {
            char key[16];
            const char *k;
            bson_uint32_to_string(c->n++, &k, key, sizeof key);
            BSON_APPEND_DOCUMENT(c->matches, k, &match);
        }
    } else {
        c->all = true;
    }
    bson_destroy(&pipeline);
    bson_free(text);
    return true;
}

/* A model of the runs (a files document of b->bucket): its id, blobs and consumed data. */
static bool note_model(const bson_t *file, void *ud, bson_error_t *err)
{
    bw_t *b = ud;
    bson_iter_t it;
    bson_t meta, consumed, group;
    if (bson_iter_init_find(&it, file, "_id")) {
        char key[16];
        const char *k;
        bson_uint32_to_string(b->n_bucket_ids++, &k, key, sizeof key);
        bson_append_value(b->bucket_ids, k, -1, bson_iter_value(&it));
    }
    note_blobs_doc(b, file);
    if (!b->with_data || !nem_reg_sub(file, "metadata._nemesyst", &meta) ||
        !nem_reg_sub(&meta, "consumed", &consumed) || !bson_iter_init(&it, &consumed))
        return true;
    bool is_group = nem_reg_sub(&meta, "group", &group);
    while (bson_iter_next(&it)) {
        uint32_t len;
        const uint8_t *data;
        bson_t rec;
        if (!BSON_ITER_HOLDS_DOCUMENT(&it))
            continue;
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&rec, data, len) && !note_consumed(b, &rec, is_group, err))
            return false;
    }
    return true;
}

static void filter_in(bson_t *filter, const char *field, const bson_t *values)
{
    bson_t in;
    BSON_APPEND_DOCUMENT_BEGIN(filter, field, &in);
    BSON_APPEND_ARRAY(&in, "$in", values);
    bson_append_document_end(filter, &in);
}

static bool in_runs(const bw_t *b, const char *run)
{
    for (size_t i = 0; run && i < b->runs.n; i++)
        if (!strcmp(b->runs.v[i], run))
            return true;
    return false;
}

/* The parent ({bucket, id}) of a model of the runs, noted for add_ancestors. */
static bool note_parent(const bson_t *file, void *ud, bson_error_t *err)
{
    bson_t *parents = ud, parent;
    bson_iter_t it;
    (void)err;
    if (nem_reg_sub(file, "metadata._nemesyst.parent", &parent) && bson_iter_init_find(&it, &parent, "id") &&
        !BSON_ITER_HOLDS_NULL(&it)) {
        char key[16];
        const char *k;
        bson_uint32_to_string(bson_count_keys(parents), &k, key, sizeof key);
        BSON_APPEND_DOCUMENT(parents, k, &parent);
    }
    return true;
}

/* The parent chains: a model retrained from another (metadata._nemesyst.parent) is bundled with the run that made
 * its parent, and so on to the first model, so that lineage on the target walks the same chain as on the source
 * (README: a bundle holds what a lineage of its models reads). A parent gone from the source ends its chain there,
 * as lineage's does; a parent's run without a run record is bundled without one (its models, metrics and
 * predictions), as the source holds it. */
static bool add_ancestors(bw_t *b, bson_error_t *err)
{
    nem_store_t *store = b->r->store;
    nem_strv_t buckets = {0};
    size_t done = 0;
    bool ok = nem_reg_buckets(store, &buckets, err);
    while (ok && done < b->runs.n) {
        bson_t ids = BSON_INITIALIZER, parents = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
        uint32_t n = 0;
        for (; done < b->runs.n; done++)
            nem_reg_push_str(&ids, &n, b->runs.v[done]);
        BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
        BSON_APPEND_INT32(&proj, "metadata._nemesyst.parent", 1);
        bson_append_document_end(&opts, &proj);
        for (size_t i = 0; ok && i < buckets.n; i++) {
            bson_t filter = BSON_INITIALIZER;
            char *files = bson_strdup_printf("%s.files", buckets.v[i]);
            filter_in(&filter, "metadata._nemesyst.run", &ids);
            ok = nem_store_find(store, files, &filter, &opts, note_parent, &parents, err);
            bson_destroy(&filter);
            bson_free(files);
        }
        bson_iter_t it;
        if (ok && bson_iter_init(&it, &parents))
            while (ok && bson_iter_next(&it)) {
                uint32_t len;
                const uint8_t *data;
                bson_t parent, file;
                bson_iter_t id;
                char *in_bucket = NULL;
                bool found = false;
                bson_iter_document(&it, &len, &data);
                if (!bson_init_static(&parent, data, len) || !bson_iter_init_find(&id, &parent, "id"))
                    continue;
                const char *bucket = nem_reg_str(&parent, "bucket", "");
                ok = nem_reg_find_model(store, *bucket ? bucket : NULL, bson_iter_value(&id), &file, &in_bucket,
                                        &found, err);
                if (ok && found) {
                    const char *run = nem_reg_str(&file, "metadata._nemesyst.run", NULL);
                    if (run && !in_runs(b, run)) {
                        nem_strv_push(&b->runs, run);
                        nem_reg_push_str(&b->run_ids, &b->n_run_ids, run);
                    }
                    bson_destroy(&file);
                }
                bson_free(in_bucket);
            }
        bson_destroy(&ids);
        bson_destroy(&parents);
        bson_destroy(&opts);
    }
    nem_strv_free(&buckets);
    return ok;
}

static bool write_parts(bw_t *b, bson_error_t *err)
{
    nem_store_t *store = b->r->store;
    bool ok = true;
    /* the run records: each asked for must exist; blobs their options refer to */
    for (size_t i = 0; ok && i < b->n_asked; i++) {
        bson_t run;
        if ((ok = nem_reg_load_run(store, b->runs.v[i], &run, err))) {
            note_blobs_doc(b, &run);
            bson_destroy(&run);
        }
    }
    size_t asked_end = b->runs.n;
    ok = ok && add_ancestors(b, err);
    for (size_t i = asked_end; ok && i < b->runs.n; i++) {
        bson_t run;
        bson_error_t none;
        if (nem_reg_load_run(store, b->runs.v[i], &run, &none)) {
            note_blobs_doc(b, &run);
            bson_destroy(&run);
        }
    }
    /* the models of the runs, bucket by bucket */
    nem_strv_t all = {0};
    bson_t models = BSON_INITIALIZER;
    if (ok)
        ok = nem_reg_buckets(store, &all, err);
    for (size_t i = 0; ok && i < all.n; i++) {
        bson_t filter = BSON_INITIALIZER, ids = BSON_INITIALIZER;
        char *files = bson_strdup_printf("%s.files", all.v[i]);
        filter_in(&filter, "metadata._nemesyst.run", &b->run_ids);
        b->bucket = all.v[i];
        b->bucket_ids = &ids;
        b->n_bucket_ids = 0;
        ok = nem_store_find(store, files, &filter, NULL, note_model, b, err);
        if (ok && b->n_bucket_ids) {
            char key[16];
            const char *k;
            bson_uint32_to_string((uint32_t)b->buckets.n, &k, key, sizeof key);
            BSON_APPEND_ARRAY(&models, k, &ids);
            nem_strv_push(&b->buckets, all.v[i]);
        }
        bson_destroy(&filter);
        bson_destroy(&ids);
        bson_free(files);
    }
    nem_strv_free(&all);
    /* data the models consumed, in each collection's own order */
    for (size_t i = 0; ok && b->with_data && i < b->n_consumed; i++) {
        consumed_t *c = &b->consumed[i];
        bool exists = false;
        if (!(ok = nem_reg_collection_exists(store, c->collection, &exists, err)) || !exists)
            continue; /* dropped at the source: verify says unverifiable on both stores */
        bson_t filter = BSON_INITIALIZER, m;
        if (!c->all && c->n == 1 && nem_reg_sub(c->matches, "0", &m))
            bson_concat(&filter, &m);
        else if (!c->all)
            BSON_APPEND_ARRAY(&filter, "$or", c->matches);
        ok = part_find(b, "data", c->collection, &filter, NULL, err);
        bson_destroy(&filter);
    }
    /* predictions: the documents each predictor of the runs wrote, by its stamp (the runs' records found by _id) */
    bson_t stamps = BSON_INITIALIZER;
    bson_iter_t it;
    if (ok)
        ok = nem_reg_run_stamps(store, &b->run_ids, true, &stamps, err);
    if (ok && bson_iter_init(&it, &stamps))
        while (ok && bson_iter_next(&it)) {
            uint32_t len;
            const uint8_t *data;
            bson_t e, colls;
            bson_iter_t s, c;
            bson_iter_document(&it, &len, &data);
            if (!bson_init_static(&e, data, len) || !in_runs(b, nem_reg_str(&e, "run", NULL)) ||
                !bson_iter_init_find(&s, &e, "stamp") || !nem_reg_sub(&e, "collections", &colls) ||
                !bson_iter_init(&c, &colls))
                continue;
            while (ok && bson_iter_next(&c)) {
                bson_t filter = BSON_INITIALIZER;
                bool exists = false;
                BSON_APPEND_VALUE(&filter, NEM_PROVENANCE_FIELD ".s", bson_iter_value(&s));
                if ((ok = nem_reg_collection_exists(store, bson_iter_utf8(&c, NULL), &exists, err)) && exists)
                    ok = part_find(b, "predictions", bson_iter_utf8(&c, NULL), &filter, NULL, err);
                bson_destroy(&filter);
            }
        }
    bson_destroy(&stamps);
    /* metrics, then the blobs */
    bson_t filter = BSON_INITIALIZER;
    filter_in(&filter, "run", &b->run_ids);
    if (ok)
        ok = part_find(b, "metrics", NEM_METRICS_COLLECTION, &filter, NULL, err);
    bson_reinit(&filter);
    if (ok && b->blobs.n) {
        bson_t shas = BSON_INITIALIZER;
        uint32_t n = 0;
        for (size_t i = 0; i < b->blobs.n; i++)
            nem_reg_push_str(&shas, &n, b->blobs.v[i]);
        filter_in(&filter, "_id", &shas);
        ok = part_find(b, "blobs", NEM_BLOBS_COLLECTION, &filter, NULL, err);
        bson_destroy(&shas);
        bson_reinit(&filter);
    }
    /* the models: chunks (in order, file by file), then the files documents that make them visible */
    for (size_t i = 0; ok && i < b->buckets.n; i++) {
        char key[16];
        const char *k;
        bson_t ids;
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        if (!nem_reg_sub(&models, k, &ids))
            continue;
        char *chunks = bson_strdup_printf("%s.chunks", b->buckets.v[i]);
        char *files = bson_strdup_printf("%s.files", b->buckets.v[i]);
        bson_t opts = BSON_INITIALIZER, sort;
        BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
        BSON_APPEND_INT32(&sort, "n", 1);
        bson_append_document_end(&opts, &sort);
        /* a small batch: chunks are up to 255 KiB each */
        BSON_APPEND_INT32(&opts, "batchSize", 16);
        ok = part_begin(b, "chunks", chunks, err);
        if (ok && bson_iter_init(&it, &ids))
            while (ok && bson_iter_next(&it)) {
                bson_reinit(&filter);
                BSON_APPEND_VALUE(&filter, "files_id", bson_iter_value(&it));
                ok = nem_store_find(store, chunks, &filter, &opts, part_doc, b, err);
            }
        ok = ok && part_end(b, err);
        bson_reinit(&filter);
        filter_in(&filter, "_id", &ids);
        ok = ok && part_find(b, "files", files, &filter, NULL, err);
        bson_reinit(&filter);
        bson_destroy(&opts);
        bson_free(chunks);
        bson_free(files);
    }
    /* the run records, last */
    filter_in(&filter, "_id", &b->run_ids);
    if (ok)
        ok = part_find(b, "runs", NEM_RUNS_COLLECTION, &filter, NULL, err);
    bson_destroy(&filter);
    bson_destroy(&models);
    return ok;
}

/* "parent_runs": the runs that came for their models' descendants, not asked for (a part of "runs"). */
static void append_ancestors(const bw_t *b, bson_t *doc)
{
    bson_t arr;
    uint32_t n = 0;
    BSON_APPEND_ARRAY_BEGIN(doc, "parent_runs", &arr);
    for (size_t i = b->n_asked; i < b->runs.n; i++)
        nem_reg_push_str(&arr, &n, b->runs.v[i]);
    bson_append_array_end(doc, &arr);
}

static bool write_manifest(bw_t *b, bson_error_t *err)
{
    bson_t m = BSON_INITIALIZER, src;
    char hex[65];
    size_t len;
    BSON_APPEND_UTF8(&m, "format", MAGIC_MEMBER);
    BSON_APPEND_INT32(&m, "version", NEM_BUNDLE_FORMAT);
    BSON_APPEND_DATE_TIME(&m, "created", (int64_t)time(NULL) * 1000);
    BSON_APPEND_DOCUMENT_BEGIN(&m, "source", &src);
    BSON_APPEND_UTF8(&src, "db", nem_store_db_name(b->r->store));
    BSON_APPEND_UTF8(&src, "host", nem_store_host_port(b->r->store));
    bson_append_document_end(&m, &src);
    BSON_APPEND_ARRAY(&m, "runs", &b->run_ids);
    append_ancestors(b, &m);
    BSON_APPEND_BOOL(&m, "with_data", b->with_data);
    BSON_APPEND_ARRAY(&m, "parts", &b->parts);
    char *json = bson_as_canonical_extended_json(&m, &len);
    bson_destroy(&m);
    bool ok = tw_begin(&b->tw, MANIFEST_MEMBER, err) && tw_write(&b->tw, json, len, err) &&
              tw_write(&b->tw, "\n", 1, err) && tw_end(&b->tw, hex, err);
    bson_free(json);
    char line[66];
    snprintf(line, sizeof line, "%s\n", hex);
    return ok && tw_begin(&b->tw, MANIFEST_SHA_MEMBER, err) && tw_write(&b->tw, line, 65, err) &&
           tw_end(&b->tw, hex, err);
}

int nem_reg_bundle(nem_reg_t *r, const char *const *runs, size_t n_runs, const char *output, bool force,
                   bool with_data)
{
    bson_error_t err = {0};
    bw_t b = {.r = r, .n_asked = n_runs, .with_data = with_data};
    char *copy = bson_strdup(output), *base = bson_strdup(output);
    char *tmp = bson_strdup_printf("%s/.%s.nemesyst-bundle-XXXXXX", dirname(copy), basename(base));
    char line[64], hex[65];
    int fd = mkstemp(tmp), status = NEM_EXIT_OK;
    bool ok = true;
    bson_init(&b.parts);
    bson_init(&b.run_ids);
    for (size_t i = 0; i < n_runs; i++) {
        nem_strv_push(&b.runs, runs[i]);
        nem_reg_push_str(&b.run_ids, &b.n_run_ids, runs[i]);
    }
    b.tw.path = output;
    b.tw.sha = EVP_MD_CTX_new();
    if (fd < 0 || !(b.tw.f = fdopen(fd, "w+b"))) {
        ok = io_error(&err, "cannot create a temporary file next to", output);
        if (fd >= 0)
            close(fd);
    }
    int vlen = snprintf(line, sizeof line, "%s %d\n", MAGIC_MEMBER, NEM_BUNDLE_FORMAT);
    ok = ok && tw_begin(&b.tw, MAGIC_MEMBER, &err) && tw_write(&b.tw, line, (size_t)vlen, &err) &&
         tw_end(&b.tw, hex, &err);
    if (ok) { /* the leading member is a part like the others: the manifest holds its sha256 */
        bson_t p;
        BSON_APPEND_DOCUMENT_BEGIN(&b.parts, "0", &p);
        BSON_APPEND_UTF8(&p, "name", MAGIC_MEMBER);
        BSON_APPEND_UTF8(&p, "kind", "format");
        BSON_APPEND_UTF8(&p, "collection", "");
        BSON_APPEND_INT64(&p, "documents", 0);
        BSON_APPEND_INT64(&p, "bytes", vlen);
        BSON_APPEND_UTF8(&p, "sha256", hex);
        bson_append_document_end(&b.parts, &p);
        b.n_parts = 1;
    }
    ok = ok && write_parts(&b, &err) && write_manifest(&b, &err);
    if (ok) {
        static const uint8_t end[2 * BLOCK];
        ok = tw_put(&b.tw, end, sizeof end, &err);
        if (ok && (fflush(b.tw.f) != 0 || fsync(fileno(b.tw.f)) != 0))
            ok = io_error(&err, "cannot write", output);
    }
    if (b.tw.f && fclose(b.tw.f) != 0 && ok)
        ok = io_error(&err, "cannot write", output);
    if (ok && !force && access(output, F_OK) == 0)
        ok = bad(&err, "bundle -o '%s': the file exists (it appeared while writing): give --force to replace it",
                 output);
    if (ok && rename(tmp, output) != 0)
        ok = io_error(&err, "cannot rename the bundle to", output);
    if (!ok) {
        unlink(tmp);
        status = nem_reg_fail(&err);
    } else if (r->json) {
        bson_t doc = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&doc, "file", output);
        BSON_APPEND_INT32(&doc, "version", NEM_BUNDLE_FORMAT);
        BSON_APPEND_ARRAY(&doc, "runs", &b.run_ids);
        append_ancestors(&b, &doc);
        BSON_APPEND_BOOL(&doc, "with_data", with_data);
        BSON_APPEND_ARRAY(&doc, "parts", &b.parts);
        BSON_APPEND_INT64(&doc, "documents", (int64_t)b.total_docs);
        nem_reg_print_json(r->out, &doc);
        bson_destroy(&doc);
    } else {
        char parents[64] = "";
        if (b.runs.n > n_runs)
            snprintf(parents, sizeof parents, " and %zu parent run%s (of retrained models)", b.runs.n - n_runs,
                     b.runs.n - n_runs == 1 ? "" : "s");
        fprintf(r->out, "bundle %s: %zu run%s%s, %" PRIu64 " documents in %u parts (%" PRIu64 " bytes)%s\n", output,
                n_runs, n_runs == 1 ? "" : "s", parents, b.total_docs, b.n_parts - 1, b.total_bytes,
                with_data ? ", with the data the models consumed" : "");
    }
    EVP_MD_CTX_free(b.tw.sha);
    bson_destroy(&b.parts);
    bson_destroy(&b.run_ids);
    nem_strv_free(&b.runs);
    nem_strv_free(&b.blobs);
    nem_strv_free(&b.buckets);
    for (size_t i = 0; i < b.n_consumed; i++) {
        bson_free(b.consumed[i].collection);
        bson_destroy(b.consumed[i].matches);
    }
    bson_free(b.consumed);
    bson_free(copy);
    bson_free(base);
    bson_free(tmp);
    return status;
}

/* ---- import ---- */

/* Pass 1: every member's sha256 and size against the manifest; the manifest into *manifest (initialised on
 * success). Nothing connects: a damaged bundle is refused before anything is asked of the store. */
bool nem_reg_bundle_check(const char *path, bson_t *manifest, bson_error_t *err)
{
    struct stat st;
    tarr_t t = {.path = path};
    if (stat(path, &st) != 0)
        return bad(err, "import: cannot read bundle '%s': %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return bad(err, "import: bundle '%s' is not a file", path);
    if (!(t.f = fopen(path, "rb")))
        return bad(err, "import: cannot read bundle '%s': %s", path, strerror(errno));
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    nem_strv_t names = {0}, shas = {0}, sizes = {0};
    char *json = NULL, hex[65], after[101] = FIRST, manifest_sha[65] = "";
    size_t json_len = 0;
    bool ok = true, saw_manifest_sha = false;
    int n, members = 0;
    uint8_t buf[64 * 1024];
    while (ok && (n = tr_next(&t, after, err)) == 1) {
        bool first = members++ == 0, is_manifest = !strcmp(t.name, MANIFEST_MEMBER);
        bool is_manifest_sha = !strcmp(t.name, MANIFEST_SHA_MEMBER);
        if (first && strcmp(t.name, MAGIC_MEMBER) != 0) {
            ok = bad(err, "import: '%s' is not a nemesyst bundle (its first member is '%s', not %s)", path, t.name,
                     MAGIC_MEMBER);
            break;
        }
        if ((is_manifest && t.size > ((uint64_t)64 << 20)) || (is_manifest_sha && t.size != 65) ||
            (first && t.size > 64)) {
            ok = bad(err, "import: bundle '%s' is corrupt: part %s has a wrong size", path, t.name);
            break;
        }
        EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
        uint8_t *keep = NULL;
        size_t kept = 0;
        if (is_manifest || is_manifest_sha || first)
            keep = bson_malloc((size_t)t.size + 1);
        while (ok && t.left) {
            size_t want = t.left < sizeof buf ? (size_t)t.left : sizeof buf;
            if ((ok = tr_read(&t, buf, want, err))) {
                EVP_DigestUpdate(sha, buf, want);
                if (keep) {
                    memcpy(keep + kept, buf, want);
                    kept += want;
                }
            }
        }
        nem_sha256_final_hex(sha, hex);
        if (ok && first) {
            int version = 0;
            keep[kept] = '\0';
            if (sscanf((char *)keep, MAGIC_MEMBER " %d", &version) != 1 || version < 1)
                ok = bad(err, "import: bundle '%s' is corrupt: part %s is damaged", path, MAGIC_MEMBER);
            else if (version > NEM_BUNDLE_FORMAT)
                ok = bad(err, "import: bundle '%s' is of format version %d, newer than this nemesyst-registry "
                         "reads (version %d): import it with a newer nemesyst", path, version, NEM_BUNDLE_FORMAT);
        }
        if (ok && is_manifest) {
            keep[kept] = '\0';
            json = (char *)keep;
            json_len = kept;
            keep = NULL;
            memcpy(manifest_sha, hex, sizeof hex);
        } else if (ok && is_manifest_sha) {
            saw_manifest_sha = true;
            if (!manifest_sha[0] || kept != 65 || memcmp(keep, manifest_sha, 64) != 0)
                ok = bad(err, "import: bundle '%s' is corrupt: part %s does not match its sha256", path,
                         MANIFEST_MEMBER);
        } else if (ok) {
            char size[32];
            snprintf(size, sizeof size, "%" PRIu64, t.size);
            nem_strv_push(&names, t.name);
            nem_strv_push(&shas, hex);
            nem_strv_push(&sizes, size);
        }
        bson_free(keep);
        snprintf(after, sizeof after, "%s", t.name);
    }
    if (ok && n < 0)
        ok = false;
    if (ok && members == 0)
        ok = bad(err, "import: '%s' is not a nemesyst bundle (an empty archive)", path);
    if (ok && (!json || !saw_manifest_sha))
        ok = bad(err, "import: bundle '%s' is truncated after part %s (no manifest)", path, after);
    bson_t m;
    bool parsed = false;
    if (ok && !(parsed = bson_init_from_json(&m, json, (ssize_t)json_len, NULL)))
        ok = bad(err, "import: bundle '%s' is corrupt: part %s is not valid JSON", path, MANIFEST_MEMBER);
    if (ok && (nem_reg_int(&m, "version", 0) != NEM_BUNDLE_FORMAT ||
               strcmp(nem_reg_str(&m, "format", ""), MAGIC_MEMBER) != 0))
        ok = bad(err, "import: bundle '%s': its manifest is of format version %" PRId64 ", this nemesyst-registry "
                 "reads version %d", path, nem_reg_int(&m, "version", 0), NEM_BUNDLE_FORMAT);
    /* every part of the manifest, in order, is a member with its sha256 and size, and nothing else is */
    bson_t parts;
    bson_iter_t it;
    size_t i = 0;
    if (ok && (!nem_reg_sub(&m, "parts", &parts) || !bson_iter_init(&it, &parts)))
        ok = bad(err, "import: bundle '%s' is corrupt: its manifest lists no parts", path);
    while (ok && bson_iter_next(&it)) {
        uint32_t len;
        const uint8_t *data;
        bson_t p;
        char size[32];
        bson_iter_document(&it, &len, &data);
        if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_init_static(&p, data, len)) {
            ok = bad(err, "import: bundle '%s' is corrupt: its manifest is damaged", path);
            break;
        }
        const char *name = nem_reg_str(&p, "name", "?");
        snprintf(size, sizeof size, "%" PRId64, nem_reg_int(&p, "bytes", -1));
        if (i >= names.n || strcmp(names.v[i], name) != 0)
            ok = bad(err, "import: bundle '%s' is corrupt or truncated: part %s is missing", path, name);
        else if (strcmp(sizes.v[i], size) != 0)
            ok = bad(err, "import: bundle '%s' is corrupt: part %s has %s bytes, its manifest says %s", path, name,
                     sizes.v[i], size);
        else if (strcmp(shas.v[i], nem_reg_str(&p, "sha256", "")) != 0)
            ok = bad(err, "import: bundle '%s' is corrupt: part %s does not match its sha256", path, name);
        i++;
    }
    if (ok && i != names.n)
        ok = bad(err, "import: bundle '%s' is corrupt: part %s is not in its manifest", path, names.v[i]);
    if (ok && manifest)
        bson_copy_to(&m, manifest);
    if (parsed)
        bson_destroy(&m);
    fclose(t.f);
    EVP_MD_CTX_free(sha);
    nem_strv_free(&names);
    nem_strv_free(&shas);
    nem_strv_free(&sizes);
    bson_free(json);
    return ok;
}

/* Passes 2 and 3: the parts' documents a batch at a time. */
typedef struct {
    nem_store_t *store;
    const char *path;
    bool write;
    FILE *journal;
    uint64_t added, present;
    char conflict[400];
    /* pass 2 -> pass 3: per part (the manifest's index), whether the store held none of its documents, so pass 3
     * asks nothing before writing them (FerretDB answers an _id $in by scanning the collection: a lookup a batch
     * would make an import quadratic in the collection's size); the collections that did not exist (a rollback
     * drops them again once empty) */
    bool *fresh;
    size_t n_fresh;
    nem_strv_t created, written;
} im_t;

/* The _id of doc as a one-field document {"": ID}, for comparisons. */
static bool id_doc(const bson_t *doc, bson_t *out)
{
    bson_iter_t it;
    bson_init(out);
    return bson_iter_init_find(&it, doc, "_id") && bson_append_value(out, "", 0, bson_iter_value(&it));
}

typedef struct {
    bson_t **docs;
    bson_t *ids; /* each document's {"": _id}, made once a batch */
    bool *there;
    size_t n;
    const char *collection, *part;
    bool lookup; /* false: nothing of the batch can be in the store, no need to ask */
    uint64_t part_present; /* documents of the part the store holds */
    im_t *im;
} batch_t;

static bool found_doc(const bson_t *doc, void *ud, bson_error_t *err)
{
    batch_t *b = ud;
    bson_t id;
    (void)err;
    if (!id_doc(doc, &id)) {
        bson_destroy(&id);
        return true;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (b->there[i] || !bson_equal(&id, &b->ids[i]))
            continue;
        b->there[i] = true;
        if (!bson_equal(doc, b->docs[i]) && !b->im->conflict[0]) {
            bson_iter_t it;
            bson_iter_init_find(&it, doc, "_id");
            char *text = nem_reg_id_text(bson_iter_value(&it));
            snprintf(b->im->conflict, sizeof b->im->conflict,
                     "%s _id %s is in the store already with other content (part %s)", b->collection, text, b->part);
            bson_free(text);
        }
    }
    bson_destroy(&id);
    return true;
}

static bool journal_id(FILE *j, const char *collection, const bson_t *doc, bson_error_t *err)
{
    bson_t rec = BSON_INITIALIZER;
    bson_iter_t it;
    BSON_APPEND_UTF8(&rec, "c", collection);
    if (bson_iter_init_find(&it, doc, "_id"))
        BSON_APPEND_VALUE(&rec, "id", bson_iter_value(&it));
    bool ok = fwrite(bson_get_data(&rec), 1, rec.len, j) == rec.len && fflush(j) == 0;
    bson_destroy(&rec);
    if (!ok)
        bson_set_error(err, NEM_ERROR_STORE, NEM_STORE_EIO, "import: cannot write the journal: %s", strerror(errno));
    return ok;
}

static bool write_batch(batch_t *b, bson_error_t *err);

static bool run_batch(batch_t *b, bson_error_t *err)
{
    im_t *im = b->im;
    bson_t filter = BSON_INITIALIZER, ids = BSON_INITIALIZER, in;
    uint32_t n = 0;
    bool ok = true;
    for (size_t i = 0; i < b->n; i++) {
        bson_iter_t it;
        char key[16];
        const char *k;
        b->there[i] = false;
        if (!bson_iter_init_find(&it, b->docs[i], "_id")) {
            for (size_t j = 0; j < i; j++)
                bson_destroy(&b->ids[j]);
            bson_destroy(&filter);
            bson_destroy(&ids);
            return bad(err, "import: bundle '%s' is corrupt: part %s holds a document without _id", im->path,
                       b->part);
        }
        id_doc(b->docs[i], &b->ids[i]);
        if (b->lookup) {
            bson_uint32_to_string(n++, &k, key, sizeof key);
            bson_append_value(&ids, k, -1, bson_iter_value(&it));
        }
    }
    if (b->lookup) {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
        BSON_APPEND_ARRAY(&in, "$in", &ids);
        bson_append_document_end(&filter, &in);
        ok = nem_store_find(im->store, b->collection, &filter, NULL, found_doc, b, err);
    }
    bson_destroy(&filter);
    bson_destroy(&ids);
    if (ok && im->conflict[0])
        ok = bad(err, "import: refused, nothing written: %s", im->conflict);
    ok = ok && write_batch(b, err);
    for (size_t i = 0; i < b->n; i++)
        bson_destroy(&b->ids[i]);
    return ok;
}

/* Inserts the documents of the batch marked in want, in one unordered bulk write, and journals the _id of each that
 * went in: the writeErrors of the reply say which did not (a duplicate _id a concurrent writer put there first stays
 * its writer's: a rollback must not remove it); when the reply cannot say (the connection was lost), every one. */
static bool insert_batch(batch_t *b, const bool *want, bson_error_t *err)
{
    im_t *im = b->im;
    mongoc_collection_t *coll = mongoc_database_get_collection(nem_store_database(im->store), b->collection);
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    mongoc_bulk_operation_t *op = mongoc_collection_create_bulk_operation_with_opts(coll, &opts);
    bson_destroy(&opts);
    bool went_in[BATCH_DOCS], ok = true;
    size_t index[BATCH_DOCS], m = 0;
    bson_error_t derr = {0};
    for (size_t i = 0; i < b->n && ok; i++)
        if (want[i]) {
            index[m] = i;
            went_in[m++] = true;
            if (!mongoc_bulk_operation_insert_with_opts(op, b->docs[i], NULL, &derr))
                ok = bad(err, "import: bundle '%s': part %s: %s", im->path, b->part, derr.message);
        }
    bson_t reply;
    bson_iter_t it, arr, e;
    uint32_t failed = 0;
    int64_t first = -1;
    int32_t code = 0;
    char msg[200] = "";
    if (ok && m) {
        ok = mongoc_bulk_operation_execute(op, &reply, &derr) != 0;
        if (!ok && bson_iter_init_find(&it, &reply, "writeErrors") && bson_iter_recurse(&it, &arr)) {
            while (bson_iter_next(&arr)) {
                int64_t k = -1;
                if (!bson_iter_recurse(&arr, &e))
                    continue;
                while (bson_iter_next(&e)) {
                    if (!strcmp(bson_iter_key(&e), "index"))
                        k = bson_iter_as_int64(&e);
                    else if (!failed && !strcmp(bson_iter_key(&e), "code"))
                        code = (int32_t)bson_iter_as_int64(&e);
                    else if (!failed && !strcmp(bson_iter_key(&e), "errmsg") && BSON_ITER_HOLDS_UTF8(&e))
                        snprintf(msg, sizeof msg, "%s", bson_iter_utf8(&e, NULL));
                }
                if (k >= 0 && (size_t)k < m) {
                    went_in[k] = false;
                    if (!failed++)
                        first = k;
                }
            }
        }
        bson_destroy(&reply);
    }
    for (size_t k = 0; k < m && im->journal; k++)
        if (went_in[k] && !journal_id(im->journal, b->collection, b->docs[index[k]], err)) {
            ok = false;
            break;
        }
    if (!ok && failed) {
        bson_iter_t id;
        char *text = bson_iter_init_find(&id, b->docs[index[first]], "_id") ? nem_reg_id_text(bson_iter_value(&id))
                                                                              : bson_strdup("?");
        bson_set_error(err, NEM_ERROR_STORE, NEM_STORE_ESERVER,
                       "insert into %s.%s failed for %u of %zu documents (part %s), first _id %s: %s (server code %d)",
                       nem_store_db_name(im->store), b->collection, failed, m, b->part, text, msg, code);
        bson_free(text);
    }
    else if (!ok && m && err->domain != NEM_ERROR_CONFIG && err->domain != NEM_ERROR_STORE)
        bson_set_error(err, NEM_ERROR_STORE, derr.domain == MONGOC_ERROR_STREAM ? NEM_STORE_ECONNECT : NEM_STORE_ESERVER,
                       "insert of %zu documents into %s.%s failed (part %s): %s", m, nem_store_db_name(im->store),
                       b->collection, b->part, derr.message);
    mongoc_bulk_operation_destroy(op);
    mongoc_collection_destroy(coll);
    return ok;
}

/* The documents of a looked-up batch not in the store (and once each), into it (pass 3), or counted (pass 2). */
static bool write_batch(batch_t *b, bson_error_t *err)
{
    im_t *im = b->im;
    bool want[BATCH_DOCS], any = false;
    for (size_t i = 0; i < b->n; i++) {
        want[i] = false;
        if (b->there[i]) {
            im->present++;
            b->part_present++;
            continue;
        }
        /* the same document twice in the batch: once */
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = bson_equal(&b->ids[i], &b->ids[j]);
        if (dup)
            continue;
        im->added++;
        want[i] = any = true;
    }
    return !im->write || !any || insert_batch(b, want, err);
}

static bool has_str(const nem_strv_t *v, const char *s)
{
    for (size_t i = 0; i < v->n; i++)
        if (!strcmp(v->v[i], s))
            return true;
    return false;
}

static bool any_doc(const bson_t *doc, void *ud, bson_error_t *err)
{
    (void)doc;
    (void)err;
    *(bool *)ud = true;
    return true;
}

/* Whether the batches of part index (into collection) must be looked up in the store. Pass 2: not when the
 * collection does not exist or holds nothing (noted, for a rollback); pass 3: not when pass 2 found none of the
 * part's documents and no earlier part of this import wrote into the collection (a bundle's data part and a
 * predictions part may share documents: a learner that read another run's predictions). A document that appears
 * in between fails the insert (a duplicate _id), which rolls the import back. */
static bool part_lookup(im_t *im, size_t index, const char *collection, bool *lookup, bson_error_t *err)
{
    if (im->write) {
        *lookup = index >= im->n_fresh || !im->fresh[index] || has_str(&im->written, collection);
        return true;
    }
    bool exists = false, any = false;
    bson_t empty = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    BSON_APPEND_INT64(&opts, "limit", 1);
    bool ok = nem_reg_collection_exists(im->store, collection, &exists, err);
    if (ok && !exists && !has_str(&im->created, collection))
        nem_strv_push(&im->created, collection);
    if (ok && exists)
        ok = nem_store_find(im->store, collection, &empty, &opts, any_doc, &any, err);
    bson_destroy(&empty);
    bson_destroy(&opts);
    *lookup = any;
    return ok;
}

static bool each_part(im_t *im, const bson_t *manifest, bson_error_t *err)
{
    tarr_t t = {.path = im->path};
    bson_t parts;
    bson_iter_t it;
    bool ok = true;
    if (!(t.f = fopen(im->path, "rb")))
        return bad(err, "import: cannot read bundle '%s': %s", im->path, strerror(errno));
    nem_reg_sub(manifest, "parts", &parts);
    bson_iter_init(&it, &parts);
    batch_t b = {.docs = bson_malloc(BATCH_DOCS * sizeof *b.docs), .there = bson_malloc(BATCH_DOCS * sizeof(bool)),
                 .ids = bson_aligned_alloc(BSON_ALIGNOF(bson_t), BATCH_DOCS * sizeof(bson_t)), .im = im};
    size_t index = 0;
    if (!im->write) {
        im->n_fresh = (size_t)bson_count_keys(&parts);
        im->fresh = bson_malloc0(im->n_fresh ? im->n_fresh * sizeof(bool) : 1);
    }
    for (; ok && bson_iter_next(&it); index++) {
        uint32_t len;
        const uint8_t *data;
        bson_t p;
        bson_iter_document(&it, &len, &data);
        bson_init_static(&p, data, len);
        int n = tr_next(&t, "?", err);
        if (n <= 0) {
            ok = n == 0 ? bad(err, "import: bundle '%s' changed while it was read", im->path) : false;
            break;
        }
        if (!strcmp(nem_reg_str(&p, "kind", ""), "format"))
            continue;
        b.collection = nem_reg_str(&p, "collection", "");
        b.part = nem_reg_str(&p, "name", "?");
        b.part_present = 0;
        if (!(ok = part_lookup(im, index, b.collection, &b.lookup, err)))
            break;
        size_t bytes = 0;
        for (;;) {
            bson_t *doc = NULL;
            int r = tr_doc(&t, &doc, err);
            if (r < 0)
                ok = false;
            if (r == 1) {
                b.docs[b.n++] = doc;
                bytes += doc->len;
            }
            if (ok && b.n && (r == 0 || b.n == BATCH_DOCS || bytes >= BATCH_BYTES))
                ok = run_batch(&b, err);
            if (!ok || r == 0 || b.n == BATCH_DOCS || bytes >= BATCH_BYTES) {
                for (size_t i = 0; i < b.n; i++)
                    bson_destroy(b.docs[i]);
                b.n = 0;
                bytes = 0;
            }
            if (!ok || r == 0)
                break;
        }
        if (ok && !im->write)
            im->fresh[index] = b.part_present == 0;
        if (ok && im->write)
            nem_strv_push(&im->written, b.collection);
    }
    bson_free(b.docs);
    bson_free(b.there);
    bson_free(b.ids);
    fclose(t.f);
    return ok;
}

/* Before the writes: the indexes the imported documents are queried by on the target, as nemesyst makes them where
 * it writes (provenance.h), and GridFS's own, since chunks and files go in as plain documents. A refusal is warned
 * about and the import goes on (queries then scan). A collection made here and left empty by a rollback is dropped
 * with its indexes (pass 2 listed it as made by the import). */
static void index_parts(im_t *im, const bson_t *manifest)
{
    bson_t parts;
    bson_iter_t it;
    nem_reg_sub(manifest, "parts", &parts);
    bson_iter_init(&it, &parts);
    while (bson_iter_next(&it)) {
        uint32_t len;
        const uint8_t *data;
        bson_t p;
        bson_iter_document(&it, &len, &data);
        bson_init_static(&p, data, len);
        const char *kind = nem_reg_str(&p, "kind", ""), *coll = nem_reg_str(&p, "collection", "");
        size_t n = strlen(coll);
        if (!strcmp(kind, "chunks") && n > 7) {
            char *bucket = bson_strndup(coll, n - 7); /* less ".chunks" */
            bson_error_t err;
            if (!nem_gridfs_ensure_indexes(im->store, bucket, &err))
                nem_reg_warn("import: %s", err.message);
            nem_provenance_index_models(im->store, bucket);
            bson_free(bucket);
        } else if (!strcmp(kind, "runs")) {
            nem_provenance_index_runs(im->store, coll);
        } else if (!strcmp(kind, "data") || !strcmp(kind, "predictions")) {
            nem_provenance_index_data(im->store, coll, *kind == 'p' ? NEM_STAGE_PREDICT : NEM_STAGE_CLEAN, false);
        }
    }
}

/* Undoes a failed pass 3: deletes every document the journal names, a collection's run of ids at a time. */
static void roll_back(im_t *im)
{
    tarr_t t = {.path = "the journal", .size = 0};
    bson_error_t err = {0};
    bson_t ids = BSON_INITIALIZER;
    char *coll = NULL;
    uint32_t n = 0;
    uint64_t removed = 0, failed = 0;
    struct stat st;
    if (fflush(im->journal) != 0 || fstat(fileno(im->journal), &st) != 0)
        return;
    rewind(im->journal);
    t.f = im->journal;
    t.left = (uint64_t)st.st_size;
    snprintf(t.name, sizeof t.name, "journal");
    for (;;) {
        bson_t *rec = NULL;
        int r = tr_doc(&t, &rec, &err);
        const char *c = r == 1 ? nem_reg_str(rec, "c", "") : NULL;
        if (n && (r != 1 || n == 1000 || strcmp(c, coll) != 0)) {
            bson_t filter = BSON_INITIALIZER, in;
            uint64_t deleted = 0;
            BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
            BSON_APPEND_ARRAY(&in, "$in", &ids);
            bson_append_document_end(&filter, &in);
            if (nem_store_delete_matching(im->store, coll, &filter, &deleted, &err))
                removed += deleted;
            else
                failed += n;
            bson_destroy(&filter);
            bson_reinit(&ids);
            n = 0;
        }
        if (r != 1)
            break;
        bson_iter_t it;
        if (!n) {
            bson_free(coll);
            coll = bson_strdup(c);
        }
        if (bson_iter_init_find(&it, rec, "id")) {
            char key[16];
            const char *k;
            bson_uint32_to_string(n++, &k, key, sizeof key);
            bson_append_value(&ids, k, -1, bson_iter_value(&it));
        }
        bson_destroy(rec);
    }
    /* the collections the import made, once empty again (a writer that put something there since keeps it) */
    for (size_t i = im->created.n; !failed && i-- > 0;) {
        bool any = false;
        bson_t empty = BSON_INITIALIZER, opts = BSON_INITIALIZER;
        BSON_APPEND_INT64(&opts, "limit", 1);
        if (nem_store_find(im->store, im->created.v[i], &empty, &opts, any_doc, &any, &err) && !any) {
            mongoc_collection_t *c = mongoc_database_get_collection(nem_store_database(im->store), im->created.v[i]);
            bson_error_t drop_err;
            if (!mongoc_collection_drop(c, &drop_err) && !strstr(drop_err.message, "not found"))
                nem_reg_warn("import: rolled back, but could not drop the empty collection %s it made: %s",
                             im->created.v[i], drop_err.message);
            mongoc_collection_destroy(c);
        }
        bson_destroy(&empty);
        bson_destroy(&opts);
    }
    if (failed)
        nem_reg_warn("import: rolled back %" PRIu64 " documents, %" PRIu64 " could not be removed (%s)", removed,
                     failed, err.message);
    bson_destroy(&ids);
    bson_free(coll);
}

int nem_reg_import(nem_reg_t *r, const char *path, const bson_t *manifest)
{
    bson_error_t err = {0};
    im_t im = {.store = r->store, .path = path};
    bool ok = each_part(&im, manifest, &err); /* pass 2: conflicts, nothing written */
    if (ok) {
        index_parts(&im, manifest);
        im.write = true;
        im.added = im.present = 0;
        im.journal = tmpfile();
        if (!im.journal)
            ok = io_error(&err, "import: cannot create a journal for", path);
        else if (!(ok = each_part(&im, manifest, &err))) /* pass 3: the writes */
            roll_back(&im);
        if (im.journal)
            fclose(im.journal);
    }
    bson_free(im.fresh);
    nem_strv_free(&im.created);
    nem_strv_free(&im.written);
    if (!ok) {
        if (im.write && err.domain != NEM_ERROR_CONFIG) {
            fprintf(stderr, "nemesyst-registry: error: import %s: %s; what this import wrote was removed\n", path,
                    err.message);
            return nem_exit_status(&err);
        }
        return nem_reg_fail(&err);
    }
    bson_t runs;
    nem_reg_sub(manifest, "runs", &runs);
    if (r->json) {
        bson_t doc = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&doc, "file", path);
        BSON_APPEND_ARRAY(&doc, "runs", &runs);
        BSON_APPEND_INT64(&doc, "added", (int64_t)im.added);
        BSON_APPEND_INT64(&doc, "present", (int64_t)im.present);
        nem_reg_print_json(r->out, &doc);
        bson_destroy(&doc);
    } else {
        fprintf(r->out, "import %s: %" PRIu64 " documents added, %" PRIu64 " already there\n", path, im.added,
                im.present);
    }
    return NEM_EXIT_OK;
}
