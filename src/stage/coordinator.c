/* Stages over MPI, in lockstep rounds. Rank 0 deals each stage's scripts in rounds of (workers x --process-pool);
 * a round ends when every script in it has reported; a barrier of all ranks ends each stage; rounds never cross a
 * stage boundary. MPI carries only control: round plans (BSON, broadcast) and results (BSON, point to point).
 * With one rank, rank 0 runs the scripts itself. */
#include <mpi.h>
#include <string.h>
#include <time.h>

#include "app/exitcodes.h"
#include "app/signals.h"
#include "log/log.h"
#include "provenance/provenance.h"
#include "stage/stage.h"
#include "stage/summary.h"
#include "stage/worker.h"

enum { TAG_RESULT = 11, TAG_ROUND_DONE = 12, TAG_PROGRESS = 13 };
#define PROGRESS_MS 5000
#define HOSTLEN ((int)sizeof(((nem_world_t *)0)->host))

/* Broadcasts a BSON document from rank 0; on other ranks doc is initialised from what arrived. */
static void bcast_bson(const nem_world_t *world, bson_t *doc)
{
    uint32_t len = world->rank == 0 ? doc->len : 0;
    MPI_Bcast(&len, 1, MPI_UINT32_T, 0, MPI_COMM_WORLD);
    uint8_t *buf = bson_malloc(len);
    if (world->rank == 0)
        memcpy(buf, bson_get_data(doc), len);
    MPI_Bcast(buf, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (world->rank != 0) {
        bson_t tmp;
        if (!bson_init_static(&tmp, buf, len))
            MPI_Abort(MPI_COMM_WORLD, NEM_EXIT_FAILURE);
        bson_copy_to(&tmp, doc);
    }
    bson_free(buf);
}

static bool any_stage(const nem_config_t *cfg)
{
    for (int s = 0; s < NEM_STAGE__COUNT; s++)
        if (nem_cfg_bool(cfg, nem_stage_info((nem_stage_t)s)->flag))
            return true;
    return false;
}

typedef struct {
    const nem_world_t *world;
    nem_config_t *cfg;
    nem_store_t *store;
    char run_id[64];
    bson_t previous;     /* resume: per-script entries of the run being resumed */
    nem_summary_t *summary;
    bson_t pending;      /* run-record entries not written yet: {"scripts.clean-0": {...}} */
    int64_t flushed_ms;
    bool record_failed;  /* a run-record write failed: the run cannot end with status 0 */
    uint64_t unsent;     /* workers: documents written but not yet reported */
    int64_t sent_ms;
    int64_t beat_ms;     /* rank 0: when the run record's heartbeat was last refreshed */
    bool beat_failed;    /* a heartbeat write failed (warned once) */
} coord_t;

/* Rank 0: refreshes the run record's heartbeat every --heartbeat seconds, so a run whose rank 0 died can be told
 * from a live one (nem_runrec_is_lost). Called from every wait of rank 0. */
static void heartbeat(coord_t *c)
{
    int64_t now = nem_wall_ms();
    bson_error_t err;
    if (c->world->rank != 0 || !c->store || !c->run_id[0] ||
        now - c->beat_ms < nem_cfg_int(c->cfg, NEM_OPT_HEARTBEAT, 0) * 1000)
        return;
    c->beat_ms = now;
    if (!nem_runrec_heartbeat(c->store, c->run_id, &err) && !c->beat_failed) {
        c->beat_failed = true;
        NEM_WARN("run record %s: heartbeat: %s", c->run_id, err.message);
    }
}

#define RECORD_FLUSH_MS 1000

/* Writes the pending run-record entries in one update: one round trip per round (or per second in long rounds),
 * not one per script, keeps the coordinator off the critical path of short scripts. */
static void flush_results(coord_t *c)
{
    bson_error_t err;
    if (bson_empty(&c->pending))
        return;
    if (!nem_runrec_scripts(c->store, c->run_id, &c->pending, &err)) {
        NEM_ERROR("run record %s: %s", c->run_id, err.message);
        c->record_failed = true;
    }
    bson_reinit(&c->pending);
    c->flushed_ms = nem_wall_ms();
}

/* Rank 0: records a result in the run record and the summary. */
static void record_result(const nem_task_result_t *r, void *ud)
{
    coord_t *c = ud;
    bson_t entry;
    char key[64], path[80];
    nem_task_result_to_bson(r, nem_cfg_str(c->cfg, nem_stage_info(r->stage)->scripts, r->position), &entry);
    nem_script_key(r->stage, r->position, key, sizeof key);
    snprintf(path, sizeof path, "scripts.%s", key);
    BSON_APPEND_DOCUMENT(&c->pending, path, &entry);
    bson_destroy(&entry);
    if (nem_wall_ms() - c->flushed_ms >= RECORD_FLUSH_MS)
        flush_results(c);
    nem_summary_add(c->summary, r);
    nem_summary_progress(c->summary, PROGRESS_MS);
}

/* Workers: sends a result to rank 0 as soon as a script ends. */
static void send_result(const nem_task_result_t *r, void *ud)
{
    (void)ud;
    bson_t doc;
    nem_task_result_to_bson(r, NULL, &doc);
    MPI_Send(bson_get_data(&doc), (int)doc.len, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
    bson_destroy(&doc);
}

static bool already_succeeded(const coord_t *c, nem_stage_t stage, size_t pos)
{
    char key[64];
    bson_iter_t it, sub;
    nem_script_key(stage, pos, key, sizeof key);
    if (!bson_iter_init_find(&it, &c->previous, key) || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return false;
    bson_iter_recurse(&it, &sub);
    return bson_iter_find(&sub, "status") && BSON_ITER_HOLDS_UTF8(&sub) &&
           strcmp(bson_iter_utf8(&sub, NULL), "succeeded") == 0;
}

/* Rank 0, more than one rank: waits for every worker's end-of-round message, recording results as they come and
 * reporting progress meanwhile, without spinning a core. */
static void collect_round(coord_t *c)
{
    int workers = c->world->size - 1, finished = 0;
    while (finished < workers) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (!flag) {
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
            nem_summary_progress(c->summary, PROGRESS_MS);
            heartbeat(c);
            continue;
        }
        int len;
        MPI_Get_count(&st, MPI_BYTE, &len);
        uint8_t *buf = bson_malloc(len > 0 ? (size_t)len : 1);
        MPI_Recv(buf, len, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (st.MPI_TAG == TAG_ROUND_DONE) {
            finished++;
        } else if (st.MPI_TAG == TAG_PROGRESS) {
            uint64_t docs;
            memcpy(&docs, buf, sizeof docs < (size_t)len ? sizeof docs : (size_t)len);
            nem_summary_live(c->summary, docs);
        } else {
            bson_t doc;
            nem_task_result_t r;
            if (bson_init_static(&doc, buf, (size_t)len) && nem_task_result_from_bson(&r, &doc))
                record_result(&r, c);
        }
        bson_free(buf);
    }
}

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
        nem_worker_run(wctx, stage, mine, n, record_result, c);
    } else if (c->world->rank != 0) { /* the coordinator collects; it runs scripts only when alone */
        if (n)
            nem_worker_run(wctx, stage, mine, n, send_result, c);
        if (c->unsent) {
            MPI_Send(&c->unsent, 1, MPI_UINT64_T, 0, TAG_PROGRESS, MPI_COMM_WORLD);
            c->unsent = 0;
        }
        MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_ROUND_DONE, MPI_COMM_WORLD);
    }
    bson_free(mine);
}

