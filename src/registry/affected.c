/* `affected`: from data to everything made from it. The documents are given as a filter on a collection, as _ids
 * (in one collection or in any), or as what a run or one of its scripts wrote (their provenance stamps,
 * provenance.h; and the models its learners stored). Every model's consumed records (stage/worker/writer.c: collection,
 * pipeline, count, complete; a learner group's other members from member 0's record with their own shard in place
 * of its first $match, as verify.c rebuilds them) are re-run on the server restricted to those documents, each
 * distinct (collection, pipeline, limit) once however many models share it:
 *   - A pipeline whose every stage maps each input document to outputs of its own ($match, $project, $addFields,
 *     $set, $unset, $unwind, $replaceRoot, $replaceWith, $redact, $lookup, $graphLookup, and $sort, which only
 *     orders them) gives, run on part of its input, exactly the outputs that came from that part, whatever its
 *     stages do to _id: the documents go first, as a $match on the stored documents, and $count counts.
 *   - One that also selects across documents ($limit, $skip; or a learner that stopped early, whose record's count
 *     is then a $limit) does not: the part's outputs are not the part of the whole's. It runs whole and each output
 *     is traced to its input by _id, which is sound only when no stage changes or drops _id: ids with a final
 *     $match on _id, a filter by streaming the outputs' _ids and asking the collection which of them it matches,
 *     PROBE_BATCH at a time.
 *   - Anything else ($group, $count, $facet, $sample, $setWindowFields, $unionWith, a stage this file does not know,
 *     _id changed before a $limit, a join of a selected collection) cannot be traced: the model cannot be checked,
 *     and says why, unless it is affected anyway.
 * Then, transitively, the models retrained from an affected one (_nemesyst.parent), and the predictions made with
 * any of them (_nemesyst.model, in every collection a predict script of any run wrote to). Nothing is loaded whole:
 * pipelines run on the server and are counted there, or streamed in batches. */
#include "registry/registry.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "provenance/provenance.h"
#include "util/exitcodes.h"
#include "util/stages.h"
#include "util/text.h"

#define ID_CHUNK 10000   /* ids in one $in */
#define PROBE_BATCH 1000 /* outputs' _ids looked up in one query */
#define WHY 512

/* ---- the documents ---- */

/* A value as comparable bytes: the same value stored is the same bytes. */
typedef struct {
    uint8_t *data;
    size_t len;
} blob_t;

static blob_t blob_of(const bson_value_t *v)
{
    bson_t w = BSON_INITIALIZER;
    blob_t b;
    uint32_t len = 0;
    BSON_APPEND_VALUE(&w, "v", v);
    b.data = bson_destroy_with_steal(&w, true, &len);
    b.len = len;
    return b;
}

static int blob_cmp(const void *x, const void *y)
{
    const blob_t *a = x, *b = y;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return memcmp(a->data, b->data, a->len);
}


/* One set of documents: a filter on the stored documents of a collection (or of any: --id without --collection). */
typedef struct {
    char *collection;
    bson_t *filter; /* by pointer: a bson_t may point into itself, and the array moves */
    bool by_id;     /* filter is {_id: {$in: [...]}}: testable on an output's _id */
} part_t;

typedef struct {
    part_t *v;
    size_t n;
    nem_strv_t stored;  /* --run: the keys of its learn scripts ("learn-0"), whose models are affected as such */
    bson_t describe;    /* the selection as the report shows it */
    int64_t documents;  /* how many documents it holds now; -1: not counted (ids in any collection) */
} sel_t;

static void add_part(sel_t *s, const char *collection, bson_t *filter, bool by_id)
{
    s->v = bson_realloc(s->v, (s->n + 1) * sizeof *s->v);
    s->v[s->n].collection = collection ? bson_strdup(collection) : NULL;
    s->v[s->n].filter = bson_copy(filter);
    bson_destroy(filter);
    s->v[s->n].by_id = by_id;
    s->n++;
}

static void sel_free(sel_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        bson_free(s->v[i].collection);
        bson_destroy(s->v[i].filter);
    }
    bson_free(s->v);
    nem_strv_free(&s->stored);
    bson_destroy(&s->describe);
}

static void bad(bson_error_t *err, const char *fmt, const char *a, const char *b)
{
    bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, fmt, a, b);
}

/* One ID: 24 hex digits an ObjectId; else an extended-JSON value (5, "a", {"$oid": "..."}); else the text as a
 * string. Text that starts like JSON ({, [, ") must be JSON. */
static bool parse_id(const char *text, const char *where, bson_t *arr, uint32_t *n, bson_error_t *err)
{
    char key[16], quoted[80];
    const char *k;
    bson_uint32_to_string((*n)++, &k, key, sizeof key);
    if (!*text) {
        bad(err, "%s: an empty id%s", where, "");
        return false;
    }
    if (strlen(text) == 24 && bson_oid_is_valid(text, 24)) {
        bson_oid_t oid;
        bson_oid_init_from_string(&oid, text);
        BSON_APPEND_OID(arr, k, &oid);
        return true;
    }
    char *json = bson_strdup_printf("{\"v\": %s}", text);
    bson_t wrap;
    bson_iter_t it;
    bool parsed = bson_init_from_json(&wrap, json, -1, NULL);
    bson_free(json);
    if (parsed && bson_iter_init_find(&it, &wrap, "v")) {
        BSON_APPEND_VALUE(arr, k, bson_iter_value(&it));
    } else if (strchr("{[\"", text[0])) {
        nem_text_quote(text, quoted, sizeof quoted);
        bad(err, "%s: id '%s' is not valid extended JSON", where, quoted);
    } else {
        BSON_APPEND_UTF8(arr, k, text);
    }
    if (parsed)
        bson_destroy(&wrap);
    return parsed || !strchr("{[\"", text[0]);
}

static bool read_ids_file(const char *path, bson_t *arr, uint32_t *n, bson_error_t *err)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, where[4200];
    size_t cap = 0, lineno = 0;
    ssize_t len;
    bool ok = true;
    if (!f) {
        bad(err, "--ids-file %s: cannot be read (%s)", path, strerror(errno));
        return false;
    }
    while (ok && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && isspace((unsigned char)line[len - 1]))
            line[--len] = '\0';
        char *t = line;
        while (isspace((unsigned char)*t))
            t++;
        if (!*t || *t == '#')
            continue;
        snprintf(where, sizeof where, "--ids-file %s line %zu", path, lineno);
        ok = parse_id(t, where, arr, n, err);
    }
    if (ok && ferror(f)) {
        bad(err, "--ids-file %s: cannot be read (%s)", path, strerror(errno));
        ok = false;
    }
    free(line);
    fclose(f);
    return ok;
}

/* --id and --ids-file: {_id: {$in: CHUNK}} parts of ID_CHUNK ids. */
static bool id_parts(nem_reg_t *r, sel_t *s, bson_error_t *err)
{
    bson_t ids = BSON_INITIALIZER;
    uint32_t n = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < r->n_ids; i++)
        ok = parse_id(r->ids[i], "--id", &ids, &n, err);
    if (ok && r->ids_file && (ok = read_ids_file(r->ids_file, &ids, &n, err)) && n == 0) {
        bad(err, "--ids-file %s: no ids in it%s", r->ids_file, "");
        ok = false;
    }
    /* each id once: one given twice must not count twice, and the chunks must not overlap */
    bson_iter_t it;
    blob_t *v = bson_malloc0(((size_t)n + 1) * sizeof *v);
    size_t nv = 0;
    if (ok && bson_iter_init(&it, &ids))
        while (bson_iter_next(&it))
            v[nv++] = blob_of(bson_iter_value(&it));
    qsort(v, nv, sizeof *v, blob_cmp);
    size_t distinct = 0;
    for (size_t i = 0; i < nv; i++)
        if (!distinct || blob_cmp(&v[i], &v[distinct - 1]) != 0)
            v[distinct++] = v[i];
        else
            bson_free(v[i].data);
    if (distinct == 1) {
        /* one document: {_id: ID}, which every server answers from the _id index (FerretDB pushes an equality down
         * to its backend, not an $in: a one-id $in scans the collection) */
        bson_t filter = BSON_INITIALIZER, one;
        bson_iter_t val;
        if (bson_init_static(&one, v[0].data, v[0].len) && bson_iter_init_find(&val, &one, "v"))
            BSON_APPEND_VALUE(&filter, "_id", bson_iter_value(&val));
        add_part(s, r->collection, &filter, true);
    }
    for (size_t i = 0; distinct > 1 && i < distinct;) {
        bson_t filter = BSON_INITIALIZER, in, chunk;
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
        BSON_APPEND_ARRAY_BEGIN(&in, "$in", &chunk);
        for (uint32_t k = 0; i < distinct && k < ID_CHUNK; k++, i++) {
            char key[16];
            const char *kp;
            bson_t one;
            bson_iter_t val;
            bson_uint32_to_string(k, &kp, key, sizeof key);
            if (bson_init_static(&one, v[i].data, v[i].len) && bson_iter_init_find(&val, &one, "v"))
                bson_append_value(&chunk, kp, -1, bson_iter_value(&val));
        }
        bson_append_array_end(&in, &chunk);
        bson_append_document_end(&filter, &in);
        add_part(s, r->collection, &filter, true);
    }
    for (size_t i = 0; i < distinct; i++)
        bson_free(v[i].data);
    bson_free(v);
    BSON_APPEND_INT64(&s->describe, "ids", (int64_t)distinct);
    bson_destroy(&ids);
    return ok;
}

