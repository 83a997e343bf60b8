/* `lineage MODEL_ID`: from a model back to its run, script, options and data, up through its parents to the
 * first, and down to the predictions made with it. What is read is the model's _nemesyst metadata (stage/worker/writer.c
 * model_metadata), the run records and the predictions' _nemesyst.model (provenance.h). */
#include "registry/registry.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "provenance/provenance.h"
#include "runrec/runrec.h"
#include "util/exitcodes.h"

/* A chain longer than this is a loop the ids did not reveal, or corruption: stop and say so. */
#define MAX_PARENTS 1000

/* The run as its record says now; null (and a warning) when the record is gone. */
static bool append_run(nem_reg_t *r, bson_t *out, const char *run_id, bson_error_t *err)
{
    bson_t record, row;
    if (!run_id || !nem_reg_load_run(r->store, run_id, &record, err)) {
        if (run_id && !(err->domain == NEM_ERROR_PROVENANCE && err->code == NEM_PROVENANCE_ENORUN))
            return false;
        nem_reg_warn("the model's run %s has no run record in %s.%s any more", run_id ? run_id : "?",
                     nem_store_db_name(r->store), NEM_RUNS_COLLECTION);
        BSON_APPEND_NULL(out, "run");
        return true;
    }
    nem_runlist_row(&record, r->now_ms, &row);
    BSON_APPEND_DOCUMENT(out, "run", &row);
    bson_destroy(&row);
    nem_reg_append_attempts(&record, out); /* a training that outlived its jobs: each job's try */
    bson_destroy(&record);
    return true;
}

/* The parent recorded in a model's _nemesyst (prov): false when it has none (a first model). */
static bool parent_of(const bson_t *prov, bson_value_t *id, char **bucket)
{
    bson_iter_t it, f;
    if (!bson_iter_init(&it, prov) || !bson_iter_find_descendant(&it, "parent.id", &f) || BSON_ITER_HOLDS_NULL(&f))
        return false;
    bson_value_copy(bson_iter_value(&f), id);
    *bucket = bson_strdup(nem_reg_str(prov, "parent.bucket", ""));
    return true;
}

/* Parents, nearest first, to the first model (one trained from none); a parent that is gone ends the chain with
 * found: false. */
static bool parents(nem_reg_t *r, const bson_t *prov, bson_t *arr, bson_error_t *err)
{
    nem_strv_t seen = {0};
    bson_value_t cur;
    char *bucket = NULL;
    uint32_t n = 0;
    bool ok = true, have = parent_of(prov, &cur, &bucket);
    bson_init(arr);
    while (have) {
        char *text = nem_reg_id_text(&cur), *in_bucket = NULL;
        bool found = false, loop = false;
        bson_t file, entry, meta, next;
        for (size_t i = 0; i < seen.n && !loop; i++)
            loop = strcmp(seen.v[i], text) == 0;
        if (loop || seen.n >= MAX_PARENTS) {
            nem_reg_warn("the parents of this model loop back to %s: the chain is cut there", text);
            bson_free(text);
            break;
        }
        nem_strv_push(&seen, text);
        ok = nem_reg_find_model(r->store, *bucket ? bucket : NULL, &cur, &file, &in_bucket, &found, err);
        if (ok) {
            nem_reg_push_doc(arr, &n, &entry);
            BSON_APPEND_BOOL(&entry, "found", found);
            if (found) {
                nem_reg_model_row(in_bucket, &file, &entry);
                if (nem_reg_sub(&file, "metadata._nemesyst", &meta)) {
                    BSON_APPEND_UTF8(&entry, "script_path", nem_reg_str(&meta, "script", "?"));
                    BSON_APPEND_UTF8(&entry, "script_sha256", nem_reg_str(&meta, "script_sha256", "?"));
                }
            } else {
                BSON_APPEND_UTF8(&entry, "id", text);
                BSON_APPEND_UTF8(&entry, "bucket", bucket);
                nem_reg_warn("parent model %s is gone from bucket %s: the lineage stops there", text,
                             *bucket ? bucket : "(any)");
            }
            bson_append_document_end(arr, &entry);
        }
        bson_value_destroy(&cur);
        bson_free(bucket);
        bucket = NULL;
        have = ok && found && nem_reg_sub(&file, "metadata._nemesyst", &next) && parent_of(&next, &cur, &bucket);
        if (found)
            bson_destroy(&file);
        bson_free(in_bucket);
        bson_free(text);
    }
    bson_free(bucket);
    nem_strv_free(&seen);
    if (!ok)
        bson_destroy(arr);
    return ok;
}