/* Rank 0: the round plans of one stage, broadcast one after the other. */
static void coordinate_stage(coord_t *c, nem_stage_t stage, const nem_worker_ctx_t *wctx)
{
    const nem_stage_info_t *info = nem_stage_info(stage);
    size_t nscripts = nem_cfg_count(c->cfg, info->scripts);
    int workers = c->world->size > 1 ? c->world->size - 1 : 1;
    size_t per_round = (size_t)workers * (size_t)nem_cfg_int(c->cfg, NEM_OPT_PROCESS_POOL, 0);
    size_t *todo = bson_malloc0((nscripts + 1) * sizeof *todo), ntodo = 0;

    for (size_t p = 0; p < nscripts; p++)
        if (!already_succeeded(c, stage, p))
            todo[ntodo++] = p;
    NEM_INFO("stage %s: %zu script(s) in rounds of %zu (%d worker rank(s) x process pool %" PRId64 ")", info->name,
             ntodo, per_round, workers, nem_cfg_int(c->cfg, NEM_OPT_PROCESS_POOL, 0));
    for (size_t start = 0; start < ntodo && !nem_signal_pending(); start += per_round) {
        bson_t round = BSON_INITIALIZER, arr;
        char key[16];
        const char *k;
        BSON_APPEND_UTF8(&round, "stage", info->name);
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
        bcast_bson(c->world, &round);
        run_my_tasks(c, &round, wctx);
        if (c->world->size > 1)
            collect_round(c);
        flush_results(c);
        bson_destroy(&round);
    }
    bson_free(todo);
}

