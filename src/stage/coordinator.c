/* Stages over MPI, in lockstep rounds. Rank 0 deals each stage's scripts in rounds of (workers x --process-pool)
 * slots, a learner group taking one slot a member;
 * a round ends when every script in it has reported; a barrier of all ranks ends each stage; rounds never cross a
 * stage boundary. MPI carries only control: round plans (BSON, broadcast) and results (BSON, point to point).
 * With one rank, rank 0 runs the scripts itself. */
#include <arpa/inet.h>
#include <mpi.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log/log.h"
#include "stage/coordinator-private.h"
#include "stage/writer.h"
#include "util/exitcodes.h"
#include "util/signals.h"

/* One task of a round plan as every rank reads it. */
typedef struct {
    int64_t position, rank, member, size, group, local_rank, local_size;
    const char *shard, *master;
} plan_task_t;

static void read_task(bson_iter_t *tasks, plan_task_t *pt)
{
    bson_iter_t t;
    memset(pt, 0, sizeof *pt);
    pt->position = pt->rank = pt->member = pt->group = -1;
    pt->size = pt->local_size = 1;
    bson_iter_recurse(tasks, &t);
    while (bson_iter_next(&t)) {
        const char *k = bson_iter_key(&t);
        if (!strcmp(k, "position"))
            pt->position = bson_iter_as_int64(&t);
        else if (!strcmp(k, "rank"))
            pt->rank = bson_iter_as_int64(&t);
        else if (!strcmp(k, "member"))
            pt->member = bson_iter_as_int64(&t);
        else if (!strcmp(k, "size"))
            pt->size = bson_iter_as_int64(&t);
        else if (!strcmp(k, "group"))
            pt->group = bson_iter_as_int64(&t);
        else if (!strcmp(k, "local_rank"))
            pt->local_rank = bson_iter_as_int64(&t);
        else if (!strcmp(k, "local_size"))
            pt->local_size = bson_iter_as_int64(&t);
        else if (!strcmp(k, "shard") && BSON_ITER_HOLDS_UTF8(&t))
            pt->shard = bson_iter_utf8(&t, NULL);
        else if (!strcmp(k, "master") && BSON_ITER_HOLDS_UTF8(&t))
            pt->master = bson_iter_utf8(&t, NULL);
    }
}

/* A TCP port free on this host for torch.distributed's rendezvous (the kernel picks it). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY), .sin_port = 0};
    socklen_t len = sizeof a;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Every rank: runs the tasks the round plan gives this rank. A learner group first gets its communicator (every
 * rank takes part in the split, rank 0 and the ranks without a member of it too) and its rendezvous port. */