typedef struct {
    const char *collection;
    bson_t *out;
    uint32_t n;
    bson_oid_t *stamps; /* each entry's stamp, to name its run and script once all are counted */
    size_t n_stamps;
} downstream_t;

/* One group of predictions {_id: STAMP, n}: its run and script are named afterwards (name_runs). */
static bool add_downstream(const bson_t *group, void *ud, bson_error_t *err)
{
    downstream_t *d = ud;
    bson_iter_t it;
    bson_t entry;
    (void)err;
    nem_reg_push_doc(d->out, &d->n, &entry);
    BSON_APPEND_UTF8(&entry, "collection", d->collection);
    d->stamps = bson_realloc(d->stamps, (d->n_stamps + 1) * sizeof *d->stamps);
    if (bson_iter_init_find(&it, group, "_id") && BSON_ITER_HOLDS_OID(&it))
        bson_oid_copy(bson_iter_oid(&it), &d->stamps[d->n_stamps]);
    else
        memset(&d->stamps[d->n_stamps], 0, sizeof *d->stamps); /* no stamp (the first format): no run names it */
    d->n_stamps++;
    BSON_APPEND_INT64(&entry, "count", nem_reg_int(group, "n", 0));
    bson_append_document_end(d->out, &entry);
    return true;
}

/* Each entry with the run and script that made it, from the run records ({collection, run, script, count}); a stamp
 * no run record names (first format, or a deleted record) has run and script null. */
static void name_runs(const bson_t *counted, const bson_t *names, const bson_oid_t *stamps, bson_t *arr)
{
    bson_iter_t it, f;
    uint32_t n = 0;
    size_t i = 0;
    bson_init(arr);
    if (bson_iter_init(&it, counted))
        for (; bson_iter_next(&it); i++) {
            bson_t in, entry, who;
            char hex[25];
            if (!nem_reg_sub(counted, bson_iter_key(&it), &in))
                continue;
            bson_oid_to_string(&stamps[i], hex);
            bool known = bson_iter_init_find(&f, names, hex) && nem_reg_sub(names, hex, &who);
            nem_reg_push_doc(arr, &n, &entry);
            BSON_APPEND_UTF8(&entry, "collection", nem_reg_str(&in, "collection", "?"));
            if (known) {
                BSON_APPEND_UTF8(&entry, "run", nem_reg_str(&who, "run", "?"));
                BSON_APPEND_UTF8(&entry, "script", nem_reg_str(&who, "script", "?"));
            } else {
                BSON_APPEND_NULL(&entry, "run");
                BSON_APPEND_NULL(&entry, "script");
            }
            BSON_APPEND_INT64(&entry, "count", nem_reg_int(&in, "count", 0));
            bson_append_document_end(arr, &entry);
        }
}

/* Predictions made with the model: in every collection a predict script of any run wrote to, the documents whose
 * _nemesyst.model is the model's id (an index nemesyst makes: provenance.h), by the script that wrote them. The run
 * records are read a record at a time, twice: for the collections, then to name the few stamps found. */
