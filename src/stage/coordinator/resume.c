/* The resume policy: a resumed run reruns, by position, the scripts that did not succeed, and only when its script
 * lists are those of the run it resumes (coordinator-private.h). */
#include <string.h>

#include "stage/coordinator/coordinator-private.h"
#include "util/status.h"

bool nem_coord_already_succeeded(const coord_t *c, nem_stage_t stage, size_t pos)
{
    char key[64];
    bson_iter_t it, sub;
    nem_script_key(stage, pos, key, sizeof key);
    if (!bson_iter_init_find(&it, &c->previous, key) || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return false;
    bson_iter_recurse(&it, &sub);
    return bson_iter_find(&sub, "status") && BSON_ITER_HOLDS_UTF8(&sub) &&
           nem_status_parse(bson_iter_utf8(&sub, NULL)) == NEM_STATUS_SUCCEEDED;
}

/* --resume reruns scripts by position: refuse when the script lists differ from the run being resumed, or a rerun
 * would remove or duplicate another script's documents. */
bool nem_coord_same_scripts(const coord_t *c, bson_error_t *err)
{
    bson_iter_t it;
    if (!bson_iter_init(&it, &c->previous))
        return true;
    while (bson_iter_next(&it)) {
        bson_iter_t sub;
        nem_task_result_t r;
        bson_t entry;
        uint32_t len;
        const uint8_t *data;
        if (!BSON_ITER_HOLDS_DOCUMENT(&it))
            continue;
        bson_iter_document(&it, &len, &data);
        if (!bson_init_static(&entry, data, len) || !nem_task_result_from_bson(&r, &entry))
            continue;
        if (!c->plan->stages[r.stage].enabled)
            continue; /* a stage not run this time cannot be resumed wrongly */
        const nem_script_plan_t *sp = nem_run_plan_script(c->plan, r.stage, r.position);
        const char *now = sp ? sp->path : NULL;
        const char *then = bson_iter_init_find(&sub, &entry, "path") && BSON_ITER_HOLDS_UTF8(&sub)
                               ? bson_iter_utf8(&sub, NULL)
                               : NULL;
        if (then && (!now || strcmp(now, then) != 0)) {
            bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_ESCRIPTS,
                           "--resume %s: %s script #%zu was '%s' in that run, now '%s': resume with the same scripts",
                           c->run_id, nem_stage_name(r.stage), r.position, then, now ? now : "(none)");
            return false;
        }
    }
    return true;
}