/* "clean-0": its stage and position. */
static bool parse_key(const char *key, nem_stage_t *stage, size_t *position)
{
    const char *dash = strrchr(key, '-');
    char name[16], *end;
    if (!dash || dash == key || (size_t)(dash - key) >= sizeof name || !isdigit((unsigned char)dash[1]))
        return false;
    memcpy(name, key, (size_t)(dash - key));
    name[dash - key] = '\0';
    unsigned long long pos = strtoull(dash + 1, &end, 10);
    *position = (size_t)pos;
    return !*end && nem_stage_from_name(name, stage);
}

/* --run RUN_ID [--script KEY]: each script's stamp filter on each collection it wrote to; learners' keys to stored.
 * *problem is set (and true returned) when the run's documents carry no stamp to find them by. */
static bool run_parts(nem_reg_t *r, sel_t *s, char *problem, size_t plen, bson_error_t *err)
{
    bson_t record, scripts, options, resumed;
    bson_iter_t it;
    nem_strv_t keys = {0};
    bool found = false;
    if (!nem_reg_check_run_id(r->run, err) || !nem_reg_load_run(r->store, r->run, &record, err))
        return false;
    bool legacy = nem_reg_int(&record, "stamp_format", 1) < NEM_STAMP_FORMAT;
    bool has_opts = nem_reg_sub(&record, "options", &options), has_resumed = nem_reg_sub(&record, "resume_options",
                                                                                         &resumed);
    BSON_APPEND_UTF8(&s->describe, "run", r->run);
    if (r->script)
        BSON_APPEND_UTF8(&s->describe, "script", r->script);
    else
        BSON_APPEND_NULL(&s->describe, "script");
    if (has_opts && bson_iter_init_find(&it, &options, "provenance") && BSON_ITER_HOLDS_BOOL(&it) &&
        !bson_iter_bool(&it))
        snprintf(problem, plen, "run %s ran with --provenance false: its documents carry no stamp to find them by",
                 r->run);
    if (nem_reg_sub(&record, "scripts", &scripts) && bson_iter_init(&it, &scripts))
        while (!*problem && bson_iter_next(&it)) {
            const char *key = bson_iter_key(&it);
            nem_stage_t stage;
            size_t pos;
            if (!parse_key(key, &stage, &pos))
                continue;
            nem_strv_push(&keys, key);
            if (r->script && strcmp(r->script, key) != 0)
                continue;
            found = true;
            if (stage == NEM_STAGE_LEARN) {
                nem_strv_push(&s->stored, key);
                continue;
            }
            const char *first = has_opts ? nem_reg_output_of(&options, stage, (int64_t)pos) : NULL;
            const char *again = has_resumed ? nem_reg_output_of(&resumed, stage, (int64_t)pos) : NULL;
            for (int k = 0; k < 2; k++) {
                const char *coll = k ? again : first;
                if (!coll || (k && first && !strcmp(first, again)))
                    continue;
                bson_t filter;
                nem_provenance_filter(r->run, stage, pos, legacy, &filter);
                add_part(s, coll, &filter, false);
            }
        }
    if (!*problem && r->script && !found) {
        bson_string_t *list = bson_string_new("");
        for (size_t i = 0; i < keys.n; i++)
            bson_string_append_printf(list, "%s%s", i ? ", " : "", keys.v[i]);
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "--script %s: run %s has no such script (its "
                       "scripts: %s)", r->script, r->run, list->len ? list->str : "none");
        bson_string_free(list, true);
    }
    nem_strv_free(&keys);
    bson_destroy(&record);
    return *problem || !r->script || found;
}

/* A count of documents a filter selects in a collection; a filter the server refuses is a bad --filter. */
static bool count_selected(nem_reg_t *r, const char *collection, const bson_t *filter, int64_t *n, bson_error_t *err)
{
    if (nem_store_count(r->store, collection, filter, n, err))
        return true;
    if (r->filter && err->domain == NEM_ERROR_STORE && err->code == NEM_STORE_ESERVER) {
        char msg[sizeof err->message];
        memcpy(msg, err->message, sizeof msg);
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "--filter: the server refuses it on %s: %s",
                       collection, msg);
    }
    return false;
}

/* The documents r names, as parts. problem: set when they cannot be told (the run has no stamps). */
static bool select_documents(nem_reg_t *r, sel_t *s, char *problem, size_t plen, bson_error_t *err)
{
    char why[128];
    bson_init(&s->describe);
    s->documents = -1;
    *problem = '\0';
    if (r->collection) {
        bool exists = false;
        if (!nem_collection_name_ok(r->collection, why, sizeof why)) {
            bad(err, "--collection '%s': not a collection name (%s)", r->collection, why);
            return false;
        }
        if (!nem_reg_collection_exists(r->store, r->collection, &exists, err))
            return false;
        if (!exists) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "--collection '%s': no such collection in %s",
                           r->collection, nem_store_db_name(r->store));
            return false;
        }
    }
    if (r->collection)
        BSON_APPEND_UTF8(&s->describe, "collection", r->collection);
    else
        BSON_APPEND_NULL(&s->describe, "collection");
    if (r->run)
        return run_parts(r, s, problem, plen, err);
    if (r->n_ids || r->ids_file) {
        if (!id_parts(r, s, err))
            return false;
    } else {
        bson_t filter = BSON_INITIALIZER;
        bson_error_t e;
        if (r->filter && (r->filter[0] != '{' || !bson_init_from_json(&filter, r->filter, -1, &e))) {
            char quoted[80];
            nem_text_quote(r->filter, quoted, sizeof quoted);
            bad(err, "--filter '%s': not a JSON document (%s)", quoted,
                r->filter[0] != '{' ? "it must start with '{'" : e.message);
            return false;
        }
        BSON_APPEND_DOCUMENT(&s->describe, "filter", &filter);
        add_part(s, r->collection, &filter, false);
    }
    if (r->collection) {
        s->documents = 0;
        for (size_t i = 0; i < s->n; i++) {
            int64_t n = 0;
            if (!count_selected(r, r->collection, s->v[i].filter, &n, err))
                return false;
            s->documents += n;
        }
    }
    return true;
}

/* ---- the models and the cursors they consumed ---- */

typedef enum { M_PREPEND, M_TAIL } method_t;

/* One distinct cursor: what a learner read, re-run once for every model that read it. */
typedef struct {
    char *collection, *pipeline; /* pipeline as JSON text; NULL when none is recorded or its blob is gone */
    int64_t limit;               /* the learner read only the first limit documents; -1: all */
    char *problem;               /* why it cannot be restricted; NULL */
    bool done, relevant;         /* evaluated; some part of the documents applies to it */
    method_t method;
    int64_t affected;
} cursor_t;

typedef struct {
    size_t cursor;
    int member; /* a learner group's member; -1: no group */
    int64_t count;
} use_t;

enum { HOW_DATA = 1, HOW_STORED = 2, HOW_PARENT = 4 };

typedef struct {
    bson_value_t id;
    char *text, *bucket;
    bson_t *row; /* nem_reg_model_row; by pointer: a bson_t may point into itself, and the array moves */
    int64_t uploaded;
    bool has_parent;
    bson_value_t parent;
    use_t *uses;
    size_t n_uses;
    int64_t documents; /* recorded, all cursors; -1 when some count is unknown */
    char *data_collection;
    bool no_records;
    /* the answer */
    int how;
    int64_t affected;
    size_t via;        /* how & HOW_PARENT: the parent's index */
    char *problem;     /* a cursor that could not be checked, or a parent that could not be: why */
    bool undetermined; /* problem, and not affected by other means */
    size_t rank;       /* its place in the report, from 1 */
} model_t;

typedef struct {
    nem_reg_t *r;
    sel_t *sel;
    model_t *m;
    size_t n, cap;
    cursor_t *c;
    size_t nc, capc;
    nem_strv_t blob_keys, blob_texts; /* pipelines kept in nemesyst_blobs, read once each */
    const char *bucket;               /* while loading */
    nem_strv_t buckets;               /* every GridFS bucket of the database */
    int pass;                         /* descendants (): 0 affected ones, 1 unknown ones */
    size_t *next;                     /* descendants: the models marked in this round */
    size_t n_next;
} aff_t;