static bool downstream(nem_reg_t *r, const bson_value_t *model, bson_t *arr, bson_error_t *err)
{
    bson_t counted = BSON_INITIALIZER, names;
    nem_strv_t colls = {0};
    bool ok = nem_reg_predict_collections(r->store, &colls, err);
    downstream_t d = {NULL, &counted, 0, NULL, 0};
    for (size_t i = 0; ok && i < colls.n; i++) {
        d.collection = colls.v[i];
        ok = nem_reg_count_by(r->store, colls.v[i], NEM_PROVENANCE_FIELD ".model", model, NEM_PROVENANCE_FIELD ".s",
                              add_downstream, &d, err);
    }
    if (ok) {
        ok = nem_reg_resolve_stamps(r->store, d.stamps, d.n_stamps, &names, err);
        if (ok)
            name_runs(&counted, &names, d.stamps, arr);
        bson_destroy(&names);
    }
    bson_free(d.stamps);
    nem_strv_free(&colls);
    bson_destroy(&counted);
    return ok;
}

/* The data the model was trained on: the recorded collection and pipeline, and each consumed record, each with
 * whether its collection still exists. */
static bool data_of(nem_reg_t *r, const bson_t *prov, bson_t *out, bson_error_t *err)
{
    bson_t data, consumed, arr = BSON_INITIALIZER, rec;
    bson_iter_t it;
    uint32_t n = 0;
    bool exists, ok = true;
    const char *coll = nem_reg_str(prov, "data_collection", NULL);
    BSON_APPEND_DOCUMENT_BEGIN(out, "data", &data);
    if (coll) {
        BSON_APPEND_UTF8(&data, "collection", coll);
        ok = nem_reg_collection_exists(r->store, coll, &exists, err);
        BSON_APPEND_BOOL(&data, "exists", ok && exists);
        if (ok && !exists)
            nem_reg_warn("the model's data collection %s.%s no longer exists (dropped?)", nem_store_db_name(r->store),
                         coll);
    } else {
        BSON_APPEND_NULL(&data, "collection");
    }
    if (bson_iter_init_find(&it, prov, "data_pipeline"))
        BSON_APPEND_VALUE(&data, "pipeline", bson_iter_value(&it));
    else
        BSON_APPEND_NULL(&data, "pipeline");
    bson_append_document_end(out, &data);
    if (ok && nem_reg_sub(prov, "consumed", &consumed) && bson_iter_init(&it, &consumed))
        while (ok && bson_iter_next(&it)) {
            bson_t c;
            bson_iter_t f;
            if (!nem_reg_sub(&consumed, bson_iter_key(&it), &c))
                continue;
            nem_reg_push_doc(&arr, &n, &rec);
            if (bson_iter_init(&f, &c))
                while (bson_iter_next(&f))
                    bson_append_iter(&rec, NULL, 0, &f);
            const char *cc = nem_reg_str(&c, "collection", NULL);
            if (cc)
                ok = nem_reg_collection_exists(r->store, cc, &exists, err);
            BSON_APPEND_BOOL(&rec, "exists", cc && ok && exists);
            bson_append_document_end(&arr, &rec);
        }
    BSON_APPEND_ARRAY(out, "consumed", &arr);
    bson_destroy(&arr);
    bson_t group; /* a learner group's model: every member's shard (README "Learner groups") */
    if (nem_reg_sub(prov, "group", &group))
        BSON_APPEND_DOCUMENT(out, "group", &group);
    return ok;
}