/* --resume reruns scripts by position: refuse when the script lists differ from the run being resumed, or a rerun
 * would remove or duplicate another script's documents. */
static bool same_scripts(const coord_t *c, bson_error_t *err)
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
        if (!nem_cfg_bool(c->cfg, nem_stage_info(r.stage)->flag))
            continue; /* a stage not run this time cannot be resumed wrongly */
        const char *now = nem_cfg_str(c->cfg, nem_stage_info(r.stage)->scripts, r.position);
        const char *then = bson_iter_init_find(&sub, &entry, "path") && BSON_ITER_HOLDS_UTF8(&sub)
                               ? bson_iter_utf8(&sub, NULL)
                               : NULL;
        if (then && (!now || r.position >= nem_cfg_count(c->cfg, nem_stage_info(r.stage)->scripts) ||
                     strcmp(now, then) != 0)) {
            bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_ESCRIPTS,
                           "--resume %s: %s script #%zu was '%s' in that run, now '%s': resume with the same scripts",
                           c->run_id, nem_stage_info(r.stage)->name, r.position, then, now ? now : "(none)");
            return false;
        }
    }
    return true;
}

/* Rank 0: store, run record. Returns an exit status or -1 to go on. */
static int open_run(coord_t *c)
{
    bson_error_t err = {0};
    nem_store_opts_t so;
    char *hosts = NULL;
    bson_t harr = BSON_INITIALIZER;

    if (c->world->rank == 0)
        hosts = bson_malloc0((size_t)c->world->size * HOSTLEN);
    MPI_Gather(c->world->host, HOSTLEN, MPI_CHAR, hosts, HOSTLEN, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (c->world->rank != 0)
        return -1;
    for (int r = 0; r < c->world->size; r++) {
        char key[16];
        const char *k;
        bson_uint32_to_string((uint32_t)r, &k, key, sizeof key);
        hosts[r * HOSTLEN + HOSTLEN - 1] = '\0';
        BSON_APPEND_UTF8(&harr, k, hosts + r * HOSTLEN);
    }
    bson_free(hosts);
    nem_store_opts_from_config(&so, c->cfg);
    int status = -1;
    if (!(c->store = nem_store_new(&so, &err)) || !nem_store_ping(c->store, &err)) {
        NEM_ERROR("%s", err.message);
        status = NEM_EXIT_SERVER;
    } else if (!nem_runrec_begin(c->store, c->cfg, &harr, c->world->size, nem_cfg_str(c->cfg, NEM_OPT_RESUME, 0),
                                 c->run_id, &c->previous, &err)) {
        NEM_ERROR("run record: %s", err.message);
        /* a refused --resume is bad input (2); a write the driver or server failed is the server's (3) */
        status = err.domain == NEM_ERROR_PROVENANCE ? nem_exit_status(&err) : NEM_EXIT_SERVER;
    } else if (!same_scripts(c, &err)) {
        NEM_ERROR("%s", err.message);
        status = NEM_EXIT_USAGE;
    } else {
        NEM_INFO("run %s%s", c->run_id, nem_cfg_is_set(c->cfg, NEM_OPT_RESUME) ? " (resumed)" : "");
    }
    bson_destroy(&harr);
    return status;
}

static int close_run(coord_t *c)
{
    bson_error_t err;
    size_t failed = nem_summary_failed(c->summary);
    char why[128];
    int sig = nem_signal_pending();
    if (sig)
        snprintf(why, sizeof why, "interrupted by signal %d", sig);
    else
        snprintf(why, sizeof why, "%zu script(s) failed", failed);
    bool ok = !failed && !sig;
    flush_results(c);
    if (!nem_runrec_end(c->store, c->run_id, ok ? "succeeded" : sig ? "interrupted" : "failed", ok ? NULL : why,
                        &err)) {
        NEM_ERROR("run record %s: %s", c->run_id, err.message);
        c->record_failed = true;
    }
    nem_summary_print(c->summary, stdout);
    fflush(stdout);
    const char *json = nem_cfg_str(c->cfg, NEM_OPT_SUMMARY_JSON, 0);
    if (json && !nem_summary_write_json(c->summary, ok ? "succeeded" : sig ? "interrupted" : "failed", json, &err)) {
        NEM_ERROR("%s", err.message);
        return NEM_EXIT_FAILURE;
    }
    if (c->record_failed) {
        /* The server went away (or refused): what the run wrote and what its record says may differ. The record
         * still says running, so once its heartbeat expires it is a lost run, and --resume then removes what the
         * unfinished scripts wrote and reruns them, exactly once. */
        NEM_ERROR("run %s: its run record could not be written (see above: the server stopped answering or "
                  "refused): once it works again, --resume %s finishes this run exactly once (after %" PRId64
                  " s, when its heartbeat has expired)",
                  c->run_id, c->run_id, NEM_RUNREC_LOST_FACTOR * nem_cfg_int(c->cfg, NEM_OPT_HEARTBEAT, 0));
        return sig ? (sig == 2 ? NEM_EXIT_SIGINT : NEM_EXIT_SIGTERM) : NEM_EXIT_SERVER;
    }
    if (sig)
        return sig == 2 ? NEM_EXIT_SIGINT : NEM_EXIT_SIGTERM;
    if (failed)
        return NEM_EXIT_SCRIPTS;
    return NEM_EXIT_OK;
}

/* Every worker connects (and pings, so an unreachable server is found now, not per script); then all ranks agree:
 * if any could not, every rank ends with NEM_EXIT_SERVER and the run record says why. */
static bool connect_workers(coord_t *c)
{
    int ok = 1, all = 0;
    if (c->world->rank != 0) {
        bson_error_t err = {0};
        nem_store_opts_t so;
        nem_store_opts_from_config(&so, c->cfg);
        if (!(c->store = nem_store_new(&so, &err)) || !nem_store_ping(c->store, &err)) {
            NEM_ERROR("rank %d on %s cannot use the database: %s", c->world->rank, c->world->host, err.message);
            ok = 0;
        }
    }
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all && c->world->rank == 0) {
        bson_error_t err;
        NEM_ERROR("run %s: a worker rank cannot use the database (see its error above)", c->run_id);
        if (!nem_runrec_end(c->store, c->run_id, "failed", "a worker rank could not connect to the database", &err))
            NEM_ERROR("run record %s: %s", c->run_id, err.message);
    }
    return all;
}