static size_t cursor_of(aff_t *a, const char *collection, const char *pipeline, int64_t limit, const char *problem)
{
    for (size_t i = 0; i < a->nc; i++)
        if (!strcmp(a->c[i].collection, collection) && a->c[i].limit == limit &&
            (pipeline && a->c[i].pipeline ? !strcmp(pipeline, a->c[i].pipeline) : !pipeline && !a->c[i].pipeline &&
             !strcmp(problem ? problem : "", a->c[i].problem ? a->c[i].problem : "")))
            return i;
    if (a->nc == a->capc) {
        a->capc = a->capc ? 2 * a->capc : 16;
        a->c = bson_realloc(a->c, a->capc * sizeof *a->c);
    }
    cursor_t *c = &a->c[a->nc];
    memset(c, 0, sizeof *c);
    c->collection = bson_strdup(collection);
    c->pipeline = pipeline ? bson_strdup(pipeline) : NULL;
    c->problem = problem ? bson_strdup(problem) : NULL;
    c->limit = limit;
    return a->nc++;
}

static void add_use(model_t *m, size_t cursor, int member, int64_t count)
{
    for (size_t i = 0; i < m->n_uses; i++)
        if (m->uses[i].cursor == cursor) /* another epoch over the same data */
            return;
    m->uses = bson_realloc(m->uses, (m->n_uses + 1) * sizeof *m->uses);
    m->uses[m->n_uses++] = (use_t){cursor, member, count};
}

/* A record's pipeline text: inline, or kept once in nemesyst_blobs (read once per blob). NULL text: none or gone;
 * *why says which. */
static bool pipeline_of(aff_t *a, const bson_t *rec, char **text, const char **why, bson_error_t *err)
{
    bson_iter_t it, blob;
    *text = NULL;
    *why = "its consumed record holds no pipeline";
    if (!bson_iter_init_find(&it, rec, "pipeline"))
        return true;
    const char *key = BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &blob) && bson_iter_find(&blob, "blob") &&
                              BSON_ITER_HOLDS_UTF8(&blob)
                          ? bson_iter_utf8(&blob, NULL)
                          : NULL;
    for (size_t i = 0; key && i < a->blob_keys.n; i++)
        if (!strcmp(a->blob_keys.v[i], key)) {
            *text = *a->blob_texts.v[i] ? bson_strdup(a->blob_texts.v[i]) : NULL;
            *why = "its pipeline was kept in " NEM_BLOBS_COLLECTION " and is gone from there";
            return true;
        }
    if (!nem_reg_text(a->r->store, &it, text, err))
        return false;
    if (key) {
        nem_strv_push(&a->blob_keys, key);
        nem_strv_push(&a->blob_texts, *text ? *text : "");
        *why = "its pipeline was kept in " NEM_BLOBS_COLLECTION " and is gone from there";
    }
    return true;
}

/* A group member's pipeline: member 0's with its first $match (member 0's shard) replaced by the member's shard. */
static char *member_pipeline(const char *text0, const char *shard)
{
    bson_t pipeline, arr, st, f;
    bson_iter_t it, first;
    char *json = NULL;
    if (!text0 || !shard || !bson_init_from_json(&pipeline, text0, -1, NULL))
        return NULL;
    if (bson_iter_init(&it, &pipeline) && bson_iter_next(&it) && BSON_ITER_HOLDS_DOCUMENT(&it) &&
        bson_iter_recurse(&it, &first) && bson_iter_find(&first, "$match") && bson_init_from_json(&f, shard, -1, NULL)) {
        uint32_t n = 0;
        bson_init(&arr);
        nem_reg_push_doc(&arr, &n, &st);
        BSON_APPEND_DOCUMENT(&st, "$match", &f);
        bson_append_document_end(&arr, &st);
        while (bson_iter_next(&it)) {
            char key[16];
            const char *k;
            bson_uint32_to_string(n++, &k, key, sizeof key);
            bson_append_value(&arr, k, -1, bson_iter_value(&it));
        }
        json = nem_provenance_pipeline_json(&arr);
        bson_destroy(&arr);
        bson_destroy(&f);
    }
    bson_destroy(&pipeline);
    return json;
}

static bool starts_with_match(const char *text)
{
    bson_t p;
    bson_iter_t it, st;
    bool yes = false;
    if (!text || !bson_init_from_json(&p, text, -1, NULL))
        return false;
    yes = bson_iter_init(&it, &p) && bson_iter_next(&it) && BSON_ITER_HOLDS_DOCUMENT(&it) &&
          bson_iter_recurse(&it, &st) && bson_iter_find(&st, "$match");
    bson_destroy(&p);
    return yes;
}

/* A model from its files document (m zeroed here), its cursors found or added; *is: it is a nemesyst model. */
static bool model_from(aff_t *a, const bson_t *file, model_t *m, bool *is, bson_error_t *err)
{
    bson_t prov, consumed, members;
    bson_iter_t it, f;
    memset(m, 0, sizeof *m);
    *is = bson_iter_init_find(&it, file, "_id") && nem_reg_sub(file, "metadata." NEM_PROVENANCE_FIELD, &prov);
    if (!*is)
        return true;
    bson_value_copy(bson_iter_value(&it), &m->id);
    m->text = nem_reg_id_text(&m->id);
    m->bucket = bson_strdup(a->bucket);
    m->row = bson_new();
    nem_reg_model_row(a->bucket, file, m->row);
    m->uploaded = nem_reg_date(file, "uploadDate");
    if (bson_iter_init(&it, &prov) && bson_iter_find_descendant(&it, "parent.id", &f) && !BSON_ITER_HOLDS_NULL(&f)) {
        m->has_parent = true;
        bson_value_copy(bson_iter_value(&f), &m->parent);
    }
    const char *gcoll = nem_reg_str(&prov, "data_collection", NULL);
    m->data_collection = gcoll ? bson_strdup(gcoll) : NULL;
    bool group = nem_reg_sub(&prov, "group.members", &members);
    m->documents = 0;
    if (nem_reg_sub(&prov, "consumed", &consumed) && bson_iter_init(&it, &consumed))
        while (bson_iter_next(&it)) {
            bson_t rec;
            bson_iter_t c;
            char *text;
            const char *why;
            const char *coll = nem_reg_sub(&consumed, bson_iter_key(&it), &rec) ? nem_reg_str(&rec, "collection", NULL)
                                                                                 : NULL;
            if (!coll)
                continue;
            if (!pipeline_of(a, &rec, &text, &why, err))
                return false;
            int64_t count = nem_reg_int(&rec, "count", -1);
            bool complete = !(bson_iter_init_find(&c, &rec, "complete") && BSON_ITER_HOLDS_BOOL(&c) &&
                              !bson_iter_bool(&c));
            /* a learner that stopped early read the first count documents; an unknown count, all it could */
            size_t cu = cursor_of(a, coll, text, complete || count < 0 ? -1 : count, text ? NULL : why);
            bool on_group = group && gcoll && !strcmp(coll, gcoll);
            size_t before = m->n_uses;
            add_use(m, cu, on_group ? 0 : -1, count);
            if (m->n_uses > before)
                m->documents = count < 0 || m->documents < 0 ? -1 : m->documents + count;
            /* the other members of a learner group read the same pipeline over their own shards */
            bson_iter_t mi;
            if (on_group && m->n_uses > before && starts_with_match(text) && bson_iter_init(&mi, &members))
                while (bson_iter_next(&mi)) {
                    bson_t mem;
                    if (!strcmp(bson_iter_key(&mi), "0") || !nem_reg_sub(&members, bson_iter_key(&mi), &mem))
                        continue;
                    char *mp = member_pipeline(text, nem_reg_str(&mem, "shard", NULL));
                    int64_t mc = nem_reg_int(&mem, "count", -1);
                    size_t mcu = cursor_of(a, coll, mp, -1, mp ? NULL : "a group member's shard is not recorded");
                    add_use(m, mcu, (int)strtol(bson_iter_key(&mi), NULL, 10), mc);
                    m->documents = mc < 0 || m->documents < 0 ? -1 : m->documents + mc;
                    bson_free(mp);
                }
            bson_free(text);
        }
    m->no_records = m->n_uses == 0;
    if (m->no_records)
        m->documents = -1;
    return true;
}

/* ---- restricting a pipeline to the documents ---- */

static bool part_applies(const part_t *p, const char *collection)
{
    return !p->collection || !strcmp(p->collection, collection);
}

/* A collection a join reads is one of the selected ones (or any is: ids in every collection). */
static bool selected_collection(const sel_t *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!s->v[i].collection || (name && !strcmp(s->v[i].collection, name)))
            return true;
    return false;
}

/* The collections a stage reads besides its input ($lookup, $graphLookup; and those of its sub-pipelines), and
 * whether one of them is selected: *which names it ("?" when a $lookup names none). */