bool nem_reg_lineage_report(nem_reg_t *r, const char *bucket, const bson_t *file, bson_t *out, bson_error_t *err)
{
    bson_t row, prov, opts, view, arr;
    bson_iter_t it;
    bson_init(out);
    bson_init(&row);
    nem_reg_model_row(bucket, file, &row);
    BSON_APPEND_DOCUMENT(out, "model", &row);
    bson_destroy(&row);
    bool has = nem_reg_sub(file, "metadata." NEM_PROVENANCE_FIELD, &prov);
    if (!has)
        bson_init(&prov); /* not a nemesyst model: every lineage field null */
    bool ok = append_run(r, out, nem_reg_str(&prov, "run", NULL), err);
    if (ok) {
        BSON_APPEND_UTF8(out, "stage", nem_reg_str(&prov, "stage", "?"));
        BSON_APPEND_INT64(out, "position", nem_reg_int(&prov, "position", 0));
        BSON_APPEND_UTF8(out, "host", nem_reg_str(&prov, "host", "?"));
        BSON_APPEND_INT64(out, "rank", nem_reg_int(&prov, "rank", -1));
        nem_reg_append_date(out, "stored", nem_reg_date(&prov, "stored"));
        BSON_APPEND_DOCUMENT_BEGIN(out, "script", &view);
        BSON_APPEND_UTF8(&view, "path", nem_reg_str(&prov, "script", "?"));
        BSON_APPEND_UTF8(&view, "sha256", nem_reg_str(&prov, "script_sha256", "?"));
        bson_append_document_end(out, &view);
        nem_reg_clean_options(nem_reg_sub(&prov, "options", &view) ? &view : NULL, &opts);
        BSON_APPEND_DOCUMENT(out, "options", &opts);
        bson_destroy(&opts);
        ok = data_of(r, &prov, out, err);
    }
    if (ok && (ok = parents(r, &prov, &arr, err))) {
        BSON_APPEND_ARRAY(out, "parents", &arr);
        bson_destroy(&arr);
    }
    if (ok && bson_iter_init_find(&it, file, "_id") && (ok = downstream(r, bson_iter_value(&it), &arr, err))) {
        BSON_APPEND_ARRAY(out, "predictions", &arr);
        bson_destroy(&arr);
    }
    if (!has)
        bson_destroy(&prov);
    if (!ok)
        bson_destroy(out);
    return ok;
}

/* ---- the table ---- */

/* A stored pipeline: its text, or where its text is kept when it was too large to store inline. */
static char *pipeline_text(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key) || BSON_ITER_HOLDS_NULL(&it))
        return bson_strdup("(none)");
    if (BSON_ITER_HOLDS_UTF8(&it))
        return nem_reg_value_text(&it, 300);
    bson_t ref;
    if (nem_reg_sub(doc, key, &ref) && nem_reg_str(&ref, "blob", NULL))
        return bson_strdup_printf("(%" PRId64 " bytes, kept in " NEM_BLOBS_COLLECTION " as %s)",
                                  nem_reg_int(&ref, "bytes", 0), nem_reg_str(&ref, "blob", "?"));
    return nem_reg_value_text(&it, 300);
}

