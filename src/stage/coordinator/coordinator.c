/* Rank 0 over the stages, in lockstep rounds (coordinator.h). Each stage's scripts are packed into rounds
 * (pack.h); a round ends when every script in it has reported; a barrier of all ranks ends each stage (stage.c);
 * rounds never cross a stage boundary. MPI carries only control (message.h). With one rank, rank 0 runs the
 * scripts itself. */
#include <string.h>

#include "log/log.h"
#include "stage/coordinator/coordinator-private.h"
#include "stage/output.h"
#include "util/exitcodes.h"
#include "util/signals.h"

coord_t *nem_coord_new(const nem_world_t *world, const nem_run_plan_t *plan, char *hosts)
{
    coord_t *c = bson_malloc0(sizeof *c);
    c->world = world;
    c->plan = plan;
    c->hosts = hosts;
    for (int r = 0; hosts && r < world->size; r++)
        hosts[(size_t)r * NEM_HOSTLEN + NEM_HOSTLEN - 1] = '\0';
    c->pack = (nem_pack_env_t){world->size, plan->process_pool, hosts, (size_t)NEM_HOSTLEN};
    c->aborts_sent = bson_malloc0(((size_t)world->size + 1) * sizeof *c->aborts_sent);
    bson_init(&c->previous);
    bson_init(&c->pending);
    return c;
}

void nem_coord_destroy(coord_t *c)
{
    if (!c)
        return;
    nem_coord_ol_destroy(c);
    nem_summary_destroy(c->summary);
    nem_coord_groups_clear(c);
    bson_free(c->hosts);
    bson_free(c->aborts_sent);
    nem_store_destroy(c->store);
    bson_destroy(&c->previous);
    bson_destroy(&c->pending);
    bson_free(c);
}

nem_store_t *nem_coord_store(coord_t *c)
{
    return c->store;
}

/* A script's result: a learner group member's goes to its group, which records the group's once all have
 * reported; any other is recorded at once. */
void nem_coord_record(const nem_task_result_t *r, void *ud)
{
    coord_t *c = ud;
    if (r->group_size > 1 && r->member >= 0)
        nem_coord_group_result(c, r);
    else
        nem_coord_record_entry(c, r, NULL);
}

/* A learner group's shards, and on --resume what an earlier try of it stored removed first, as one, before any
 * member runs; false (the script failed and is recorded so) when its data cannot be split. */
static bool prepare_group(coord_t *c, nem_stage_t stage, size_t position, int k, char **shards)
{
    const nem_script_plan_t *sp = nem_run_plan_script(c->plan, stage, position);
    bson_error_t err = {0};
    bool ok = nem_coord_shards(c, sp, position, k, shards, &err);
    if (ok && c->resume_id)
        ok = nem_output_purge(c->store, sp, c->run_id, stage, position, c->legacy, &err);
    if (ok)
        return true;
    nem_task_result_t r = {.stage = stage, .position = position, .member = -1, .group_size = k, .consumed = -1,
                           .rank = 0, .ok = false};
    r.started_ms = r.ended_ms = nem_wall_ms();
    bson_strncpy(r.host, nem_pack_host(&c->pack, 0), sizeof r.host);
    bson_strncpy(r.error, err.message, sizeof r.error);
    NEM_ERROR("%s", r.error);
    nem_coord_record_entry(c, &r, NULL);
    for (int m = 0; m < k; m++)
        bson_free(shards[m]);
    return false;
}

/* More than one rank: waits for every worker's end of round, recording results as they come and reporting
 * progress and refreshing the heartbeat meanwhile. */
static void collect_round(coord_t *c)
{
    int workers = c->world->size - 1, finished = 0;
    nem_event_t ev;
    while (finished < workers) {
        nem_coord_next_event(100, &ev);
        switch (ev.kind) {
        case NEM_EV_NONE:
            break;
        case NEM_EV_ROUND_DONE:
            finished++;
            break;
        case NEM_EV_PROGRESS:
            nem_summary_live(c->summary, ev.documents);
            break;
        case NEM_EV_RESULT:
            nem_coord_record(&ev.result, c);
            break;
        case NEM_EV_BAD:
            NEM_ERROR("%s", ev.why);
            nem_world_abort(NEM_EXIT_FAILURE);
        }
        nem_summary_progress(c->summary, NEM_PROGRESS_MS);
        nem_coord_heartbeat(c);
    }
}

