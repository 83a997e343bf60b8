/* Rank 0's side of learner groups (--dl-data-parallel): the members' shards of the data, their results made into
 * the group's, the group's lineage on member 0's model, and a failed group removed as one. */
#include <string.h>

#include "log/log.h"
#include "stage/coordinator/coordinator-private.h"
#include "stage/output.h"
#include "util/status.h"

/* The bounds, from one pass over the _ids in _id order: the _id at each k-th position (first_id_t per bound), and
 * whether they are all of one type (a range compares values of one type only). */
typedef struct {
    bson_value_t id;
    bool found;
} first_id_t;

typedef struct {
    first_id_t *b;
    int k;
    int64_t n, seen;
    int first_class;  /* the type class of the first _id (numbers are one class) */
    bool mixed;
} bounds_t;

static int type_class(bson_type_t t)
{
    switch (t) {
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DECIMAL128: return 1;
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL: return 2;
    default: return 100 + (int)t;
    }
}

static bool take_bound(const bson_t *doc, void *ud, bson_error_t *err)
{
    (void)err;
    bounds_t *bd = ud;
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "_id"))
        return true;
    int cls = type_class(bson_iter_type(&it));
    if (bd->seen == 0)
        bd->first_class = cls;
    else if (cls != bd->first_class)
        bd->mixed = true;
    for (int i = 1; i < bd->k; i++)
        if (!bd->b[i - 1].found && bd->seen == bd->n * i / bd->k) {
            bson_value_copy(bson_iter_value(&it), &bd->b[i - 1].id);
            bd->b[i - 1].found = true;
        }
    bd->seen++;
    return true;
}

static bool find_bounds(nem_store_t *store, const char *coll, const bson_t *filter, bounds_t *bd, bson_error_t *err)
{
    bson_t opts = BSON_INITIALIZER, sort, proj;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "_id", 1);
    bson_append_document_end(&opts, &proj);
    bool ok = nem_store_find(store, coll, filter, &opts, take_bound, bd, err);
    bson_destroy(&opts);
    return ok;
}

/* Member i's filter: _id in [b[i-1], b[i]) with the ends open; an empty shard when its bound is missing (fewer
 * documents than members). */
static void shard_filter(const first_id_t *b, int i, int k, bson_t *out)
{
    bson_t range, in;
    bool lo = i > 0, hi = i < k - 1 && b[i].found;
    bson_init(out);
    if (lo && !b[i - 1].found) { /* past the end: matches nothing */
        BSON_APPEND_DOCUMENT_BEGIN(out, "_id", &range);
        BSON_APPEND_ARRAY_BEGIN(&range, "$in", &in);
        bson_append_array_end(&range, &in);
        bson_append_document_end(out, &range);
        return;
    }
    if (!lo && !hi) /* the whole collection */
        return;
    BSON_APPEND_DOCUMENT_BEGIN(out, "_id", &range);
    if (lo)
        BSON_APPEND_VALUE(&range, "$gte", &b[i - 1].id);
    if (hi)
        BSON_APPEND_VALUE(&range, "$lt", &b[i].id);
    bson_append_document_end(out, &range);
}

/* The pipeline's leading $match stages as one filter ({"$and": [...]}; {} when it starts otherwise): the documents
 * it can use, among which the shards are balanced. */
static void leading_match(const bson_t *pipeline, bson_t *out)
{
    bson_iter_t it, st;
    bson_t and;
    uint32_t n = 0;
    bson_init(out);
    if (!pipeline || !bson_iter_init(&it, pipeline))
        return;
    BSON_APPEND_ARRAY_BEGIN(out, "$and", &and);
    while (bson_iter_next(&it) && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &st) &&
           bson_iter_next(&st) && !strcmp(bson_iter_key(&st), "$match") && BSON_ITER_HOLDS_DOCUMENT(&st)) {
        char key[16];
        const char *k;
        bson_uint32_to_string(n++, &k, key, sizeof key);
        bson_append_value(&and, k, -1, bson_iter_value(&st));
    }
    bson_append_array_end(out, &and);
    if (!n)
        bson_reinit(out);
}

bool nem_coord_shards(coord_t *c, const nem_script_plan_t *sp, size_t position, int k, char **json,
                      bson_error_t *err)
{
    int64_t n = 0;
    const char *coll = sp->data_collection;
    first_id_t *b = bson_malloc0((size_t)k * sizeof *b);
    bson_t pre;
    leading_match(sp->data_pipeline, &pre);
    bool ok = nem_store_count(c->store, coll, &pre, &n, err);
    /* the bounds: the _id at each k-th, in _id order, of the documents the pipeline's first $match stages keep (the
     * ranges themselves are open at both ends: every document is in one of them), in one pass over their _ids */
    bounds_t bd = {.b = b, .k = k, .n = n};
    ok = ok && find_bounds(c->store, coll, &pre, &bd, err);
    for (int i = 0; ok && i < k; i++) {
        bson_t f;
        shard_filter(b, i, k, &f);
        json[i] = bson_as_canonical_extended_json(&f, NULL);
        bson_destroy(&f);
    }
    if (ok && (bd.mixed || bd.seen != n)) {
        /* MongoDB compares values of different types in a range query by type first: ranges would miss some */
        bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_EGROUP,
                       "learn[%zu] '%s': cannot split '%s' into %d shards by _id: %s; give every document the same "
                       "kind of _id, or use --dl-data-parallel 1",
                       position, sp->path, coll, k,
                       bd.mixed ? "its _id values are not all of one type" : "it changed while it was being split");
        ok = false;
    }
    if (ok)
        NEM_INFO("learn[%zu]: the %" PRId64 " documents of '%s' its first $match stages keep split into %d shards "
                 "by _id", position, n, coll, k);
    bson_destroy(&pre);
    for (int i = 0; i < k - 1; i++)
        if (b[i].found)
            bson_value_destroy(&b[i].id);
    bson_free(b);
    return ok;
}