static void print_lineage(FILE *out, const bson_t *rep)
{
    bson_t model, run, data, arr, item, opts;
    bson_iter_t it;
    char *text;
    nem_reg_sub(rep, "model", &model);
    fprintf(out, "model        %s in bucket %s (%s, %" PRId64 " bytes, uploaded %s)\n", nem_reg_str(&model, "id", "?"),
            nem_reg_str(&model, "bucket", "?"), nem_reg_str(&model, "filename", "?"), nem_reg_int(&model, "length", 0),
            nem_reg_str(&model, "uploaded", "-"));
    if (nem_reg_sub(rep, "run", &run))
        fprintf(out, "run          %s (%s, started %s)\n", nem_reg_str(&run, "id", "?"), nem_reg_str(&run, "status", "?"),
                nem_reg_str(&run, "started", "-"));
    else
        fprintf(out, "run          %s (its run record is gone)\n", nem_reg_str(&model, "run", "?"));
    if (nem_reg_sub(rep, "attempts", &arr) && bson_count_keys(&arr) > 1) {
        fprintf(out, "attempts     %u:", bson_count_keys(&arr));
        if (bson_iter_init(&it, &arr))
            while (bson_iter_next(&it))
                if (nem_reg_sub(&arr, bson_iter_key(&it), &item)) {
                    const char *job = nem_reg_str(&item, "job", NULL);
                    fprintf(out, "%s %" PRId64 " (%s%s%s, %s)", bson_iter_key(&it)[0] == '0' ? "" : ",",
                            nem_reg_int(&item, "n", 0), job ? "Slurm job " : "on ", job ? job : nem_reg_str(&item, "host", "?"),
                            nem_reg_int(&item, "restart", 0) ? " requeued" : "", nem_reg_str(&item, "status", "?"));
                }
        fputc('\n', out);
    }
    fprintf(out, "script       %s: %s\n             sha256 %s\n", nem_reg_str(&model, "script", "?"),
            nem_reg_str(rep, "script.path", "?"), nem_reg_str(rep, "script.sha256", "?"));
    fprintf(out, "host         %s, rank %" PRId64 ", stored %s\n", nem_reg_str(rep, "host", "?"), nem_reg_int(rep, "rank", -1),
            nem_reg_str(rep, "stored", "-"));
    nem_reg_sub(rep, "data", &data);
    text = pipeline_text(&data, "pipeline");
    bson_iter_t ex;
    bool gone = bson_iter_init_find(&ex, &data, "exists") && !bson_iter_bool(&ex);
    fprintf(out, "data         %s%s through %s\n", nem_reg_str(&data, "collection", "(none)"),
            gone ? " (dropped: no such collection now)" : "", text);
    bson_free(text);
    if (nem_reg_sub(rep, "consumed", &arr) && bson_iter_init(&it, &arr) && !bson_empty(&arr))
        while (bson_iter_next(&it)) {
            if (!nem_reg_sub(&arr, bson_iter_key(&it), &item))
                continue;
            bson_iter_t f;
            bool complete = !bson_iter_init_find(&f, &item, "complete") || !BSON_ITER_HOLDS_BOOL(&f) ||
                            bson_iter_bool(&f);
            text = pipeline_text(&item, "pipeline");
            fprintf(out, "consumed     %s: %" PRId64 " documents%s, sha256 %s\n             through %s\n",
                    nem_reg_str(&item, "collection", "?"), nem_reg_int(&item, "count", 0),
                    complete ? "" : " (read partly)", nem_reg_str(&item, "digest", "?"), text);
            bson_free(text);
        }
    else
        fprintf(out, "consumed     nothing recorded\n");
    bson_t group, members, m;
    if (nem_reg_sub(rep, "group", &group)) {
        fprintf(out, "group        %" PRId64 " members, %" PRId64 " documents in all\n", nem_reg_int(&group, "size", 0),
                nem_reg_int(&group, "count", -1));
        if (nem_reg_sub(&group, "members", &members) && bson_iter_init(&it, &members))
            while (bson_iter_next(&it))
                if (nem_reg_sub(&members, bson_iter_key(&it), &m))
                    fprintf(out, "member %-5" PRId64 " rank %" PRId64 " on %s: %" PRId64 " documents, sha256 %s\n"
                            "             shard %s\n", nem_reg_int(&m, "member", -1), nem_reg_int(&m, "rank", -1),
                            nem_reg_str(&m, "host", "?"), nem_reg_int(&m, "count", -1), nem_reg_str(&m, "digest", "?"),
                            nem_reg_str(&m, "shard", "?"));
    }
    if (nem_reg_sub(rep, "parents", &arr) && bson_iter_init(&it, &arr) && !bson_empty(&arr)) {
        int depth = 0;
        while (bson_iter_next(&it))
            if (nem_reg_sub(&arr, bson_iter_key(&it), &item)) {
                bson_iter_t f;
                bool found = bson_iter_init_find(&f, &item, "found") && bson_iter_bool(&f);
                if (found)
                    fprintf(out, "parent %-5d %s in %s: run %s, %s %s\n", ++depth, nem_reg_str(&item, "id", "?"),
                            nem_reg_str(&item, "bucket", "?"), nem_reg_str(&item, "run", "?"),
                            nem_reg_str(&item, "script", "?"), nem_reg_str(&item, "script_path", "?"));
                else
                    fprintf(out, "parent %-5d %s in %s: gone\n", ++depth, nem_reg_str(&item, "id", "?"),
                            nem_reg_str(&item, "bucket", "?"));
            }
    } else {
        fprintf(out, "parents      none: a first model\n");
    }
    if (nem_reg_sub(rep, "predictions", &arr) && bson_iter_init(&it, &arr) && !bson_empty(&arr))
        while (bson_iter_next(&it)) {
            if (nem_reg_sub(&arr, bson_iter_key(&it), &item))
                fprintf(out, "predictions  %" PRId64 " in %s by %s of run %s\n", nem_reg_int(&item, "count", 0),
                        nem_reg_str(&item, "collection", "?"), nem_reg_str(&item, "script", "?"),
                        nem_reg_str(&item, "run", "?"));
        }
    else
        fprintf(out, "predictions  none\n");
    bson_t metrics;
    fprintf(out, "metrics     ");
    if (nem_reg_sub(&model, "metrics", &metrics) && bson_iter_init(&it, &metrics) && !bson_empty(&metrics))
        while (bson_iter_next(&it)) {
            text = nem_reg_value_text(&it, 40);
            fprintf(out, " %s=%s", bson_iter_key(&it), text);
            bson_free(text);
        }
    else
        fprintf(out, " none");
    fprintf(out, "\noptions (secrets removed):\n");
    if (nem_reg_sub(rep, "options", &opts))
        nem_reg_print_options(out, &opts);
}

