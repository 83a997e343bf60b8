/* Stages over MPI, in lockstep rounds. Rank 0 deals each stage's scripts in rounds of (workers x --process-pool);
 * a round ends when every script in it has reported; a barrier of all ranks ends each stage; rounds never cross a
 * stage boundary. MPI carries only control: round plans (BSON, broadcast) and results (BSON, point to point).
 * With one rank, rank 0 runs the scripts itself. */
#include <mpi.h>
#include <string.h>

#include "log/log.h"
#include "stage/coordinator-private.h"
#include "util/exitcodes.h"
#include "util/signals.h"

/* Every rank: runs the tasks the round plan gives this rank. */
static void run_my_tasks(coord_t *c, const bson_t *round, const nem_worker_ctx_t *wctx)
{
    bson_iter_t it, tasks;
    nem_stage_t stage = NEM_STAGE_CLEAN;
    size_t *mine = NULL, n = 0;
    if (bson_iter_init_find(&it, round, "stage"))
        nem_stage_from_name(bson_iter_utf8(&it, NULL), &stage);
    if (bson_iter_init_find(&it, round, "tasks") && bson_iter_recurse(&it, &tasks)) {
        /* As many as the round holds: a large --process-pool must not drop any. */
        bson_iter_t count = tasks;
        size_t ntasks = 0;
        while (bson_iter_next(&count))
            ntasks++;
        mine = bson_malloc0((ntasks + 1) * sizeof *mine);
        while (bson_iter_next(&tasks)) {
            bson_iter_t t;
            int64_t pos = -1, rank = -1;
            bson_iter_recurse(&tasks, &t);
            while (bson_iter_next(&t)) {
                if (!strcmp(bson_iter_key(&t), "position"))
                    pos = bson_iter_as_int64(&t);
                else if (!strcmp(bson_iter_key(&t), "rank"))
                    rank = bson_iter_as_int64(&t);
            }
            if (rank == c->world->rank)
                mine[n++] = (size_t)pos;
        }
    }
    if (c->world->size == 1) {
        nem_worker_run(wctx, stage, mine, n, nem_coord_record, c);
    } else if (c->world->rank != 0) { /* the coordinator collects; it runs scripts only when alone */
        if (n)
            nem_worker_run(wctx, stage, mine, n, nem_coord_send_result, c);
        nem_coord_send_round_done(c);
    }
    bson_free(mine);
}

/* Rank 0: the round plans of one stage, broadcast one after the other. */
static void coordinate_stage(coord_t *c, nem_stage_t stage, const nem_worker_ctx_t *wctx)
{
    const char *name = nem_stage_name(stage);
    size_t nscripts = c->plan->stages[stage].n;
    int workers = c->world->size > 1 ? c->world->size - 1 : 1;
    size_t per_round = (size_t)workers * (size_t)c->plan->process_pool;
    size_t *todo = bson_malloc0((nscripts + 1) * sizeof *todo), ntodo = 0;

    for (size_t p = 0; p < nscripts; p++)
        if (!nem_coord_already_succeeded(c, stage, p))
            todo[ntodo++] = p;
    NEM_INFO("stage %s: %zu script(s) in rounds of %zu (%d worker rank(s) x process pool %d)", name, ntodo,
             per_round, workers, c->plan->process_pool);
    for (size_t start = 0; start < ntodo && !nem_signal_pending(); start += per_round) {
        bson_t round = BSON_INITIALIZER, arr;
        char key[16];
        const char *k;
        BSON_APPEND_UTF8(&round, "stage", name);
        BSON_APPEND_ARRAY_BEGIN(&round, "tasks", &arr);
        for (size_t j = 0; j < per_round && start + j < ntodo; j++) {
            bson_t t;
            bson_uint32_to_string((uint32_t)j, &k, key, sizeof key);
            BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &t);
            BSON_APPEND_INT64(&t, "position", (int64_t)todo[start + j]);
            BSON_APPEND_INT32(&t, "rank", c->world->size > 1 ? 1 + (int)(j % (size_t)workers) : 0);
            bson_append_document_end(&arr, &t);
        }
        bson_append_array_end(&round, &arr);
        size_t in_round = ntodo - start < per_round ? ntodo - start : per_round;
        nem_summary_round(c->summary, stage, todo + start, in_round);
        nem_coord_bcast(c->world, &round);
        run_my_tasks(c, &round, wctx);
        if (c->world->size > 1)
            nem_coord_collect_round(c);
        nem_coord_flush(c);
        bson_destroy(&round);
    }
    bson_free(todo);
}

