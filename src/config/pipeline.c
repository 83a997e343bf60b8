/* Pipeline options (pipeline.h). */
#include <string.h>

#include "config/pipeline.h"

static bool is_array_doc(const bson_t *doc)
{
    bson_iter_t it;
    uint32_t i = 0;
    char key[16];
    const char *k;
    bson_iter_init(&it, doc);
    while (bson_iter_next(&it)) {
        bson_uint32_to_string(i++, &k, key, sizeof key);
        if (strcmp(bson_iter_key(&it), k) != 0)
            return false;
    }
    return true;
}

/* MongoDB's rule: every stage is a document with exactly one field, the stage's name, which starts with '$'. Names
 * that extended JSON reserves for its type wrappers ($oid, $date, ...) are no stage and could not be stored and read
 * back as lineage: refused too. */
static bool check_stages(const nem_config_t *cfg, nem_opt_id_t id, size_t idx, const bson_t *pipeline,
                         bson_error_t *err)
{
    static const char *const wrappers[] = {"$oid", "$date", "$binary", "$numberInt", "$numberLong", "$numberDouble",
                                           "$numberDecimal", "$maxKey", "$minKey", "$regex", "$regularExpression",
                                           "$timestamp", "$code", "$scope", "$symbol", "$dbPointer", "$undefined",
                                           "$uuid", "$type", "$options", "$ref", "$id", "$db"};
    bson_iter_t it, st;
    unsigned n = 0;
    const char *where = cfg->values[id].where ? cfg->values[id].where : "default";
    if (!bson_iter_init(&it, pipeline))
        goto bad_json;
    while (bson_iter_next(&it)) {
        const char *why = NULL, *name = "";
        if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &st) || !bson_iter_next(&st))
            why = "is not a document with one field";
        else {
            name = bson_iter_key(&st);
            if (name[0] != '$')
                why = "does not name a stage (its field must start with '$')";
            else if (bson_iter_next(&st))
                why = "has more than one field";
            for (size_t w = 0; !why && w < sizeof wrappers / sizeof *wrappers; w++)
                if (strcmp(name, wrappers[w]) == 0)
                    why = "is an extended-JSON type wrapper, not a stage";
        }
        if (why) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s[%zu]: pipeline stage %u%s%.40s%s %s",
                           where, nem_options[id].name, idx, n, *name ? " '" : "", name, *name ? "'" : "", why);
            return false;
        }
        n++;
    }
    return true;
bad_json:
    bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s[%zu]: not a pipeline", where,
                   nem_options[id].name, idx);
    return false;
}

bool nem_pipeline_option(const nem_config_t *cfg, nem_opt_id_t id, size_t idx, bson_t *pipeline, bson_error_t *err)
{
    bson_t doc;
    if (!nem_cfg_json(cfg, id, idx, &doc, err))
        return false;
    if (is_array_doc(&doc)) {
        bson_steal(pipeline, &doc);
    } else {
        bson_init(pipeline);
        if (!bson_empty(&doc))
            BSON_APPEND_DOCUMENT(pipeline, "0", &doc);
        bson_destroy(&doc);
    }
    if (!check_stages(cfg, id, idx, pipeline, err)) {
        bson_destroy(pipeline);
        bson_init(pipeline);
        return false;
    }
    return true;
}
