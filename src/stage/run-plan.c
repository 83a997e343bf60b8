/* Run plans (plan.h): ownership and lookups; app/plan.c builds them. */
#include "stage/run-plan.h"

#include <string.h>

bool nem_shardable_stage(const char *name)
{
    static const char *const ok[] = {"$match", "$project", "$addFields", "$set", "$unset", "$unwind",
                                     "$replaceRoot", "$replaceWith", "$lookup", "$redact", "$sort"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (!strcmp(name, ok[i]))
            return true;
    return false;
}

bool nem_run_plan_any_stage(const nem_run_plan_t *plan)
{
    for (int s = 0; s < NEM_STAGE__COUNT; s++)
        if (plan->stages[s].enabled)
            return true;
    return false;
}

const nem_script_plan_t *nem_run_plan_script(const nem_run_plan_t *plan, nem_stage_t stage, size_t position)
{
    const nem_stage_plan_t *sp = &plan->stages[stage];
    return position < sp->n ? &sp->scripts[position] : NULL;
}

const char *nem_run_plan_keep(nem_run_plan_t *plan, const char *s)
{
    if (!s)
        return NULL;
    nem_strv_push(&plan->owned, s);
    return plan->owned.v[plan->owned.n - 1];
}

void nem_run_plan_clear(nem_run_plan_t *plan)
{
    for (int s = 0; s < NEM_STAGE__COUNT; s++) {
        nem_stage_plan_t *sp = &plan->stages[s];
        for (size_t i = 0; i < sp->n; i++) {
            if (sp->scripts[i].input_pipeline)
                bson_destroy(sp->scripts[i].input_pipeline);
            if (sp->scripts[i].data_pipeline)
                bson_destroy(sp->scripts[i].data_pipeline);
        }
        bson_free(sp->scripts);
        if (sp->args.len)
            bson_destroy(&sp->args);
    }
    if (plan->options.len)
        bson_destroy(&plan->options);
    if (plan->tags.len)
        bson_destroy(&plan->tags);
    if (plan->sweep.len)
        bson_destroy(&plan->sweep);
    nem_strv_free(&plan->owned); /* wipes: the password is one of them */
    memset(plan, 0, sizeof *plan);
}