/* Live progress: rank 0 counts documents as they are written, not only when scripts end. */
static void progress_local(uint64_t documents, void *ud)
{
    coord_t *c = ud;
    nem_summary_live(c->summary, documents);
    nem_summary_progress(c->summary, PROGRESS_MS);
    heartbeat(c);
}

/* Workers tell rank 0 how many documents they wrote, at most once a second. */
static void progress_send(uint64_t documents, void *ud)
{
    coord_t *c = ud;
    c->unsent += documents;
    int64_t now = nem_wall_ms();
    if (!c->unsent || now - c->sent_ms < 1000)
        return;
    MPI_Send(&c->unsent, 1, MPI_UINT64_T, 0, TAG_PROGRESS, MPI_COMM_WORLD);
    c->unsent = 0;
    c->sent_ms = now;
}

/* --list-runs: rank 0 prints the run records; 1 when one of them is lost. */
static int list_runs(const nem_world_t *world, const nem_config_t *cfg)
{
    int status = NEM_EXIT_OK;
    if (world->rank == 0) {
        bson_error_t err = {0};
        nem_store_opts_t so;
        nem_store_t *store;
        size_t lost = 0;
        nem_store_opts_from_config(&so, cfg);
        if (!(store = nem_store_new(&so, &err)) || !nem_store_ping(store, &err)) {
            NEM_ERROR("%s", err.message);
            status = NEM_EXIT_SERVER;
        } else if (!nem_runrec_list(store, stdout, &lost, &err)) {
            NEM_ERROR("--list-runs: %s", err.message);
            status = NEM_EXIT_SERVER;
        } else if (lost) {
            NEM_WARN("%zu lost run(s): rank 0 died without closing them; --resume RUN_ID finishes one", lost);
            status = NEM_EXIT_FAILURE;
        }
        fflush(stdout);
        nem_store_destroy(store);
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return status;
}

int nem_stages_run(const nem_world_t *world, nem_config_t *cfg)
{
    coord_t c = {.world = world, .cfg = cfg};
    bson_t hello = BSON_INITIALIZER;
    int status;

    if (nem_cfg_bool(cfg, NEM_OPT_LIST_RUNS))
        return list_runs(world, cfg);
    if (!any_stage(cfg))
        return NEM_EXIT_OK;
    bson_init(&c.previous);
    bson_init(&c.pending);
    status = open_run(&c);
    if (world->rank == 0) {
        BSON_APPEND_INT32(&hello, "status", status);
        BSON_APPEND_UTF8(&hello, "run", c.run_id);
    }
    bcast_bson(world, &hello);
    bson_iter_t it;
    if (bson_iter_init_find(&it, &hello, "status"))
        status = bson_iter_int32(&it);
    if (bson_iter_init_find(&it, &hello, "run"))
        bson_strncpy(c.run_id, bson_iter_utf8(&it, NULL), sizeof c.run_id);
    bson_destroy(&hello);
    if (status >= 0)
        goto done;

    if (!connect_workers(&c)) {
        status = NEM_EXIT_SERVER;
        goto done;
    }
    nem_worker_ctx_t wctx = {world, cfg, c.store, c.run_id, nem_cfg_is_set(cfg, NEM_OPT_RESUME),
                             world->rank == 0 ? progress_local : progress_send, &c};
    size_t total = 0;
    for (int s = 0; s < NEM_STAGE__COUNT; s++)
        if (nem_cfg_bool(cfg, nem_stage_info((nem_stage_t)s)->flag))
            total += nem_cfg_count(cfg, nem_stage_info((nem_stage_t)s)->scripts);
    if (world->rank == 0)
        c.summary = nem_summary_new(cfg, c.run_id, total);

    for (int s = 0; s < NEM_STAGE__COUNT; s++) {
        if (!nem_cfg_bool(cfg, nem_stage_info((nem_stage_t)s)->flag))
            continue;
        if (world->rank == 0) {
            coordinate_stage(&c, (nem_stage_t)s, &wctx);
            bson_t end = BSON_INITIALIZER;
            BSON_APPEND_BOOL(&end, "end", true);
            bcast_bson(world, &end);
            bson_destroy(&end);
        } else {
            for (;;) {
                bson_t round = BSON_INITIALIZER;
                bcast_bson(world, &round);
                bool end = bson_has_field(&round, "end");
                if (!end)
                    run_my_tasks(&c, &round, &wctx);
                bson_destroy(&round);
                if (end)
                    break;
            }
        }
        /* The documented stage barrier: nothing of the next stage starts before this one ended everywhere. */
        MPI_Barrier(MPI_COMM_WORLD);
    }
    if (world->rank == 0)
        status = close_run(&c);
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    goto out;
done:
    /* The run never got going (no server, a worker without a connection, a bad resume): machines reading
     * --summary-json still get an answer. */
    if (world->rank == 0 && nem_cfg_is_set(cfg, NEM_OPT_SUMMARY_JSON)) {
        bson_error_t err;
        nem_summary_t *s = c.summary ? c.summary : nem_summary_new(cfg, c.run_id, 0);
        if (!nem_summary_write_json(s, "failed", nem_cfg_str(cfg, NEM_OPT_SUMMARY_JSON, 0), &err))
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