/* The model of a MODEL_ID argument: checked, then looked up in --bucket or every bucket. */
bool nem_reg_model_arg(nem_reg_t *r, const char *model_id, bson_t *file, char **bucket, bson_error_t *err)
{
    bson_oid_t oid;
    bson_value_t id = {.value_type = BSON_TYPE_OID};
    bool found = false;
    if (!nem_reg_check_model_id(model_id, &oid, err))
        return false;
    id.value.v_oid = oid;
    if (!nem_reg_find_model(r->store, r->bucket, &id, file, bucket, &found, err))
        return false;
    if (!found)
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "no model '%s' in %s%s of %s (see `models`)",
                       model_id, r->bucket ? "bucket " : "any GridFS bucket", r->bucket ? r->bucket : "",
                       nem_store_db_name(r->store));
    return found;
}

int nem_reg_lineage(nem_reg_t *r, const char *model_id)
{
    bson_t file, report;
    bson_error_t err;
    char *bucket = NULL;
    if (!nem_reg_model_arg(r, model_id, &file, &bucket, &err))
        return nem_reg_fail(&err);
    bool ok = nem_reg_lineage_report(r, bucket, &file, &report, &err);
    bson_free(bucket);
    if (ok && r->dot) {
        /* into memory first: a query that fails half-way leaves no half graph on stdout */
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        nem_reg_t to_mem = *r;
        to_mem.out = mem;
        ok = mem && nem_reg_lineage_dot(&to_mem, &file, &report, &err);
        if (mem)
            fclose(mem);
        if (ok)
            fwrite(buf, 1, len, r->out);
        free(buf);
        bson_destroy(&report);
        bson_destroy(&file);
        if (!mem) {
            fputs("nemesyst-registry: error: out of memory for the graph\n", stderr);
            return NEM_EXIT_FAILURE;
        }
        return ok ? NEM_EXIT_OK : nem_reg_fail(&err);
    }
    bson_destroy(&file);
    if (!ok)
        return nem_reg_fail(&err);
    if (r->json)
        nem_reg_print_json(r->out, &report);
    else
        print_lineage(r->out, &report);
    bson_destroy(&report);
    return NEM_EXIT_OK;
}