static bool joins_selected(const sel_t *s, const char *name, bson_iter_t *spec, const char **which)
{
    bson_iter_t f, sub, stage, inner;
    if (!strcmp(name, "$lookup") || !strcmp(name, "$graphLookup")) {
        const char *from = NULL;
        if (BSON_ITER_HOLDS_DOCUMENT(spec) && bson_iter_recurse(spec, &f) && bson_iter_find(&f, "from") &&
            BSON_ITER_HOLDS_UTF8(&f))
            from = bson_iter_utf8(&f, NULL);
        if (!from || selected_collection(s, from)) {
            *which = from ? from : "?";
            return true;
        }
    } else if (!strcmp(name, "$unionWith")) {
        const char *coll = BSON_ITER_HOLDS_UTF8(spec) ? bson_iter_utf8(spec, NULL) : NULL;
        if (!coll && BSON_ITER_HOLDS_DOCUMENT(spec) && bson_iter_recurse(spec, &f) && bson_iter_find(&f, "coll") &&
            BSON_ITER_HOLDS_UTF8(&f))
            coll = bson_iter_utf8(&f, NULL);
        if (!coll || selected_collection(s, coll)) {
            *which = coll ? coll : "?";
            return true;
        }
    }
    /* sub-pipelines: $lookup's and $unionWith's pipeline, $facet's fields */
    if (!BSON_ITER_HOLDS_DOCUMENT(spec) || !bson_iter_recurse(spec, &f))
        return false;
    while (bson_iter_next(&f)) {
        if (!BSON_ITER_HOLDS_ARRAY(&f) || (strcmp(bson_iter_key(&f), "pipeline") != 0 && strcmp(name, "$facet") != 0) ||
            !bson_iter_recurse(&f, &sub))
            continue;
        while (bson_iter_next(&sub))
            if (BSON_ITER_HOLDS_DOCUMENT(&sub) && bson_iter_recurse(&sub, &stage) && bson_iter_next(&stage)) {
                inner = stage;
                if (joins_selected(s, bson_iter_key(&stage), &inner, which))
                    return true;
            }
    }
    return false;
}

static void join_why(uint32_t i, const char *name, const char *which, char *why, size_t len)
{
    snprintf(why, len, "stage %u %s joins documents of %.100s: which of them reached the training documents is not "
             "traced", i, name, *which == '?' ? "a collection it does not name" : which);
}

/* Does any stage join a selected collection? why says which. */
static bool pipeline_joins(const sel_t *s, const bson_t *pipeline, char *why, size_t len)
{
    bson_iter_t it, st;
    const char *which;
    uint32_t i = 0;
    if (bson_iter_init(&it, pipeline))
        for (; bson_iter_next(&it); i++)
            if (BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &st) && bson_iter_next(&st)) {
                bson_iter_t spec = st;
                if (joins_selected(s, bson_iter_key(&st), &spec, &which)) {
                    join_why(i, bson_iter_key(&st), which, why, len);
                    return true;
                }
            }
    return false;
}

static bool names_id(const char *field)
{
    return !strcmp(field, "_id") || !strncmp(field, "_id.", 4);
}

/* Does the stage change or drop _id? */
static bool changes_id(const char *name, bson_iter_t *spec)
{
    bson_iter_t f;
    if (!strcmp(name, "$project")) {
        if (!BSON_ITER_HOLDS_DOCUMENT(spec) || !bson_iter_recurse(spec, &f))
            return true;
        while (bson_iter_next(&f)) {
            if (!names_id(bson_iter_key(&f)))
                continue;
            if (strcmp(bson_iter_key(&f), "_id") != 0)
                return true; /* "_id.x": a part of it */
            if (BSON_ITER_HOLDS_BOOL(&f))
                return !bson_iter_bool(&f);
            if (BSON_ITER_HOLDS_NUMBER(&f))
                return bson_iter_as_double(&f) == 0;
            return !(BSON_ITER_HOLDS_UTF8(&f) && !strcmp(bson_iter_utf8(&f, NULL), "$_id"));
        }
        return false;
    }
    if (!strcmp(name, "$addFields") || !strcmp(name, "$set")) {
        if (!BSON_ITER_HOLDS_DOCUMENT(spec) || !bson_iter_recurse(spec, &f))
            return true;
        while (bson_iter_next(&f))
            if (names_id(bson_iter_key(&f)) &&
                !(!strcmp(bson_iter_key(&f), "_id") && BSON_ITER_HOLDS_UTF8(&f) &&
                  !strcmp(bson_iter_utf8(&f, NULL), "$_id")))
                return true;
        return false;
    }
    if (!strcmp(name, "$unset")) {
        if (BSON_ITER_HOLDS_UTF8(spec))
            return names_id(bson_iter_utf8(spec, NULL));
        if (!BSON_ITER_HOLDS_ARRAY(spec) || !bson_iter_recurse(spec, &f))
            return true;
        while (bson_iter_next(&f))
            if (!BSON_ITER_HOLDS_UTF8(&f) || names_id(bson_iter_utf8(&f, NULL)))
                return true;
        return false;
    }
    if (!strcmp(name, "$replaceRoot") || !strcmp(name, "$replaceWith")) {
        /* a new root: its _id is whatever the expression makes, unless it is the document itself */
        if (!strcmp(name, "$replaceRoot"))
            return !(BSON_ITER_HOLDS_DOCUMENT(spec) && bson_iter_recurse(spec, &f) && bson_iter_find(&f, "newRoot") &&
                     BSON_ITER_HOLDS_UTF8(&f) && !strcmp(bson_iter_utf8(&f, NULL), "$$ROOT"));
        return !(BSON_ITER_HOLDS_UTF8(spec) && !strcmp(bson_iter_utf8(spec, NULL), "$$ROOT"));
    }
    if (!strcmp(name, "$lookup") || !strcmp(name, "$graphLookup"))
        return !BSON_ITER_HOLDS_DOCUMENT(spec) || !bson_iter_recurse(spec, &f) || !bson_iter_find(&f, "as") ||
               !BSON_ITER_HOLDS_UTF8(&f) || names_id(bson_iter_utf8(&f, NULL));
    return false; /* $match, $sort, $unwind, $redact, $limit, $skip keep each document's _id */
}

static bool one_of(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(name, *list))
            return true;
    return false;
}

/* How the pipeline can be restricted to the documents: M_PREPEND or M_TAIL, or false with why. */
static bool classify(const sel_t *s, const bson_t *pipeline, int64_t limit, method_t *method, char *why, size_t len)
{
    static const char *const per_doc[] = {"$match", "$project", "$addFields", "$set", "$unset", "$unwind",
                                          "$replaceRoot", "$replaceWith", "$redact", "$lookup", "$graphLookup",
                                          "$sort", NULL};
    static const char *const selecting[] = {"$limit", "$skip", NULL};
    static const char *const combining[] = {"$group", "$bucket", "$bucketAuto", "$count", "$sortByCount", "$facet",
                                            "$setWindowFields", "$densify", "$fill", "$unionWith", NULL};
    bson_iter_t it, st;
    char changed[64] = "", selects[80] = "";
    uint32_t i = 0;
    if (!bson_iter_init(&it, pipeline)) {
        snprintf(why, len, "its recorded pipeline is not a list of stages");
        return false;
    }
    for (; bson_iter_next(&it); i++) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &st) || !bson_iter_next(&st)) {
            snprintf(why, len, "stage %u of its recorded pipeline is not a stage", i);
            return false;
        }
        const char *name = bson_iter_key(&st), *which = NULL;
        bson_iter_t spec = st;
        if (!strcmp(name, "$sample")) {
            snprintf(why, len, "stage %u %s drew documents at random: which ones the learner got cannot be redrawn",
                     i, name);
            return false;
        }
        if (one_of(name, combining)) {
            snprintf(why, len, "stage %u %s combines documents across the collection: which training documents came "
                     "from the given ones is not recorded", i, name);
            return false;
        }
        if (!one_of(name, per_doc) && !one_of(name, selecting)) {
            snprintf(why, len, "stage %u %.40s is not one whose documents can be traced here", i, name);
            return false;
        }
        if (joins_selected(s, name, &spec, &which)) {
            join_why(i, name, which, why, len);
            return false;
        }
        spec = st;
        if (!*changed && changes_id(name, &spec))
            snprintf(changed, sizeof changed, "stage %u %s", i, name);
        if (!*selects && one_of(name, selecting))
            snprintf(selects, sizeof selects, "stage %u %s", i, name);
    }
    if (!*selects && limit >= 0)
        snprintf(selects, sizeof selects, "the learner's early stop after %" PRId64 " documents", limit);
    if (!*selects) {
        *method = M_PREPEND;
        return true;
    }
    if (!*changed) {
        *method = M_TAIL;
        return true;
    }
    snprintf(why, len, "%s changes or drops _id and %s selects across documents: which training documents came from "
             "the given ones cannot be told", changed, selects);
    return false;
}

