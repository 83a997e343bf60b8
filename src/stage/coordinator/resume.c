/* The resume policy: a resumed run reruns, by position, the scripts that did not succeed, and only when its script
 * lists are those of the run it resumes (coordinator-private.h). */
#include <openssl/evp.h>
#include <string.h>

#include "config/options.h"
#include "runrec/runrec.h"
#include "stage/coordinator/coordinator-private.h"
#include "util/sha256.h"
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

/* A value of the run's option snapshot as stored (a string over 16 KiB by reference, {"blob": SHA256, "bytes": N}:
 * provenance.h) against the same option now. */
static bool same_value(const bson_iter_t *then, const bson_iter_t *now)
{
    bson_iter_t a, b;
    if (BSON_ITER_HOLDS_DOCUMENT(then) && BSON_ITER_HOLDS_UTF8(now) && bson_iter_recurse(then, &a) &&
        bson_iter_find(&a, "blob") && BSON_ITER_HOLDS_UTF8(&a)) {
        uint32_t len;
        const char *text = bson_iter_utf8(now, &len);
        char hex[NEM_SHA256_HEX_LEN + 1];
        nem_sha256_hex(text, len, hex);
        return strcmp(hex, bson_iter_utf8(&a, NULL)) == 0;
    }
    if (BSON_ITER_HOLDS_ARRAY(then) && BSON_ITER_HOLDS_ARRAY(now) && bson_iter_recurse(then, &a) &&
        bson_iter_recurse(now, &b)) {
        for (;;) {
            bool more_a = bson_iter_next(&a), more_b = bson_iter_next(&b);
            if (more_a != more_b)
                return false;
            if (!more_a)
                return true;
            if (!same_value(&a, &b))
                return false;
        }
    }
    bson_t x = BSON_INITIALIZER, y = BSON_INITIALIZER;
    bson_append_iter(&x, "v", 1, then);
    bson_append_iter(&y, "v", 1, now);
    bool same = bson_equal(&x, &y);
    bson_destroy(&x);
    bson_destroy(&y);
    return same;
}

static void shown(const bson_iter_t *it, char *out, size_t len)
{
    bson_t doc = BSON_INITIALIZER;
    bson_append_iter(&doc, "v", 1, it);
    char *json = bson_as_relaxed_extended_json(&doc, NULL);
    /* {"v" : X} -> X, cut to what a message can hold */
    const char *v = json ? strchr(json, ':') : NULL;
    bson_strncpy(out, v ? v + 2 : "?", len);
    size_t n = strlen(out);
    if (n >= 2 && out[n - 1] == '}')
        out[n - 2] = '\0';
    if (strlen(out) > 60)
        strcpy(out + 57, "...");
    bson_free(json);
    bson_destroy(&doc);
}

/* A resumed learner goes on from its checkpoint: only with the options it was trained with. Every option of the
 * learn stage (--dl-*) but the switch and the checkpoint policy must be the run's, as the record's option snapshot
 * holds them (an option the run left unset must stay unset). */
bool nem_coord_same_options(const coord_t *c, bson_error_t *err)
{
    bson_t run;
    bson_iter_t it, then_opts, then, now;
    bson_error_t e;
    if (!c->resume_id || !c->plan->stages[NEM_STAGE_LEARN].enabled)
        return true;
    if (!nem_runrec_get(c->store, c->run_id, &run, &e) || !bson_iter_init_find(&it, &run, "options") ||
        !BSON_ITER_HOLDS_DOCUMENT(&it)) {
        bson_destroy(&run);
        return true; /* a record without a snapshot (none of this nemesyst's) cannot say what changed */
    }
    bool ok = true;
    for (int i = 0; ok && i < NEM_OPT__COUNT; i++) {
        const nem_option_t *o = &nem_options[i];
        if (o->group != NEM_G_DL || i == NEM_OPT_DL_LEARN || i == NEM_OPT_DL_CHECKPOINT_KEEP ||
            i == NEM_OPT_DL_CHECKPOINT_KEEP_FINAL)
            continue;
        bson_iter_recurse(&it, &then_opts);
        bool had = bson_iter_find(&then_opts, o->name);
        bool has = bson_iter_init_find(&now, &c->plan->options, o->name);
        if (had)
            then = then_opts;
        if (had == has && (!had || same_value(&then, &now)))
            continue;
        char a[64], b[64];
        if (had)
            shown(&then, a, sizeof a);
        else
            bson_strncpy(a, "unset", sizeof a);
        if (has)
            shown(&now, b, sizeof b);
        else
            bson_strncpy(b, "unset", sizeof b);
        bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_ESCRIPTS,
                       "--resume %s: --%s was %s in that run, now %s: a learner goes on from its checkpoint only "
                       "with the options it was trained with",
                       c->run_id, o->name, a, b);
        ok = false;
    }
    bson_destroy(&run);
    return ok;
}