static coord_group_t *find_group(coord_t *c, nem_stage_t stage, size_t position)
{
    for (size_t i = 0; i < c->n_groups; i++)
        if (c->groups[i].stage == stage && c->groups[i].position == position)
            return &c->groups[i];
    return NULL;
}

/* The member whose error is the cause: the first to fail on its own, not stopped for another (a member whose peer
 * died may fail on its own too, later: gloo sees the closed connection). */
static const nem_task_result_t *cause(const coord_group_t *g)
{
    const nem_task_result_t *first = NULL, *any = NULL;
    for (int m = 0; m < g->size; m++) {
        const nem_task_result_t *r = &g->results[m];
        if (r->ok)
            continue;
        if (!r->group_stopped && (!first || r->ended_ms < first->ended_ms))
            first = r;
        if (!any)
            any = r;
    }
    return first ? first : any;
}

/* The group's lineage: its size, hosts, every member's shard (count, digest) and the total. */
static void group_lineage(const coord_t *c, const coord_group_t *g, bool for_record, bson_t *out)
{
    bson_t arr, hosts, m;
    char key[16];
    const char *k;
    int64_t total = 0;
    bool all = true;
    size_t nh = 0;
    bson_init(out);
    BSON_APPEND_INT32(out, "size", g->size);
    BSON_APPEND_ARRAY_BEGIN(out, "hosts", &hosts);
    for (int i = 0; i < g->size; i++) {
        bool seen = false;
        for (int j = 0; j < i; j++)
            seen |= !strcmp(g->results[j].host, g->results[i].host);
        if (seen)
            continue;
        bson_uint32_to_string((uint32_t)nh++, &k, key, sizeof key);
        BSON_APPEND_UTF8(&hosts, k, g->results[i].host);
    }
    bson_append_array_end(out, &hosts);
    BSON_APPEND_ARRAY_BEGIN(out, "members", &arr);
    for (int i = 0; i < g->size; i++) {
        const nem_task_result_t *r = &g->results[i];
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &m);
        BSON_APPEND_INT32(&m, "member", i);
        BSON_APPEND_INT32(&m, "rank", r->rank);
        BSON_APPEND_UTF8(&m, "host", r->host[0] ? r->host : nem_pack_host(&c->pack, g->ranks[i]));
        if (g->shards && g->shards[i])
            BSON_APPEND_UTF8(&m, "shard", g->shards[i]); /* as JSON text: a stored document may not hold '$' keys */
        if (r->consumed >= 0) {
            BSON_APPEND_INT64(&m, "count", r->consumed);
            BSON_APPEND_UTF8(&m, "digest", r->consumed_digest);
            total += r->consumed;
        } else {
            BSON_APPEND_NULL(&m, "count");
            all = false;
        }
        if (for_record) {
            BSON_APPEND_UTF8(&m, "status", nem_status_name(nem_status_of_script(r->ok)));
            BSON_APPEND_INT64(&m, "documents", (int64_t)r->documents);
            if (r->ok)
                BSON_APPEND_NULL(&m, "error");
            else
                BSON_APPEND_UTF8(&m, "error", r->error);
        }
        bson_append_document_end(&arr, &m);
    }
    bson_append_array_end(out, &arr);
    if (all)
        BSON_APPEND_INT64(out, "count", total);
    else
        BSON_APPEND_NULL(out, "count");
}

/* Member 0's model gets the group's lineage (metadata._nemesyst.group). */
static bool stamp_model(coord_t *c, const coord_group_t *g, const nem_script_plan_t *sp, bson_error_t *err)
{
    const nem_task_result_t *r0 = &g->results[0];
    if (!r0->model[0])
        return true;
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, lineage;
    bson_oid_t oid;
    char files[300];
    bson_oid_init_from_string(&oid, r0->model);
    BSON_APPEND_OID(&filter, "_id", &oid);
    group_lineage(c, g, false, &lineage);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_DOCUMENT(&set, "metadata._nemesyst.group", &lineage);
    bson_append_document_end(&update, &set);
    snprintf(files, sizeof files, "%s.files", sp->model_bucket);
    bool ok = nem_store_update_one(c->store, files, &filter, &update, err);
    bson_destroy(&filter);
    bson_destroy(&update);
    bson_destroy(&lineage);
    return ok;
}