/* pipeline with a stage {name: value} before (first) or after it, and {$limit: limit} when limit >= 0. */
static void build(const bson_t *pipeline, const bson_t *front, int64_t limit, const bson_t *tail1, const bson_t *tail2,
                  bson_t *out)
{
    bson_iter_t it;
    uint32_t n = 0;
    char key[16];
    const char *k;
    bson_init(out);
    if (front) {
        bson_uint32_to_string(n++, &k, key, sizeof key);
        BSON_APPEND_DOCUMENT(out, k, front);
    }
    if (bson_iter_init(&it, pipeline))
        while (bson_iter_next(&it)) {
            bson_uint32_to_string(n++, &k, key, sizeof key);
            bson_append_value(out, k, -1, bson_iter_value(&it));
        }
    if (limit >= 0) {
        bson_t st;
        nem_reg_push_doc(out, &n, &st);
        BSON_APPEND_INT64(&st, "$limit", limit);
        bson_append_document_end(out, &st);
    }
    for (int t = 0; t < 2; t++) {
        const bson_t *tail = t ? tail2 : tail1;
        if (!tail)
            continue;
        bson_uint32_to_string(n++, &k, key, sizeof key);
        BSON_APPEND_DOCUMENT(out, k, tail);
    }
}

static bool add_n(const bson_t *doc, void *ud, bson_error_t *err)
{
    (void)err;
    *(int64_t *)ud += nem_reg_int(doc, "n", 0);
    return true;
}

/* M_TAIL with a filter: the outputs' _ids, PROBE_BATCH at a time, looked up in the collection with the filter. */
typedef struct {
    nem_store_t *store;
    const char *collection;
    const bson_t *filter;
    bson_t ids;
    uint32_t n;
    blob_t *found;
    size_t n_found;
    int64_t hits;
} probe_t;

static bool take_found(const bson_t *doc, void *ud, bson_error_t *err)
{
    probe_t *p = ud;
    bson_iter_t it;
    (void)err;
    if (bson_iter_init_find(&it, doc, "_id")) {
        p->found = bson_realloc(p->found, (p->n_found + 1) * sizeof *p->found);
        p->found[p->n_found++] = blob_of(bson_iter_value(&it));
    }
    return true;
}

static bool probe_flush(probe_t *p, bson_error_t *err)
{
    bson_t q = BSON_INITIALIZER, and, one, id;
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}");
    bson_iter_t it;
    if (!p->n) {
        bson_destroy(opts);
        bson_destroy(&q);
        return true;
    }
    BSON_APPEND_ARRAY_BEGIN(&q, "$and", &and);
    BSON_APPEND_DOCUMENT_BEGIN(&and, "0", &one);
    BSON_APPEND_DOCUMENT_BEGIN(&one, "_id", &id);
    BSON_APPEND_ARRAY(&id, "$in", &p->ids);
    bson_append_document_end(&one, &id);
    bson_append_document_end(&and, &one);
    BSON_APPEND_DOCUMENT(&and, "1", p->filter);
    bson_append_array_end(&q, &and);
    bool ok = nem_store_find(p->store, p->collection, &q, opts, take_found, p, err);
    if (ok && p->n_found) {
        qsort(p->found, p->n_found, sizeof *p->found, blob_cmp);
        if (bson_iter_init(&it, &p->ids))
            while (bson_iter_next(&it)) {
                blob_t b = blob_of(bson_iter_value(&it));
                p->hits += bsearch(&b, p->found, p->n_found, sizeof *p->found, blob_cmp) != NULL;
                bson_free(b.data);
            }
    }
    for (size_t i = 0; i < p->n_found; i++)
        bson_free(p->found[i].data);
    p->n_found = 0;
    bson_reinit(&p->ids);
    p->n = 0;
    bson_destroy(opts);
    bson_destroy(&q);
    return ok;
}

static bool probe_doc(const bson_t *doc, void *ud, bson_error_t *err)
{
    probe_t *p = ud;
    bson_iter_t it;
    char key[16];
    const char *k;
    if (!bson_iter_init_find(&it, doc, "_id"))
        return true;
    bson_uint32_to_string(p->n++, &k, key, sizeof key);
    bson_append_value(&p->ids, k, -1, bson_iter_value(&it));
    return p->n < PROBE_BATCH || probe_flush(p, err);
}

/* The affected documents of one cursor for one part: M_PREPEND [{$match: F}, ...pipeline, {$count}]; M_TAIL with ids
 * [...pipeline, {$match: {_id: {$in: IDS}}}, {$count}]; M_TAIL with a filter, the outputs' _ids probed. */
static bool count_part(aff_t *a, cursor_t *c, const bson_t *pipeline, const part_t *p, int64_t *n, bson_error_t *err)
{
    bson_t full, match = BSON_INITIALIZER, count = BSON_INITIALIZER, project = BSON_INITIALIZER, inner;
    bool ok;
    *n = 0;
    BSON_APPEND_DOCUMENT(&match, "$match", p->filter);
    BSON_APPEND_UTF8(&count, "$count", "n");
    if (c->method == M_PREPEND || p->by_id) {
        if (c->method == M_PREPEND)
            build(pipeline, &match, c->limit, &count, NULL, &full);
        else
            build(pipeline, NULL, c->limit, &match, &count, &full);
        ok = nem_reg_aggregate(a->r->store, c->collection, &full, add_n, n, err);
    } else {
        probe_t pr = {a->r->store, c->collection, p->filter, BSON_INITIALIZER, 0, NULL, 0, 0};
        BSON_APPEND_DOCUMENT_BEGIN(&project, "$project", &inner);
        BSON_APPEND_INT32(&inner, "_id", 1);
        bson_append_document_end(&project, &inner);
        build(pipeline, NULL, c->limit, &project, NULL, &full);
        ok = nem_reg_aggregate(a->r->store, c->collection, &full, probe_doc, &pr, err) && probe_flush(&pr, err);
        *n = pr.hits;
        for (size_t i = 0; i < pr.n_found; i++)
            bson_free(pr.found[i].data);
        bson_free(pr.found);
        bson_destroy(&pr.ids);
    }
    bson_destroy(&full);
    bson_destroy(&match);
    bson_destroy(&count);
    bson_destroy(&project);
    return ok;
}

/* Re-runs one cursor restricted to the documents, once: c->affected, or c->problem. A server's refusal of the
 * restricted pipeline (a $text $match that must come first, say) is a problem of the cursor, not a failure. */
static bool evaluate(aff_t *a, cursor_t *c, bson_error_t *err)
{
    const sel_t *s = a->sel;
    bson_t pipeline;
    bool parsed = false, ok = true, exists = false;
    char why[WHY];
    if (c->done)
        return true;
    c->done = true;
    for (size_t i = 0; i < s->n && !c->relevant; i++)
        c->relevant = part_applies(&s->v[i], c->collection);
    if (c->pipeline && !(parsed = bson_init_from_json(&pipeline, c->pipeline, -1, NULL)) && !c->problem)
        c->problem = bson_strdup("its recorded pipeline is not valid JSON");
    if (parsed && !c->relevant && (c->relevant = pipeline_joins(s, &pipeline, why, sizeof why)))
        c->problem = bson_strdup(why); /* it reads a selected collection through a join */
    if (!c->relevant || c->problem) {
        if (parsed)
            bson_destroy(&pipeline);
        return true;
    }
    if (!(ok = nem_reg_collection_exists(a->r->store, c->collection, &exists, err))) {
    } else if (!exists) {
        c->problem = bson_strdup_printf("its data collection %s.%s no longer exists (dropped?)",
                                        nem_store_db_name(a->r->store), c->collection);
    } else if (c->limit == 0) {
        c->affected = 0; /* it read nothing */
    } else if (!classify(s, &pipeline, c->limit, &c->method, why, sizeof why)) {
        c->problem = bson_strdup(why);
    } else {
        for (size_t i = 0; ok && i < s->n; i++) {
            int64_t n = 0;
            if (!part_applies(&s->v[i], c->collection))
                continue;
            ok = count_part(a, c, &pipeline, &s->v[i], &n, err);
            if (!ok && err->domain == NEM_ERROR_STORE && err->code == NEM_STORE_ESERVER) {
                c->problem = bson_strdup_printf("the server refused its pipeline restricted to the documents (%.300s)",
                                                err->message);
                ok = true;
                break;
            }
            c->affected += n;
        }
    }
    if (parsed)
        bson_destroy(&pipeline);
    return ok;
}

/* ---- from the models to everything made from them ---- */

static bool same_id(const bson_value_t *x, const bson_value_t *y)
{
    if (x->value_type == BSON_TYPE_OID || y->value_type == BSON_TYPE_OID)
        return x->value_type == y->value_type && bson_oid_equal(&x->value.v_oid, &y->value.v_oid);
    blob_t a = blob_of(x), b = blob_of(y);
    bool same = blob_cmp(&a, &b) == 0;
    bson_free(a.data);
    bson_free(b.data);
    return same;
}

static bool is_stored(const aff_t *a, const model_t *m)
{
    for (size_t i = 0; i < a->sel->stored.n; i++)
        if (!strcmp(nem_reg_str(m->row, "run", ""), a->r->run) &&
            !strcmp(nem_reg_str(m->row, "script", ""), a->sel->stored.v[i]))
            return true;
    return false;
}