int nem_stages_run(const nem_world_t *world, const nem_run_plan_t *plan)
{
    coord_t c = {.world = world, .plan = plan};
    bson_t hello = BSON_INITIALIZER;
    int status;

    if (plan->list_runs)
        return nem_coord_list_runs(world, plan);
    if (!nem_run_plan_any_stage(plan))
        return NEM_EXIT_OK;
    bson_init(&c.previous);
    bson_init(&c.pending);
    status = nem_coord_open_run(&c);
    if (world->rank == 0) {
        BSON_APPEND_INT32(&hello, "status", status);
        BSON_APPEND_UTF8(&hello, "run", c.run_id);
        BSON_APPEND_BOOL(&hello, "legacy", c.legacy);
    }
    nem_coord_bcast(world, &hello);
    bson_iter_t it;
    if (bson_iter_init_find(&it, &hello, "status"))
        status = bson_iter_int32(&it);
    if (bson_iter_init_find(&it, &hello, "run"))
        bson_strncpy(c.run_id, bson_iter_utf8(&it, NULL), sizeof c.run_id);
    if (bson_iter_init_find(&it, &hello, "legacy"))
        c.legacy = bson_iter_as_bool(&it);
    bson_destroy(&hello);
    if (status >= 0)
        goto done;

    if (!nem_coord_connect_workers(&c)) {
        status = NEM_EXIT_SERVER;
        goto done;
    }
    nem_worker_ctx_t wctx = {world, plan, c.store, c.run_id, plan->resume_id != NULL, c.legacy,
                             world->rank == 0 ? nem_coord_progress_local : nem_coord_progress_send, &c};
    size_t total = 0;
    for (int s = 0; s < NEM_STAGE__COUNT; s++)
        if (plan->stages[s].enabled)
            total += plan->stages[s].n;
    if (world->rank == 0)
        c.summary = nem_summary_new(plan, c.run_id, total);

    for (int s = 0; s < NEM_STAGE__COUNT; s++) {
        if (!plan->stages[s].enabled)
            continue;
        if (world->rank == 0) {
            coordinate_stage(&c, (nem_stage_t)s, &wctx);
            bson_t end = BSON_INITIALIZER;
            BSON_APPEND_BOOL(&end, "end", true);
            nem_coord_bcast(world, &end);
            bson_destroy(&end);
        } else {
            for (;;) {
                bson_t round = BSON_INITIALIZER;
                nem_coord_bcast(world, &round);
                bool end = bson_has_field(&round, "end");
                if (!end)
                    run_my_tasks(&c, &round, &wctx);
                bson_destroy(&round);
                if (end)
                    break;
            }
        }
        /* The documented stage barrier: nothing of the next stage starts before this one ended everywhere. */
        nem_mpi_barrier();
    }
    if (world->rank == 0)
        status = nem_coord_close_run(&c);
    nem_mpi_bcast(&status, 1, MPI_INT, 0);
    goto out;
done:
    /* The run never got going (no server, a worker without a connection, a bad resume): machines reading
     * --summary-json still get an answer. */
    if (world->rank == 0 && plan->summary_json) {
        bson_error_t err;
        nem_summary_t *s = c.summary ? c.summary : nem_summary_new(plan, c.run_id, 0);
        if (!nem_summary_write_json(s, "failed", plan->summary_json, &err))
            NEM_ERROR("%s", err.message);
        if (s != c.summary)
            nem_summary_destroy(s);
    }
out:
    nem_summary_destroy(c.summary);
    nem_store_destroy(c.store);
    bson_destroy(&c.previous);
    bson_destroy(&c.pending);
    return status;
}
