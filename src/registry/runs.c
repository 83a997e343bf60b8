/* `runs`: the run records (provenance.h: nemesyst_runs), one row each, newest first: the one run listing
 * (provenance/runlist.h), which `nemesyst --list-runs` prints too. */
#include "registry/registry.h"

#include "runrec/runlist.h"
#include "util/exitcodes.h"

int nem_reg_runs(nem_reg_t *r)
{
    bson_t report = BSON_INITIALIZER, rows;
    bson_error_t err;
    BSON_APPEND_ARRAY_BEGIN(&report, "runs", &rows);
    bool ok = nem_runlist_rows(r->store, r->now_ms, &rows, NULL, &err);
    bson_append_array_end(&report, &rows);
    if (!ok) {
        bson_destroy(&report);
        return nem_reg_fail(&err);
    }
    if (r->json)
        nem_reg_print_json(r->out, &report);
    else if (nem_reg_sub(&report, "runs", &rows))
        nem_runlist_print(r->out, &rows);
    bson_destroy(&report);
    return NEM_EXIT_OK;
}