static void model_free(model_t *m)
{
    bson_value_destroy(&m->id);
    if (m->has_parent)
        bson_value_destroy(&m->parent);
    bson_free(m->text);
    bson_free(m->bucket);
    if (m->row)
        bson_destroy(m->row);
    bson_free(m->uses);
    bson_free(m->data_collection);
    bson_free(m->problem);
    memset(m, 0, sizeof *m);
}

/* A model's own answer: stored by the run, trained on the documents (each of its cursors evaluated, once for all the
 * models that share it), or why that cannot be told. */
static bool judge(aff_t *a, model_t *m, bson_error_t *err)
{
    if (a->r->run && is_stored(a, m))
        m->how |= HOW_STORED;
    for (size_t u = 0; u < m->n_uses; u++) {
        cursor_t *c = &a->c[m->uses[u].cursor];
        if (!evaluate(a, c, err))
            return false;
        if (c->relevant && c->problem && !m->problem)
            m->problem = bson_strdup_printf("%s%s", m->uses[u].member > 0 ? "a group member's shard: " : "",
                                            c->problem);
        if (c->relevant && !c->problem)
            m->affected += c->affected;
    }
    if (m->affected > 0)
        m->how |= HOW_DATA;
    /* a learner that recorded nothing it read, of a selected collection */
    if (m->no_records && m->data_collection && selected_collection(a->sel, m->data_collection) && !m->problem)
        m->problem = bson_strdup_printf("its learner recorded no data it consumed from %s: nothing to re-read",
                                        m->data_collection);
    return true;
}

static size_t kept_index(const aff_t *a, const bson_value_t *id)
{
    for (size_t i = 0; i < a->n; i++)
        if (same_id(id, &a->m[i].id))
            return i;
    return SIZE_MAX;
}

static size_t keep(aff_t *a, model_t *m)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 16;
        a->m = bson_realloc(a->m, a->cap * sizeof *a->m);
    }
    a->m[a->n] = *m;
    return a->n++;
}

/* Each model as it streams by: judged, and kept only when it has an answer (affected, or cannot be checked); the
 * others are dropped, so memory holds the report and the distinct cursors, not every model. */
static bool scan_model(const bson_t *file, void *ud, bson_error_t *err)
{
    aff_t *a = ud;
    model_t m;
    bool is;
    if (!model_from(a, file, &m, &is, err)) {
        model_free(&m);
        return false;
    }
    if (!is)
        return true;
    if (!judge(a, &m, err)) {
        model_free(&m);
        return false;
    }
    if (m.how || m.problem)
        keep(a, &m);
    else
        model_free(&m);
    return true;
}

/* The models' files documents without what no answer needs: the options snapshot (which may be large). */
static bson_t *scan_opts(void)
{
    return BCON_NEW("projection", "{", "metadata." NEM_PROVENANCE_FIELD ".options", BCON_INT32(0), "}", "batchSize",
                    BCON_INT32(64));
}

/* A child of a round's parents: kept (read again when it was dropped), then marked as pass says. */
static bool child_model(const bson_t *file, void *ud, bson_error_t *err)
{
    aff_t *a = ud;
    bson_iter_t it, f;
    if (!bson_iter_init_find(&it, file, "_id"))
        return true;
    size_t i = kept_index(a, bson_iter_value(&it));
    if (i == SIZE_MAX) {
        model_t m;
        bool is;
        if (!model_from(a, file, &m, &is, err) || (is && !judge(a, &m, err))) {
            model_free(&m);
            return false;
        }
        if (!is)
            return true;
        i = keep(a, &m);
    }
    model_t *m = &a->m[i];
    size_t p = m->has_parent ? kept_index(a, &m->parent) : SIZE_MAX;
    (void)f;
    if (p == SIZE_MAX || p == i)
        return true;
    model_t *parent = &a->m[p];
    bool marked = false;
    if (a->pass == 0 && parent->how && !(m->how & HOW_PARENT)) {
        m->how |= HOW_PARENT;
        m->via = p;
        marked = true;
    } else if (a->pass == 1 && !parent->how && parent->problem && !m->how && !m->problem) {
        m->problem = bson_strdup_printf("retrained from %s, which cannot be checked", parent->text);
        marked = true;
    }
    if (marked) {
        a->next = bson_realloc(a->next, (a->n_next + 1) * sizeof *a->next);
        a->next[a->n_next++] = i;
    }
    return true;
}

/* Down the parent links, to the last, a generation at a time: the children of the round's models, asked of every
 * bucket by metadata._nemesyst.parent.id (an index nemesyst makes), ID_CHUNK parents per query. Affected ones make
 * affected children (pass 0); then unknown ones, unknown children among the rest (pass 1). A parent that is gone
 * ends a chain; a loop, which only corruption makes, ends when nothing more is marked. */
static bool descendants(aff_t *a, int pass, bson_error_t *err)
{
    size_t *round = NULL, n_round = 0;
    bool ok = true;
    for (size_t i = 0; i < a->n; i++)
        if (pass == 0 ? a->m[i].how != 0 : !a->m[i].how && a->m[i].problem) {
            round = bson_realloc(round, (n_round + 1) * sizeof *round);
            round[n_round++] = i;
        }
    a->pass = pass;
    bson_t *opts = scan_opts();
    while (ok && n_round) {
        a->next = NULL;
        a->n_next = 0;
        for (size_t from = 0; ok && from < n_round; from += ID_CHUNK) {
            bson_t filter = BSON_INITIALIZER, in, ids;
            uint32_t k = 0;
            BSON_APPEND_DOCUMENT_BEGIN(&filter, "metadata." NEM_PROVENANCE_FIELD ".parent.id", &in);
            BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ids);
            for (size_t j = from; j < n_round && j < from + ID_CHUNK; j++) {
                char key[16];
                const char *kp;
                bson_uint32_to_string(k++, &kp, key, sizeof key);
                bson_append_value(&ids, kp, -1, &a->m[round[j]].id);
            }
            bson_append_array_end(&in, &ids);
            bson_append_document_end(&filter, &in);
            for (size_t b = 0; ok && b < a->buckets.n; b++) {
                char *files = bson_strdup_printf("%s.files", a->buckets.v[b]);
                a->bucket = a->buckets.v[b];
                ok = nem_store_find(a->r->store, files, &filter, opts, child_model, a, err);
                bson_free(files);
            }
            bson_destroy(&filter);
        }
        bson_free(round);
        round = a->next;
        n_round = a->n_next;
        a->next = NULL;
    }
    bson_free(round);
    bson_destroy(opts);
    a->bucket = NULL;
    return ok;
}

/* Every nemesyst model streamed once (scan_model), then the descendants of the answered ones. */
static bool find_affected(aff_t *a, bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER, exists;
    bson_t *opts = scan_opts();
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "metadata." NEM_PROVENANCE_FIELD, &exists);
    BSON_APPEND_BOOL(&exists, "$exists", true);
    bson_append_document_end(&filter, &exists);
    bool ok = nem_reg_buckets(a->r->store, &a->buckets, err);
    for (size_t i = 0; ok && i < a->buckets.n; i++) {
        char *files = bson_strdup_printf("%s.files", a->buckets.v[i]);
        a->bucket = a->buckets.v[i];
        ok = nem_store_find(a->r->store, files, &filter, opts, scan_model, a, err);
        bson_free(files);
    }
    a->bucket = NULL;
    bson_destroy(opts);
    bson_destroy(&filter);
    ok = ok && descendants(a, 0, err) && descendants(a, 1, err);
    for (size_t i = 0; ok && i < a->n; i++)
        a->m[i].undetermined = a->m[i].problem && !a->m[i].how;
    return ok;
}

static int by_upload(const void *x, const void *y)
{
    const model_t *a = *(model_t *const *)x, *b = *(model_t *const *)y;
    if (a->uploaded != b->uploaded)
        return a->uploaded < b->uploaded ? -1 : 1;
    int c = strcmp(a->bucket, b->bucket);
    return c ? c : strcmp(a->text, b->text);
}

/* The predictions made with the affected models: in every collection a predict script wrote to, grouped by model
 * and by the stamp of the script that wrote them. */
typedef struct {
    char *collection, *model, *run, *script;
    size_t order; /* the model's place in the report */
    int64_t count;
    bool has_stamp;
    bson_oid_t stamp;
} pred_t;

typedef struct {
    aff_t *a;
    const char *collection;
    pred_t *v;
    size_t n;
} preds_t;