static int unit_size(const coord_t *c, nem_stage_t stage, size_t position)
{
    const nem_script_plan_t *sp = nem_run_plan_script(c->plan, stage, position);
    return stage == NEM_STAGE_LEARN && sp && sp->group_size > 1 ? sp->group_size : 1;
}

static void broadcast(coord_t *c, nem_round_t *round)
{
    bson_t msg;
    round->aborts = c->aborts_sent;
    round->n_ranks = c->world->size;
    nem_msg_round_encode(round, &msg);
    round->aborts = NULL;
    nem_msg_bcast(c->world, &msg);
    bson_destroy(&msg);
}

void nem_coord_stage(coord_t *c, nem_stage_t stage, const nem_worker_ctx_t *wctx)
{
    const char *name = nem_stage_name(stage);
    size_t nscripts = c->plan->stages[stage].n;
    size_t *todo = bson_malloc0((nscripts + 1) * sizeof *todo), ntodo = 0;
    size_t *in_round = bson_malloc0((nscripts + 1) * sizeof *in_round);

    if (!c->summary) { /* before the first stage */
        size_t total = 0;
        for (int st = 0; st < NEM_STAGE__COUNT; st++)
            if (c->plan->stages[st].enabled)
                total += c->plan->stages[st].n;
        c->summary = nem_summary_new(c->plan, c->run_id, total);
    }
    for (size_t p = 0; p < nscripts; p++)
        if (!nem_coord_already_succeeded(c, stage, p))
            todo[ntodo++] = p;
    NEM_INFO("stage %s: %zu script(s) in rounds of %zu (%d worker rank(s) x process pool %d)", name, ntodo,
             nem_pack_slots(&c->pack), nem_pack_workers(&c->pack), c->plan->process_pool);
    for (size_t start = 0; start < ntodo && !nem_signal_pending();) {
        nem_round_t round;
        nem_packer_t pk;
        size_t nin = 0;
        nem_pack_begin(&pk, &c->pack, &round, stage, ++c->round);
        for (; start < ntodo; start++) {
            size_t pos = todo[start];
            int k = unit_size(c, stage, pos);
            char **shards = NULL;
            if (!nem_pack_fits(&pk, k))
                break;
            if (k > 1) {
                shards = bson_malloc0((size_t)k * sizeof *shards);
                if (!prepare_group(c, stage, pos, k, shards)) {
                    bson_free(shards);
                    continue;
                }
            }
            int g = nem_pack_add(&pk, pos, k, shards);
            if (g >= 0) {
                int *ranks = bson_malloc0((size_t)k * sizeof *ranks);
                for (int m = 0; m < k; m++)
                    ranks[m] = round.tasks[round.n_tasks - (size_t)k + (size_t)m].rank;
                nem_coord_group_add(c, stage, pos, g, k, ranks, shards); /* the group's shards now */
                bson_free(ranks);
            }
            in_round[nin++] = pos;
        }
        nem_summary_round(c->summary, stage, in_round, nin);
        for (size_t i = 0; i < nin; i++)
            nem_coord_ol_script_start(c, stage, in_round[i]);
        broadcast(c, &round);
        /* rank 0 takes part in the groups' communicators; it runs scripts only when alone */
        nem_worker_round(c->world, &round, wctx, c->world->size == 1 ? nem_coord_record : NULL, c);
        if (c->world->size > 1)
            collect_round(c);
        nem_coord_groups_clear(c);
        nem_coord_flush(c);
        nem_round_clear(&round);
    }
    nem_round_t end = {.end = true};
    broadcast(c, &end);
    bson_free(in_round);
    bson_free(todo);
}

void nem_coord_never_started(coord_t *c)
{
    bson_error_t err;
    if (!c->plan->summary_json)
        return;
    nem_summary_t *s = c->summary ? c->summary : nem_summary_new(c->plan, c->run_id, 0);
    if (!nem_summary_write_json(s, NEM_STATUS_FAILED, c->plan->summary_json, &err))
        NEM_ERROR("%s", err.message);
    if (s != c->summary)
        nem_summary_destroy(s);
}