static void run_my_tasks(coord_t *c, const bson_t *round, const nem_worker_ctx_t *wctx)
{
    bson_iter_t it, tasks;
    nem_stage_t stage = NEM_STAGE_CLEAN;
    size_t ntasks = 0, n = 0, ngroups = 0;
    plan_task_t *all = NULL;
    if (bson_iter_init_find(&it, round, "stage"))
        nem_stage_from_name(bson_iter_utf8(&it, NULL), &stage);
    if (c->world->rank != 0 && bson_iter_init_find(&it, round, "round"))
        c->round = (int)bson_iter_as_int64(&it);
    nem_coord_drain_aborts(c, round);
    if (bson_iter_init_find(&it, round, "tasks") && bson_iter_recurse(&it, &tasks)) {
        /* As many as the round holds: a large --process-pool must not drop any. */
        bson_iter_t count = tasks;
        while (bson_iter_next(&count))
            ntasks++;
        all = bson_malloc0((ntasks + 1) * sizeof *all);
        for (size_t i = 0; bson_iter_next(&tasks) && i < ntasks; i++) {
            read_task(&tasks, &all[i]);
            if (all[i].group >= 0 && (size_t)all[i].group + 1 > ngroups)
                ngroups = (size_t)all[i].group + 1;
        }
    }
    nem_worker_task_t *mine = bson_malloc0((ntasks + 1) * sizeof *mine);
    nem_group_t **groups = bson_malloc0((ngroups + 1) * sizeof *groups);
    int *ports = bson_malloc0((ngroups + 1) * sizeof *ports);
    for (size_t g = 0; g < ngroups; g++) {
        size_t nlocal = 0;
        bool lead = false;
        int size = 1;
        for (size_t i = 0; i < ntasks; i++)
            if (all[i].group == (int64_t)g) {
                size = (int)all[i].size;
                if (all[i].rank == c->world->rank) {
                    nlocal++;
                    lead |= all[i].member == 0;
                }
            }
        MPI_Comm comm = MPI_COMM_NULL;
        if (c->world->size > 1) {
            /* member 0's rank is the group's rank 0: it picks the port and tells the others */
            MPI_Comm_split(MPI_COMM_WORLD, nlocal ? 0 : MPI_UNDEFINED, lead ? 0 : 1 + c->world->rank, &comm);
            if (comm != MPI_COMM_NULL) {
                ports[g] = lead ? free_port() : 0;
                MPI_Bcast(&ports[g], 1, MPI_INT, 0, comm);
            }
        } else {
            ports[g] = free_port();
        }
        if (nlocal) {
            char label[64];
            int64_t pos = -1;
            for (size_t i = 0; i < ntasks && pos < 0; i++)
                if (all[i].group == (int64_t)g)
                    pos = all[i].position;
            snprintf(label, sizeof label, "%s[%" PRId64 "]", nem_stage_name(stage), pos);
            groups[g] = nem_group_new(label, size, comm, nlocal);
        } else if (comm != MPI_COMM_NULL) {
            MPI_Comm_free(&comm);
        }
    }
    size_t *slots = bson_malloc0((ngroups + 1) * sizeof *slots);
    for (size_t i = 0; i < ntasks; i++) {
        if (all[i].rank != c->world->rank)
            continue;
        nem_worker_task_t *w = &mine[n++];
        w->position = (size_t)all[i].position;
        w->member = (int)all[i].member;
        w->group_size = (int)all[i].size;
        w->group_index = (int)all[i].group;
        if (all[i].group >= 0) {
            w->group = groups[all[i].group];
            w->slot = slots[all[i].group]++;
            w->master_port = ports[all[i].group];
        }
        w->local_rank = (int)all[i].local_rank;
        w->local_size = (int)all[i].local_size;
        w->master_addr = all[i].master;
        w->shard_json = all[i].shard;
    }
    if (c->world->size == 1) {
        nem_worker_run(wctx, stage, mine, n, nem_coord_record, c);
    } else if (c->world->rank != 0) { /* the coordinator collects; it runs scripts only when alone */
        if (n)
            nem_worker_run(wctx, stage, mine, n, nem_coord_send_result, c);
        nem_coord_send_round_done(c);
    }
    for (size_t g = 0; g < ngroups; g++)
        nem_group_destroy(groups[g]);
    bson_free(groups);
    bson_free(ports);
    bson_free(slots);
    bson_free(mine);
    bson_free(all);
}

static const char *host_of(const coord_t *c, int rank)
{
    return c->hosts ? c->hosts + (size_t)rank * NEM_HOSTLEN : "localhost";
}

/* Rank 0: adds the k members of the learner at position to the round (slots from *slot on), with their shards and
 * rendezvous; false (the script failed and is recorded so) when its data cannot be split. */