static bool add_pred(const bson_t *group, void *ud, bson_error_t *err)
{
    preds_t *p = ud;
    bson_iter_t it, m, s;
    const char *run = nem_reg_str(group, "_id.r", NULL); /* the first format names its run */
    (void)err;
    if (!bson_iter_init(&it, group) || !bson_iter_find_descendant(&it, "_id.m", &m))
        return true;
    size_t order = 0;
    for (size_t i = 0; i < p->a->n && !order; i++)
        if (p->a->m[i].how && same_id(bson_iter_value(&m), &p->a->m[i].id))
            order = p->a->m[i].rank;
    p->v = bson_realloc(p->v, (p->n + 1) * sizeof *p->v);
    pred_t *e = &p->v[p->n++];
    *e = (pred_t){bson_strdup(p->collection), nem_reg_id_text(bson_iter_value(&m)), run ? bson_strdup(run) : NULL,
                  NULL, order, nem_reg_int(group, "n", 0), false, {{0}}};
    if (bson_iter_init(&it, group) && bson_iter_find_descendant(&it, "_id.s", &s) && BSON_ITER_HOLDS_OID(&s)) {
        e->has_stamp = true;
        bson_oid_copy(bson_iter_oid(&s), &e->stamp);
    }
    return true;
}

static int pred_cmp(const void *x, const void *y)
{
    const pred_t *a = x, *b = y;
    int c = strcmp(a->collection, b->collection);
    if (c)
        return c;
    if (a->order != b->order)
        return a->order < b->order ? -1 : 1;
    c = strcmp(a->run ? a->run : "", b->run ? b->run : "");
    return c ? c : strcmp(a->script ? a->script : "", b->script ? b->script : "");
}

static bool predictions(aff_t *a, preds_t *p, bson_error_t *err)
{
    bson_t ids = BSON_INITIALIZER, names;
    nem_strv_t colls = {0};
    uint32_t n = 0;
    char key[16];
    const char *k;
    for (size_t i = 0; i < a->n; i++)
        if (a->m[i].how) {
            bson_uint32_to_string(n++, &k, key, sizeof key);
            bson_append_value(&ids, k, -1, &a->m[i].id);
        }
    /* the run records a record at a time, only their scripts and output options: the collections first, then the
     * runs and scripts of the stamps found */
    bool ok = n == 0 || nem_reg_predict_collections(a->r->store, &colls, err);
    p->a = a;
    /* [{$match: {_nemesyst.model: {$in: IDS}}}, {$group: {_id: {m: model, s: stamp, r: run (first format)}, n}}] */
    bson_t *pipeline = BCON_NEW("0", "{", "$match", "{", NEM_PROVENANCE_FIELD ".model", "{", "$in", BCON_ARRAY(&ids),
                                "}", "}", "}", "1", "{", "$group", "{", "_id", "{", "m",
                                BCON_UTF8("$" NEM_PROVENANCE_FIELD ".model"), "s",
                                BCON_UTF8("$" NEM_PROVENANCE_FIELD ".s"), "r",
                                BCON_UTF8("$" NEM_PROVENANCE_FIELD ".run"), "}", "n", "{", "$sum", BCON_INT32(1), "}",
                                "}", "}");
    for (size_t i = 0; ok && i < colls.n; i++) {
        p->collection = colls.v[i];
        ok = nem_reg_aggregate(a->r->store, colls.v[i], pipeline, add_pred, p, err);
    }
    if (ok && p->n) {
        bson_oid_t *want = bson_malloc0(p->n * sizeof *want);
        size_t nw = 0;
        for (size_t i = 0; i < p->n; i++)
            if (p->v[i].has_stamp)
                want[nw++] = p->v[i].stamp;
        if ((ok = nem_reg_resolve_stamps(a->r->store, want, nw, &names, err))) {
            for (size_t i = 0; i < p->n; i++) {
                bson_t who;
                char hex[25];
                if (!p->v[i].has_stamp)
                    continue;
                bson_oid_to_string(&p->v[i].stamp, hex);
                if (!nem_reg_sub(&names, hex, &who))
                    continue;
                bson_free(p->v[i].run);
                p->v[i].run = bson_strdup(nem_reg_str(&who, "run", "?"));
                p->v[i].script = bson_strdup(nem_reg_str(&who, "script", "?"));
            }
            bson_destroy(&names);
        }
        bson_free(want);
    }
    if (ok && p->n)
        qsort(p->v, p->n, sizeof *p->v, pred_cmp);
    bson_destroy(pipeline);
    nem_strv_free(&colls);
    bson_destroy(&ids);
    return ok;
}

/* ---- the report ---- */

static void how_text(const aff_t *a, const model_t *m, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    if (m->how & HOW_DATA)
        o += (size_t)snprintf(buf + o, len - o, "trained on them");
    if ((m->how & HOW_STORED) && o < len)
        o += (size_t)snprintf(buf + o, len - o, "%sstored by the run", o ? "; " : "");
    if ((m->how & HOW_PARENT) && o < len)
        o += (size_t)snprintf(buf + o, len - o, "%sretrained from %s", o ? "; " : "", a->m[m->via].text);
    if (m->problem && o < len)
        snprintf(buf + o, len - o, "%scannot be checked: %s", o ? "; " : "", m->problem);
}

static void model_entry(const aff_t *a, const model_t *m, bson_t *arr, uint32_t *n)
{
    bson_t e, how, data, d;
    uint32_t nh = 0, nd = 0;
    nem_reg_push_doc(arr, n, &e);
    bson_concat(&e, m->row);
    BSON_APPEND_ARRAY_BEGIN(&e, "how", &how);
    if (m->how & HOW_DATA)
        nem_reg_push_str(&how, &nh, "data");
    if (m->how & HOW_STORED)
        nem_reg_push_str(&how, &nh, "stored");
    if (m->how & HOW_PARENT)
        nem_reg_push_str(&how, &nh, "retrained");
    bson_append_array_end(&e, &how);
    if (m->how & HOW_PARENT)
        BSON_APPEND_UTF8(&e, "from", a->m[m->via].text);
    else
        BSON_APPEND_NULL(&e, "from");
    BSON_APPEND_INT64(&e, "affected", m->affected);
    if (m->documents >= 0)
        BSON_APPEND_INT64(&e, "documents", m->documents);
    else
        BSON_APPEND_NULL(&e, "documents");
    BSON_APPEND_ARRAY_BEGIN(&e, "data", &data);
    for (size_t u = 0; u < m->n_uses; u++) {
        const cursor_t *c = &a->c[m->uses[u].cursor];
        nem_reg_push_doc(&data, &nd, &d);
        BSON_APPEND_UTF8(&d, "collection", c->collection);
        if (c->pipeline)
            BSON_APPEND_UTF8(&d, "pipeline", c->pipeline);
        else
            BSON_APPEND_NULL(&d, "pipeline");
        if (m->uses[u].member >= 0)
            BSON_APPEND_INT32(&d, "member", m->uses[u].member);
        if (m->uses[u].count >= 0)
            BSON_APPEND_INT64(&d, "count", m->uses[u].count);
        else
            BSON_APPEND_NULL(&d, "count");
        if (c->relevant && !c->problem) {
            BSON_APPEND_INT64(&d, "affected", c->affected);
            BSON_APPEND_UTF8(&d, "method", c->method == M_PREPEND ? "documents first" : "traced by _id");
        } else {
            BSON_APPEND_NULL(&d, "affected");
            BSON_APPEND_NULL(&d, "method");
        }
        if (c->relevant && c->problem)
            BSON_APPEND_UTF8(&d, "problem", c->problem);
        else
            BSON_APPEND_NULL(&d, "problem");
        bson_append_document_end(&data, &d);
    }
    bson_append_array_end(&e, &data);
    if (m->problem)
        BSON_APPEND_UTF8(&e, "problem", m->problem);
    else
        BSON_APPEND_NULL(&e, "problem");
    bson_append_document_end(arr, &e);
}

static char *selection_text(const nem_reg_t *r, const sel_t *s)
{
    bson_string_t *t = bson_string_new("");
    if (r->run) {
        bson_string_append_printf(t, "what %s of run %s wrote", r->script ? r->script : "every script", r->run);
    } else if (r->n_ids || r->ids_file) {
        bson_string_append_printf(t, "%" PRId64 " id(s) in %s", nem_reg_int(&s->describe, "ids", 0),
                                  r->collection ? r->collection : "any collection");
    } else {
        bson_t f;
        char *json = nem_reg_sub(&s->describe, "filter", &f) ? bson_as_relaxed_extended_json(&f, NULL) : NULL;
        bson_string_append_printf(t, "%s%s%s", r->collection, json && strcmp(json, "{ }") ? " matching " : "",
                                  json && strcmp(json, "{ }") ? json : "");
        bson_free(json);
    }
    if (s->documents >= 0)
        bson_string_append_printf(t, ": %" PRId64 " document%s", s->documents, s->documents == 1 ? "" : "s");
    return bson_string_free(t, false);
}

static const nem_table_col_t affected_columns[] = {
    {"model", NEM_TABLE_LEFT, 0},  {"bucket", NEM_TABLE_LEFT, 0},    {"run", NEM_TABLE_LEFT, 0},
    {"script", NEM_TABLE_LEFT, 0}, {"documents", NEM_TABLE_LEFT, 0}, {"how", NEM_TABLE_LEFT, 0},
};

static const nem_table_col_t made_columns[] = {
    {"collection", NEM_TABLE_LEFT, 0}, {"count", NEM_TABLE_RIGHT, 0}, {"model", NEM_TABLE_LEFT, 0},
    {"run", NEM_TABLE_LEFT, 0},        {"script", NEM_TABLE_LEFT, 0},
};

