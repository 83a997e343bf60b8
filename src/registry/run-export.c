/* `export RUN_ID`: one JSON document with everything the registry knows of a run: its row, scripts, options
 * (secrets removed), errors, models with their metrics, each model's full lineage (parents, data, consumed records,
 * predictions made with it), and the predictions the run made. Stored texts too large to keep inline stay as
 * their {"blob": SHA256, "bytes": N} references (the text is in nemesyst_blobs), so the export stays small. */
#include "registry/registry.h"

#include <string.h>

#include "util/clock.h"
#include "util/exitcodes.h"

static bool lineage_of(nem_reg_t *r, const bson_t *row, bson_t *out, bool *found, bson_error_t *err)
{
    bson_oid_t oid;
    bson_value_t id = {.value_type = BSON_TYPE_OID};
    bson_t file;
    char *bucket = NULL;
    const char *hex = nem_reg_str(row, "id", NULL), *in = nem_reg_str(row, "bucket", NULL);
    *found = false;
    if (!hex || !in || strlen(hex) != 24 || !bson_oid_is_valid(hex, 24))
        return true; /* not an ObjectId: not a model nemesyst stored */
    bson_oid_init_from_string(&oid, hex);
    id.value.v_oid = oid;
    if (!nem_reg_find_model(r->store, in, &id, &file, &bucket, found, err))
        return false;
    if (!*found)
        return true; /* deleted between the two reads */
    bool ok = nem_reg_lineage_report(r, bucket, &file, out, err);
    bson_destroy(&file);
    bson_free(bucket);
    *found = ok;
    return ok;
}

int nem_reg_export(nem_reg_t *r, const char *run_id)
{
    bson_t report, out = BSON_INITIALIZER, models, arr, one;
    bson_iter_t it;
    bson_error_t err;
    uint32_t n = 0;
    char now[32];
    if (r->format && strcmp(r->format, "prov-json") == 0)
        return nem_reg_export_prov(r, run_id);
    if (!nem_reg_check_run_id(run_id, &err) || !nem_reg_run_report(r, run_id, &report, &err))
        return nem_reg_fail(&err);
    BSON_APPEND_UTF8(&out, "format", "nemesyst-registry-export/1");
    BSON_APPEND_UTF8(&out, "database", nem_store_db_name(r->store));
    BSON_APPEND_UTF8(&out, "server", nem_store_public_uri(r->store));
    BSON_APPEND_UTF8(&out, "exported", nem_iso_ms(r->now_ms, now));
    bson_concat(&out, &report);
    bool ok = true;
    bson_t lineage = BSON_INITIALIZER;
    if (nem_reg_sub(&report, "models", &models) && bson_iter_init(&it, &models))
        while (ok && bson_iter_next(&it)) {
            bson_t row;
            bool found;
            if (!nem_reg_sub(&models, bson_iter_key(&it), &row))
                continue;
            if ((ok = lineage_of(r, &row, &one, &found, &err)) && found) {
                nem_reg_push_doc(&lineage, &n, &arr);
                bson_concat(&arr, &one);
                bson_append_document_end(&lineage, &arr);
                bson_destroy(&one);
            }
        }
    BSON_APPEND_ARRAY(&out, "lineage", &lineage);
    bson_destroy(&lineage);
    bson_destroy(&report);
    if (!ok) {
        bson_destroy(&out);
        return nem_reg_fail(&err);
    }
    nem_reg_print_json(r->out, &out); /* JSON whether or not --json was given: it is a document */
    bson_destroy(&out);
    return NEM_EXIT_OK;
}