static bool add_unit(coord_t *c, nem_stage_t stage, size_t position, bson_t *arr, size_t *ntask, size_t *slot,
                     int workers)
{
    const nem_script_plan_t *sp = nem_run_plan_script(c->plan, stage, position);
    int k = stage == NEM_STAGE_LEARN && sp && sp->group_size > 1 ? sp->group_size : 1;
    char **shards = NULL;
    int *ranks = bson_malloc0((size_t)k * sizeof *ranks);
    bson_error_t err = {0};
    for (int m = 0; m < k; m++)
        ranks[m] = c->world->size > 1 ? 1 + (int)((*slot + (size_t)m) % (size_t)workers) : 0;
    if (k > 1) {
        shards = bson_malloc0((size_t)k * sizeof *shards);
        bool ok = nem_coord_shards(c, sp, position, k, shards, &err);
        /* --resume: what an earlier try of the group stored goes first, as one, before any member runs */
        if (ok && c->resume_id)
            ok = nem_writer_purge(c->store, sp, c->run_id, stage, position, c->legacy, &err);
        if (!ok) {
            nem_task_result_t r = {.stage = stage, .position = position, .member = -1, .group_size = k,
                                   .consumed = -1, .rank = 0, .ok = false};
            r.started_ms = r.ended_ms = nem_wall_ms();
            bson_strncpy(r.host, host_of(c, 0), sizeof r.host);
            bson_strncpy(r.error, err.message, sizeof r.error);
            NEM_ERROR("%s", r.error);
            nem_coord_record_entry(c, &r, NULL);
            for (int m = 0; m < k; m++)
                bson_free(shards[m]);
            bson_free(shards);
            bson_free(ranks);
            return false;
        }
        coord_group_t *g;
        c->groups = bson_realloc(c->groups, (c->n_groups + 1) * sizeof *c->groups);
        g = &c->groups[c->n_groups];
        memset(g, 0, sizeof *g);
        g->stage = stage;
        g->position = position;
        g->size = k;
        g->index = (int)c->n_groups++;
        g->ranks = ranks;
        g->results = bson_malloc0((size_t)k * sizeof *g->results);
        g->reported = bson_malloc0((size_t)k * sizeof *g->reported);
        g->shards = shards; /* the group's now */
    }
    /* torch.distributed's rendezvous: member 0's host, by name, reachable from the others; loopback when the
     * whole group runs on that host */
    const char *master = host_of(c, ranks[0]);
    bool one_host = true;
    for (int m = 1; m < k; m++)
        one_host &= !strcmp(host_of(c, ranks[m]), master);
    for (int m = 0; m < k; m++) {
        bson_t t;
        char key[16];
        const char *kk;
        int local_rank = 0, local_size = 0;
        for (int j = 0; j < k; j++)
            if (!strcmp(host_of(c, ranks[j]), host_of(c, ranks[m]))) {
                local_size++;
                local_rank += j < m;
            }
        bson_uint32_to_string((uint32_t)(*ntask)++, &kk, key, sizeof key);
        BSON_APPEND_DOCUMENT_BEGIN(arr, kk, &t);
        BSON_APPEND_INT64(&t, "position", (int64_t)position);
        BSON_APPEND_INT32(&t, "rank", ranks[m]);
        if (k > 1) {
            BSON_APPEND_INT32(&t, "member", m);
            BSON_APPEND_INT32(&t, "size", k);
            BSON_APPEND_INT32(&t, "group", (int)c->n_groups - 1);
            BSON_APPEND_INT32(&t, "local_rank", local_rank);
            BSON_APPEND_INT32(&t, "local_size", local_size);
            BSON_APPEND_UTF8(&t, "master", one_host ? "127.0.0.1" : master);
            BSON_APPEND_UTF8(&t, "shard", shards[m]);
        }
        bson_append_document_end(arr, &t);
    }
    *slot += (size_t)k;
    if (k == 1)
        bson_free(ranks);
    return true;
}

/* Rank 0: the round plans of one stage, broadcast one after the other. A round holds whole learner groups: a
 * group that does not fit in what is left of a round starts the next one (app/run.c refused one that fits none). */