static void print_table(FILE *out, const aff_t *a, model_t **order, size_t n, const preds_t *p, const char *sel,
                        const char *verdict)
{
    char how[1024];
    nem_table_t *t = nem_table_new(affected_columns, sizeof affected_columns / sizeof *affected_columns);
    fprintf(out, "documents   %s\n", sel);
    for (size_t i = 0; i < n; i++) {
        const model_t *m = order[i];
        if (!m->how && !m->undetermined)
            continue;
        how_text(a, m, how, sizeof how);
        nem_table_add(t, m->text);
        nem_table_add(t, m->bucket);
        nem_table_add(t, nem_reg_str(m->row, "run", "?"));
        nem_table_add(t, nem_reg_str(m->row, "script", "?"));
        char got[24] = "?";
        if (!m->undetermined)
            snprintf(got, sizeof got, "%" PRId64 "%s", m->affected, m->problem ? "+" : "");
        if (m->documents >= 0)
            nem_table_addf(t, "%s of %" PRId64, got, m->documents);
        else
            nem_table_addf(t, "%s of ?", got);
        nem_table_add(t, how);
    }
    if (nem_table_rows(t))
        nem_table_print(t, out, "  ");
    nem_table_destroy(t);
    if (p->n) {
        t = nem_table_new(made_columns, sizeof made_columns / sizeof *made_columns);
        for (size_t i = 0; i < p->n; i++) {
            nem_table_add(t, p->v[i].collection);
            nem_table_addf(t, "%" PRId64, p->v[i].count);
            nem_table_add(t, p->v[i].model);
            nem_table_add(t, p->v[i].run ? p->v[i].run : "?");
            nem_table_add(t, p->v[i].script ? p->v[i].script : "?");
        }
        fprintf(out, "predictions made with them\n");
        nem_table_print(t, out, "  ");
        nem_table_destroy(t);
    }
    fprintf(out, "%s\n", verdict);
}

int nem_reg_affected(nem_reg_t *r)
{
    sel_t sel = {0};
    aff_t a = {.r = r, .sel = &sel};
    preds_t preds = {0};
    bson_error_t err = {0};
    char problem[WHY] = "";
    model_t **order = NULL;
    int status = NEM_EXIT_OK;
    bool ok = select_documents(r, &sel, problem, sizeof problem, &err);
    if (ok && *problem) {
        fprintf(stderr, "nemesyst-registry: error: affected: %s\n", problem);
        status = NEM_EXIT_UNVERIFIABLE;
        goto out;
    }
    if (ok && r->run) { /* what the run wrote, counted now */
        sel.documents = 0;
        for (size_t i = 0; ok && i < sel.n; i++) {
            int64_t n = 0;
            ok = count_selected(r, sel.v[i].collection, sel.v[i].filter, &n, &err);
            sel.documents += n;
        }
    }
    ok = ok && find_affected(&a, &err);
    if (ok) {
        order = bson_malloc0((a.n + 1) * sizeof *order);
        for (size_t i = 0; i < a.n; i++)
            order[i] = &a.m[i];
        qsort(order, a.n, sizeof *order, by_upload);
        for (size_t i = 0; i < a.n; i++)
            order[i]->rank = i + 1;
    }
    ok = ok && predictions(&a, &preds, &err);
    if (!ok) {
        status = nem_reg_fail(&err);
        goto out;
    }

    size_t n_aff = 0, n_data = 0, n_child = 0, n_stored = 0, n_unknown = 0;
    int64_t n_pred = 0;
    nem_strv_t pcolls = {0};
    bson_string_t *unknown = bson_string_new("");
    for (size_t i = 0; i < a.n; i++) {
        const model_t *m = order[i];
        n_aff += m->how != 0;
        n_data += (m->how & HOW_DATA) != 0;
        n_stored += (m->how & (HOW_DATA | HOW_STORED)) == HOW_STORED;
        n_child += m->how == HOW_PARENT;
        if (m->undetermined)
            bson_string_append_printf(unknown, "%s%s in %s (%s)", n_unknown++ ? "; " : "", m->text, m->bucket,
                                      m->problem);
    }
    for (size_t i = 0; i < preds.n; i++) {
        bool known = false;
        n_pred += preds.v[i].count;
        for (size_t j = 0; j < pcolls.n && !known; j++)
            known = !strcmp(pcolls.v[j], preds.v[i].collection);
        if (!known)
            nem_strv_push(&pcolls, preds.v[i].collection);
    }
    char *verdict, stored[64] = "";
    if (r->run)
        snprintf(stored, sizeof stored, ", %zu stored by the run", n_stored);
    if (n_aff)
        verdict = bson_strdup_printf("affected: %zu model%s (%zu trained on the documents%s, %zu retrained from an "
                                     "affected one), %" PRId64 " prediction%s in %zu collection%s%s", n_aff,
                                     n_aff == 1 ? "" : "s", n_data, stored, n_child, n_pred, n_pred == 1 ? "" : "s",
                                     pcolls.n, pcolls.n == 1 ? "" : "s",
                                     n_unknown ? "; more may be: some models cannot be checked" : "");
    else if (n_unknown)
        verdict = bson_strdup("nothing found affected, but some models cannot be checked");
    else
        verdict = bson_strdup("nothing affected: no model's training data includes the documents");
    nem_strv_free(&pcolls);

    char *sel_text = selection_text(r, &sel);
    if (r->json) {
        bson_t report = BSON_INITIALIZER, arr, un, pa, e;
        uint32_t n = 0, nu = 0, np = 0;
        BSON_APPEND_DOCUMENT_BEGIN(&report, "documents", &e);
        bson_concat(&e, &sel.describe);
        if (sel.documents >= 0)
            BSON_APPEND_INT64(&e, "count", sel.documents);
        else
            BSON_APPEND_NULL(&e, "count");
        bson_append_document_end(&report, &e);
        BSON_APPEND_ARRAY_BEGIN(&report, "models", &arr);
        for (size_t i = 0; i < a.n; i++)
            if (order[i]->how)
                model_entry(&a, order[i], &arr, &n);
        bson_append_array_end(&report, &arr);
        BSON_APPEND_ARRAY_BEGIN(&report, "unverifiable", &un);
        for (size_t i = 0; i < a.n; i++)
            if (order[i]->undetermined)
                model_entry(&a, order[i], &un, &nu);
        bson_append_array_end(&report, &un);
        BSON_APPEND_ARRAY_BEGIN(&report, "predictions", &pa);
        for (size_t i = 0; i < preds.n; i++) {
            nem_reg_push_doc(&pa, &np, &e);
            BSON_APPEND_UTF8(&e, "collection", preds.v[i].collection);
            BSON_APPEND_UTF8(&e, "model", preds.v[i].model);
            if (preds.v[i].run)
                BSON_APPEND_UTF8(&e, "run", preds.v[i].run);
            else
                BSON_APPEND_NULL(&e, "run");
            if (preds.v[i].script)
                BSON_APPEND_UTF8(&e, "script", preds.v[i].script);
            else
                BSON_APPEND_NULL(&e, "script");
            BSON_APPEND_INT64(&e, "count", preds.v[i].count);
            bson_append_document_end(&pa, &e);
        }
        bson_append_array_end(&report, &pa);
        BSON_APPEND_UTF8(&report, "verdict", n_unknown ? "unverifiable" : n_aff ? "affected" : "unaffected");
        BSON_APPEND_UTF8(&report, "message", verdict);
        nem_reg_print_json(r->out, &report);
        bson_destroy(&report);
    } else {
        print_table(r->out, &a, order, a.n, &preds, sel_text, verdict);
    }
    if (n_unknown)
        fprintf(stderr, "nemesyst-registry: error: affected: %zu model%s cannot be checked: %s\n", n_unknown,
                n_unknown == 1 ? "" : "s", unknown->str);
    status = n_unknown ? NEM_EXIT_UNVERIFIABLE : n_aff ? NEM_EXIT_FAILURE : NEM_EXIT_OK;
    bson_string_free(unknown, true);
    bson_free(verdict);
    bson_free(sel_text);
out:
    for (size_t i = 0; i < a.n; i++)
        model_free(&a.m[i]);
    bson_free(a.m);
    nem_strv_free(&a.buckets);
    for (size_t i = 0; i < a.nc; i++) {
        bson_free(a.c[i].collection);
        bson_free(a.c[i].pipeline);
        bson_free(a.c[i].problem);
    }
    bson_free(a.c);
    nem_strv_free(&a.blob_keys);
    nem_strv_free(&a.blob_texts);
    for (size_t i = 0; i < preds.n; i++) {
        bson_free(preds.v[i].collection);
        bson_free(preds.v[i].model);
        bson_free(preds.v[i].run);
        bson_free(preds.v[i].script);
    }
    bson_free(preds.v);
    bson_free(order);
    sel_free(&sel);
    return status;
}