static void finish_group(coord_t *c, coord_group_t *g)
{
    const nem_script_plan_t *sp = nem_run_plan_script(c->plan, g->stage, g->position);
    nem_task_result_t r = g->results[0];
    bson_error_t err = {0};
    r.member = -1;
    r.group_stopped = false;
    r.consumed = -1;
    r.documents = 0;
    r.ok = true;
    for (int m = 0; m < g->size; m++) {
        const nem_task_result_t *x = &g->results[m];
        r.ok &= x->ok;
        r.documents += x->documents;
        if (x->started_ms < r.started_ms)
            r.started_ms = x->started_ms;
        if (x->ended_ms > r.ended_ms)
            r.ended_ms = x->ended_ms;
    }
    r.error[0] = '\0';
    r.interrupted = false;
    if (!r.ok) {
        const nem_task_result_t *x = cause(g);
        r.interrupted = x->interrupted; /* the group stopped because the run was interrupted */
        bson_snprintf(r.error, sizeof r.error, "learner group of %d: member %d (rank %d on %s) failed: %s", g->size,
                      x->member, x->rank, x->host, x->error);
    } else if (sp && !stamp_model(c, g, sp, &err)) {
        r.ok = false;
        bson_snprintf(r.error, sizeof r.error, "learner group of %d: its lineage could not be stored on model %s: %s",
                      g->size, r.model, err.message);
    }
    if (!r.ok && sp && !c->plan->writer.keep_partial) {
        /* what any member stored goes, all of it: the group failed as one */
        if (nem_output_purge(c->store, sp, c->run_id, g->stage, g->position, c->legacy, &err)) {
            r.documents = 0, r.models = 0;
            r.model[0] = '\0';
        } else {
            size_t len = strlen(r.error);
            bson_snprintf(r.error + len, sizeof r.error - len, "; rollback failed: %s", err.message);
        }
    }
    if (!r.ok) {
        NEM_ERROR("%s", r.error);
    } else {
        NEM_INFO("%s[%zu]: learner group of %d done", nem_stage_name(g->stage), g->position, g->size);
        if (!c->plan->writer.keep_checkpoints) /* not before: a member that fails late rolls the whole group back */
            nem_output_drop_checkpoints(c->store, c->run_id, g->stage, g->position);
    }
    bson_t extra = BSON_INITIALIZER, lineage;
    group_lineage(c, g, true, &lineage);
    BSON_APPEND_DOCUMENT(&extra, "group", &lineage);
    bson_destroy(&lineage);
    nem_coord_record_entry(c, &r, &extra);
    bson_destroy(&extra);
}

void nem_coord_group_result(coord_t *c, const nem_task_result_t *r)
{
    coord_group_t *g = find_group(c, r->stage, r->position);
    if (!g || r->member < 0 || r->member >= g->size || g->reported[r->member]) {
        NEM_WARN("%s[%zu]: a result of member %d that no group of this round expects", nem_stage_name(r->stage),
                 r->position, r->member);
        return;
    }
    g->results[r->member] = *r;
    g->reported[r->member] = true;
    g->n_reported++;
    if (!r->ok && !g->aborted && c->world->size > 1) {
        /* the other members may be waiting for this one in a collective: their ranks stop them now */
        char why[300];
        bson_snprintf(why, sizeof why, "member %d of the learner group of %d failed (rank %d on %s)", r->member,
                      g->size, r->rank, r->host);
        g->aborted = true;
        for (int m = 0; m < g->size; m++) {
            bool told = false;
            for (int j = 0; j < m; j++)
                told |= !g->reported[j] && g->ranks[j] == g->ranks[m];
            if (!g->reported[m] && !told && g->ranks[m] != r->rank)
                nem_coord_send_abort(c, g->ranks[m], g->index, why);
        }
    }
    if (g->n_reported == g->size)
        finish_group(c, g);
}

void nem_coord_group_add(coord_t *c, nem_stage_t stage, size_t position, int index, int size, const int *ranks,
                         char **shards)
{
    coord_group_t *g;
    c->groups = bson_realloc(c->groups, (c->n_groups + 1) * sizeof *c->groups);
    g = &c->groups[c->n_groups++];
    memset(g, 0, sizeof *g);
    g->stage = stage;
    g->position = position;
    g->size = size;
    g->index = index;
    g->ranks = bson_malloc0((size_t)size * sizeof *g->ranks);
    memcpy(g->ranks, ranks, (size_t)size * sizeof *g->ranks);
    g->results = bson_malloc0((size_t)size * sizeof *g->results);
    g->reported = bson_malloc0((size_t)size * sizeof *g->reported);
    g->shards = shards;
}

void nem_coord_groups_clear(coord_t *c)
{
    for (size_t i = 0; i < c->n_groups; i++) {
        bson_free(c->groups[i].ranks);
        bson_free(c->groups[i].results);
        bson_free(c->groups[i].reported);
        for (int m = 0; c->groups[i].shards && m < c->groups[i].size; m++)
            bson_free(c->groups[i].shards[m]);
        bson_free(c->groups[i].shards);
    }
    bson_free(c->groups);
    c->groups = NULL;
    c->n_groups = 0;
}