static void coordinate_stage(coord_t *c, nem_stage_t stage, const nem_worker_ctx_t *wctx)
{
    const char *name = nem_stage_name(stage);
    size_t nscripts = c->plan->stages[stage].n;
    int workers = c->world->size > 1 ? c->world->size - 1 : 1;
    size_t per_round = (size_t)workers * (size_t)c->plan->process_pool;
    size_t *todo = bson_malloc0((nscripts + 1) * sizeof *todo), ntodo = 0;
    size_t *in_round = bson_malloc0((nscripts + 1) * sizeof *in_round);

    for (size_t p = 0; p < nscripts; p++)
        if (!nem_coord_already_succeeded(c, stage, p))
            todo[ntodo++] = p;
    NEM_INFO("stage %s: %zu script(s) in rounds of %zu (%d worker rank(s) x process pool %d)", name, ntodo,
             per_round, workers, c->plan->process_pool);
    for (size_t start = 0; start < ntodo && !nem_signal_pending();) {
        bson_t round = BSON_INITIALIZER, arr;
        size_t slot = 0, ntask = 0, nin = 0;
        BSON_APPEND_UTF8(&round, "stage", name);
        BSON_APPEND_INT32(&round, "round", ++c->round);
        BSON_APPEND_ARRAY_BEGIN(&round, "tasks", &arr);
        for (; start < ntodo; start++) {
            const nem_script_plan_t *sp = nem_run_plan_script(c->plan, stage, todo[start]);
            size_t k = stage == NEM_STAGE_LEARN && sp && sp->group_size > 1 ? (size_t)sp->group_size : 1;
            if (slot && slot + k > per_round)
                break;
            if (add_unit(c, stage, todo[start], &arr, &ntask, &slot, workers))
                in_round[nin++] = todo[start];
        }
        bson_append_array_end(&round, &arr);
        nem_coord_append_aborts(c, &round);
        nem_summary_round(c->summary, stage, in_round, nin);
        nem_coord_bcast(c->world, &round);
        run_my_tasks(c, &round, wctx);
        if (c->world->size > 1)
            nem_coord_collect_round(c);
        nem_coord_groups_clear(c);
        nem_coord_flush(c);
        bson_destroy(&round);
    }
    bson_free(in_round);
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
        BSON_APPEND_INT64(&hello, "attempt", c.attempt);
        BSON_APPEND_BOOL(&hello, "resumed", c.resume_id != NULL);
        BSON_APPEND_BOOL(&hello, "legacy", c.legacy);
    }
    nem_coord_bcast(world, &hello);
    bson_iter_t it;
    if (bson_iter_init_find(&it, &hello, "status"))
        status = bson_iter_int32(&it);
    if (bson_iter_init_find(&it, &hello, "run"))
        bson_strncpy(c.run_id, bson_iter_utf8(&it, NULL), sizeof c.run_id);
    if (bson_iter_init_find(&it, &hello, "attempt") && BSON_ITER_HOLDS_INT64(&it))
        c.attempt = bson_iter_int64(&it);
    bool resumed = bson_iter_init_find(&it, &hello, "resumed") && bson_iter_as_bool(&it);
    if (bson_iter_init_find(&it, &hello, "legacy"))
        c.legacy = bson_iter_as_bool(&it);
    bson_destroy(&hello);
    if (status >= 0)
        goto done;

    if (!nem_coord_connect_workers(&c)) {
        status = NEM_EXIT_SERVER;
        goto done;
    }
    nem_worker_ctx_t wctx = {world, plan, c.store, c.run_id, resumed, c.legacy,
                             world->rank == 0 ? nem_coord_progress_local : nem_coord_progress_send, &c,
                             nem_coord_poll_abort, c.attempt};
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
            nem_coord_append_aborts(&c, &end);
            nem_coord_bcast(world, &end);
            bson_destroy(&end);
        } else {
            for (;;) {
                bson_t round = BSON_INITIALIZER;
                nem_coord_bcast(world, &round);
                bool end = bson_has_field(&round, "end");
                if (!end)
                    run_my_tasks(&c, &round, &wctx);
                else
                    nem_coord_drain_aborts(&c, &round);
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
    nem_coord_groups_clear(&c);
    bson_free(c.hosts);
    bson_free(c.aborts_sent);
    nem_store_destroy(c.store);
    bson_destroy(&c.previous);
    bson_destroy(&c.pending);
    return status;
}
