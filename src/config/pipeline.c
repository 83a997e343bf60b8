/* Pipeline options (pipeline.h). */
#include <string.h>

#include "config/pipeline.h"
#include "store/store.h"

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

/* MongoDB's rule for the stages (nem_pipeline_problem), named with the option and its source. */
static bool check_stages(const nem_config_t *cfg, nem_opt_id_t id, size_t idx, const bson_t *pipeline,
                         bson_error_t *err)
{
    uint32_t n;
    const char *name, *why = nem_pipeline_problem(pipeline, &n, &name);
    const char *where = cfg->values[id].where ? cfg->values[id].where : "default";
    if (!why)
        return true;
    bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s[%zu]: pipeline stage %u%s%.40s%s %s",
                   where, nem_options[id].name, idx, n, *name ? " '" : "", name, *name ? "'" : "", why);
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
