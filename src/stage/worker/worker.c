/* Runs one round's scripts concurrently in child processes: one poll() loop over all their pipes, each script's
 * items written as they arrive. A script that fails is stopped and rolled back; the others go on. Nothing in the loop
 * waits on one script: a stop gives its grace period across passes (SIGTERM, then SIGKILL), and a rollback runs on a
 * thread of its own with its own connection (deleting many documents takes a while on any server), so the other
 * scripts' pipes are read all the while. */
#include "stage/worker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/signals.h"
#include "log/log.h"
#include "stage/runner/runner.h"
#include "stage/worker/writer.h"
#include "stage/output.h"
#include "provenance/provenance.h"
#include "store/ckpt.h"
#include "util/fs.h"

#define DRAIN_POLL_MS 10
#define EXITED_GRACE_MS 1000

/* A script's life in the loop: running, stopping (signalled, its grace period passing), rolling back (a piece of
 * its documents per pass), done (reported). */
typedef enum { TASK_RUNNING, TASK_STOPPING, TASK_ROLLBACK, TASK_DONE } phase_t;

/* A rollback beside the loop. */
typedef struct {
    pthread_t thread;
    const nem_store_opts_t *opts;
    nem_writer_t *writer;
    bool ok;
    bson_error_t err;
    atomic_bool finished;
} rollback_t;

typedef struct {
    size_t position;
    const nem_worker_task_t *wt; /* what the round gave (group membership) */
    nem_runner_t *runner;
    nem_writer_t *writer;
    char workdir[256];
    char stop_file[300];    /* created when a stop is coming: the script should checkpoint now */
    char checkpoint[300];   /* executables: its newest checkpoint, downloaded into workdir ("" = none) */
    int64_t stop_asked_ms;  /* a learner asked to checkpoint (its stop file made) when a stop came; 0 = not */
    phase_t phase;
    bool done;
    bool failed;
    bool draining;          /* output closed, waiting (without blocking) for the process to exit */
    int64_t exited_ms;      /* when the script's process was seen gone while its pipes stayed open (0 = not) */
    uint64_t docs_reported; /* documents already counted in progress reports */
    nem_task_result_t result;
    bson_value_t parent;
    bool has_parent;
    char *parent_path;
    char *parent_json;
    rollback_t *rollback;   /* TASK_ROLLBACK: the thread doing it */
} task_t;

/* A member's end, as its group sees it (the first verdict counts). */
static void group_end(task_t *t, bool ok)
{
    if (t->wt->group)
        nem_learner_group_member_ended(t->wt->group, t->wt->slot, ok);
}

static void fail_task(task_t *t, const bson_error_t *err)
{
    group_end(t, false);
    t->failed = true;
    if (!t->result.error[0])
        bson_strncpy(t->result.error, err->message, sizeof t->result.error);
}

/* Retraining: the first model that --dl-input-model-pipeline picks from --dl-input-model-collection (sort in the
 * pipeline to choose, e.g. {"$sort": {"uploadDate": -1}} for the newest). */
/* An executable learner of a resumed run goes on from its newest usable checkpoint: downloaded into its work
 * directory before it starts, its path in NEMESYST_CHECKPOINT (C plugins and Python load theirs themselves). */
static bool fetch_checkpoint(const nem_worker_ctx_t *ctx, task_t *t, bson_error_t *err)
{
    char key[64], path[300];
    nem_ckpt_found_t found;
    nem_script_key(NEM_STAGE_LEARN, t->position, key, sizeof key);
    snprintf(path, sizeof path, "%s/checkpoint", t->workdir);
    int rc = nem_ckpt_load_file(ctx->store, ctx->run_id, key, path, &found, err);
    if (rc == 1) {
        bson_error_t e;
        if (found.skipped[0]) {
            NEM_WARN("learn[%zu]: checkpoint: passed over %s", t->position, found.skipped);
            if (!nem_ckpt_trim_after(ctx->store, NEM_METRICS_COLLECTION, ctx->run_id, key, found.step, &e))
                NEM_WARN("learn[%zu]: metrics after step %" PRId64 " not removed: %s", t->position, found.step,
                         e.message);
        }
        NEM_INFO("learn[%zu]: goes on from its checkpoint at step %" PRId64 " (attempt %" PRId64 ")", t->position,
                 found.step, found.attempt);
        bson_strncpy(t->checkpoint, path, sizeof t->checkpoint);
    }
    bson_destroy(&found.metadata);
    return rc >= 0;
}

static bool fetch_parent(const nem_worker_ctx_t *ctx, const nem_script_plan_t *sp, task_t *t, bson_error_t *err)
{
    if (!sp->input_pipeline)
        return true;
    const char *bucket = sp->input_bucket;
    bson_t full = BSON_INITIALIZER, stage;
    bson_concat(&full, sp->input_pipeline);
    char key[16];
    const char *k;
    bson_uint32_to_string(bson_count_keys(sp->input_pipeline), &k, key, sizeof key);
    BSON_APPEND_DOCUMENT_BEGIN(&full, k, &stage);
    BSON_APPEND_INT32(&stage, "$limit", 1);
    bson_append_document_end(&full, &stage);
    char files[256];
    snprintf(files, sizeof files, "%s.files", bucket);
    nem_batches_t *b = nem_batches_new(ctx->store, files, &full, 1, err);
    bson_destroy(&full);
    if (!b)
        return false;
    const bson_t *const *docs;
    size_t n = 0;
    bool found = false;
    if (nem_batches_next(b, &docs, &n, err) && n > 0) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, docs[0], "_id")) {
            bson_value_copy(bson_iter_value(&it), &t->parent);
            t->has_parent = found = true;
        }
    }
    nem_batches_destroy(b);
    if (!found) {
        if (!err->code)
            bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN,
                           "learn[%zu]: --dl-input-model-pipeline matched no model in '%s'", t->position, bucket);
        return false;
    }
    t->parent_path = bson_strdup_printf("%s/input-model", t->workdir);
    if (!nem_gridfs_download_to_file(ctx->store, bucket, &t->parent, t->parent_path, err))
        return false;
    bson_t tmp = BSON_INITIALIZER;
    BSON_APPEND_VALUE(&tmp, "id", &t->parent);
    t->parent_json = bson_as_canonical_extended_json(&tmp, NULL);
    bson_destroy(&tmp);
    return true;
}

static bool start_task(const nem_worker_ctx_t *ctx, nem_stage_t stage, task_t *t, bson_error_t *err)
{
    const nem_run_plan_t *plan = ctx->plan;
    const char *name = nem_stage_name(stage);
    const nem_script_plan_t *sp = nem_run_plan_script(plan, stage, t->position);
    if (!ctx->store || !sp) {
        bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, "%s script #%zu: rank %d has %s", name, t->position,
                       ctx->world->rank, sp ? "no database connection" : "no such script");
        return false;
    }
    const char *tmp = getenv("TMPDIR");

    snprintf(t->workdir, sizeof t->workdir, "%s/nemesyst-%s-%s-%zu-XXXXXX", tmp ? tmp : "/tmp", ctx->run_id, name,
             t->position);
    if (!mkdtemp(t->workdir)) {
        bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, "%s[%zu] %s: cannot create a work directory: %s",
                       name, t->position, sp->path, strerror(errno));
        t->workdir[0] = '\0';
        return false;
    }
    /* a learner group's earlier try: rank 0 removed it before the round, as one */
    if (ctx->resume && t->wt->group_size <= 1 && !nem_output_purge(ctx->store, sp, ctx->run_id, stage, t->position, ctx->legacy_stamp, err))
        return false;
    if (stage == NEM_STAGE_LEARN && !fetch_parent(ctx, sp, t, err))
        return false;
    snprintf(t->stop_file, sizeof t->stop_file, "%s/stop-requested", t->workdir);
    if (stage == NEM_STAGE_LEARN && nem_script_kind(sp->path) == NEM_SCRIPT_EXEC && !fetch_checkpoint(ctx, t, err))
        return false;
    nem_writer_opts_t wo = {ctx->store, &plan->writer, &plan->options, ctx->run_id, stage, t->position, sp,
                            ctx->world->rank, ctx->world->host, t->has_parent ? &t->parent : NULL,
                            ctx->legacy_stamp, t->wt->member, &plan->store, ctx->attempt};
    if (!(t->writer = nem_writer_new(&wo, err)))
        return false;
    nem_script_spec_t spec = {
        .path = sp->path,
        .entry_point = sp->entry_point,
        .stage = name,
        .position = t->position,
        .run_id = ctx->run_id,
        .workdir = t->workdir,
        .args = &plan->stages[stage].args,
        .db_uri = nem_store_public_uri(ctx->store),
        .db_name = nem_store_db_name(ctx->store),
        .password = plan->store.password,
        /* Without TLS, a key password must not reach scripts (it would switch their drivers to TLS). */
        .tls_key_password = nem_store_opts_use_tls(&plan->store) ? plan->store.tls_cert_key_password : NULL,
        .input_model = t->parent_path,
        .input_model_id = t->parent_json,
        .timeout_s = plan->script_timeout_s,
        .rank = ctx->world->rank,
        .group_fd = -1,
        .attempt = ctx->attempt,
        .host = ctx->world->host,
        .stop_file = t->stop_file,
        .checkpoint = t->checkpoint[0] ? t->checkpoint : NULL,
        .python = plan->python,
    };
    const nem_worker_task_t *wt = t->wt;
    char member[48] = "";
    if (wt->group) {
        char why[300];
        spec.group_size = wt->group_size;
        spec.group_rank = wt->member;
        spec.local_rank = wt->local_rank;
        spec.local_size = wt->local_size;
        spec.master_addr = wt->master_addr;
        spec.master_port = wt->master_port;
        spec.shard_json = wt->shard_json;
        spec.shard_collection = sp->data_collection;
        if (!nem_learner_group_attach(wt->group, wt->slot, wt->member, nem_script_kind(sp->path) == NEM_SCRIPT_PLUGIN,
                              &spec.group_fd, why, sizeof why)) {
            bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, "%s", why);
            return false;
        }
        snprintf(member, sizeof member, " member %d of %d", wt->member, wt->group_size);
    }
    t->runner = nem_runner_start(&spec, err);
    if (spec.group_fd >= 0)
        close(spec.group_fd); /* the child has its end */
    if (t->runner)
        NEM_INFO("%s[%zu]%s %s started (%s, pid %d)", name, t->position, member, sp->path,
                 nem_script_kind_name(nem_script_kind(sp->path)), (int)nem_runner_pid(t->runner));
    return t->runner != NULL;
}

static void report_end(task_t *t, const char *name)
{
    t->result.ok = !t->failed;
    t->result.ended_ms = nem_wall_ms();
    t->phase = TASK_DONE;
    t->done = true;
    if (t->failed)
        NEM_ERROR("%s", t->result.error);
    else
        NEM_INFO("%s[%zu] done: %" PRIu64 " documents, %" PRIu64 " models in %.3f s", name, t->position,
                 t->result.documents, t->result.models, (t->result.ended_ms - t->result.started_ms) / 1000.0);
}

static void *rollback_main(void *arg)
{
    rollback_t *rb = arg;
    nem_store_t *store = nem_store_new(rb->opts, &rb->err);
    rb->ok = store && nem_writer_rollback(rb->writer, store, &rb->err);
    nem_store_destroy(store);
    atomic_store(&rb->finished, true);
    return NULL;
}

/* Starts the rollback thread; false (err set) when there can be none. Signals stay with the main thread. */
static bool rollback_start(const nem_worker_ctx_t *ctx, task_t *t, bson_error_t *err)
{
    sigset_t all, old;
    if (!nem_writer_can_rollback(t->writer, err))
        return false;
    t->rollback = bson_malloc0(sizeof *t->rollback);
    t->rollback->opts = &ctx->plan->store;
    t->rollback->writer = t->writer;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = pthread_create(&t->rollback->thread, NULL, rollback_main, t->rollback);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        bson_free(t->rollback);
        t->rollback = NULL;
        bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_EREAD, "cannot start the rollback: %s", strerror(e));
        return false;
    }
    return true;
}

static void rollback_failed(task_t *t, const char *name, const bson_error_t *err)
{
    /* The run record must say that this script's documents are still there. */
    size_t len = strlen(t->result.error);
    NEM_ERROR("%s[%zu]: rollback failed: %s", name, t->position, err->message);
    bson_snprintf(t->result.error + len, sizeof t->result.error - len, "; rollback failed: %s", err->message);
}

/* A pass over a rollback under way: reports the script once its thread is done. wait: join it now. */
static void rollback_poll(nem_stage_t stage, task_t *t, bool wait)
{
    rollback_t *rb = t->rollback;
    const char *name = nem_stage_name(stage);
    if (!wait && !atomic_load(&rb->finished))
        return;
    pthread_join(rb->thread, NULL);
    if (rb->ok)
        t->result.documents = 0, t->result.models = 0;
    else
        rollback_failed(t, name, &rb->err);
    bson_free(rb);
    t->rollback = NULL;
    report_end(t, name);
}

/* The script's process is gone (or never started): its verdict, the last flush, and a rollback when it failed. */
static void finish_task(const nem_worker_ctx_t *ctx, nem_stage_t stage, task_t *t)
{
    bson_error_t err = {0};
    const char *name = nem_stage_name(stage);
    if (t->runner && !nem_runner_finish(t->runner, &err) && !t->failed)
        fail_task(t, &err);
    /* A learner asked to checkpoint and end that ended well but stored no model did not complete its training: it
     * was stopped. Taken as done, its checkpoints would go, the run would end without its model and --resume would
     * have nothing to rerun. In a learner group member 0 stores the model, the others never do. */
    if (!t->failed && t->stop_asked_ms && stage == NEM_STAGE_LEARN && t->writer && nem_writer_models(t->writer) == 0 &&
        (!t->wt->group || t->wt->member == 0)) {
        bson_set_error(&err, NEM_ERROR_RUNNER, NEM_RUNNER_EEXIT,
                       "learn script #%zu '%s': asked to checkpoint and end, it ended without a model: stopped "
                       "(--resume goes on from its newest checkpoint)", t->position,
                       nem_run_plan_script(ctx->plan, stage, t->position)->path);
        fail_task(t, &err);
    }
    if (!t->failed && t->writer && !nem_writer_finish(t->writer, &err))
        fail_task(t, &err);
    group_end(t, !t->failed);
    if (t->failed && t->stop_asked_ms) /* a learner told to checkpoint and end because a stop came */
        t->result.interrupted = true;
    if (t->writer) {
        const nem_script_plan_t *sp = nem_run_plan_script(ctx->plan, stage, t->position);
        t->result.documents = nem_writer_documents(t->writer);
        t->result.models = nem_writer_models(t->writer);
        t->result.n_metrics = nem_writer_last_metrics(t->writer, t->result.metrics, NEM_RESULT_METRICS);
        t->result.consumed = nem_writer_consumed(t->writer, sp ? sp->data_collection : NULL,
                                                 t->result.consumed_digest);
        nem_writer_first_model(t->writer, t->result.model);
    }
    if (t->failed && t->writer) {
        /* Flush first so every document the script got out is known, then remove them all. */
        nem_writer_flush(t->writer, &err);
        /* a learner group is rolled back as one by rank 0, once every member has ended (coordinator/learner-groups.c): members
         * removing the same stamp at once would race each other */
        if (!ctx->plan->writer.keep_partial && !t->wt->group) {
            if (rollback_start(ctx, t, &err)) {
                t->phase = TASK_ROLLBACK;
                return;
            }
            rollback_failed(t, name, &err);
            report_end(t, name);
            return;
        }
        if (ctx->plan->writer.keep_partial)
            NEM_WARN("%s[%zu]: keeping %" PRIu64 " partial documents (--keep-partial)", name, t->position,
                     t->result.documents);
    }
    report_end(t, name);
}

/* A task that could not start ends at once, before the loop. */
static void end_task_now(const nem_worker_ctx_t *ctx, nem_stage_t stage, task_t *t)
{
    finish_task(ctx, stage, t);
    if (t->phase == TASK_ROLLBACK)
        rollback_poll(stage, t, true);
}

static void task_cleanup(task_t *t)
{
    nem_runner_destroy(t->runner);
    nem_writer_destroy(t->writer);
    if (t->has_parent)
        bson_value_destroy(&t->parent);
    if (t->parent_path)
        unlink(t->parent_path);
    bson_free(t->parent_path);
    bson_free(t->parent_json);
    if (t->workdir[0] && !nem_rmtree(t->workdir))
        NEM_WARN("could not remove work directory %s", t->workdir);
}

/* Reports documents written since the last report (live progress while scripts stream). Called on every pass, with
 * 0 too: rank 0 running scripts itself prints progress and refreshes the run's heartbeat from there, so a script
 * that writes nothing for a long time is never silent. */
static void report_progress(const nem_worker_ctx_t *ctx, task_t *t)
{
    uint64_t now = nem_writer_documents(t->writer);
    if (ctx->progress) {
        ctx->progress(now - t->docs_reported, ctx->progress_ud);
        t->docs_reported = now;
    }
}

/* The learner groups of the round: their requests and collectives, rank 0's aborts, and a failed group's members
 * still running stopped (they fail with the group's reason; the member that failed first keeps its own). */
static void groups_pass(const nem_worker_ctx_t *ctx, nem_stage_t stage, task_t *tasks, size_t n)
{
    char why[300];
    int aborted;
    while (ctx->poll_abort && (aborted = ctx->poll_abort(ctx->progress_ud, why, sizeof why)) >= 0)
        for (size_t i = 0; i < n; i++)
            if (tasks[i].wt->group && tasks[i].wt->group_index == aborted)
                nem_learner_group_abort(tasks[i].wt->group, why);
    for (size_t i = 0; i < n; i++)
        if (tasks[i].wt->group && tasks[i].wt->slot == 0)
            nem_learner_group_progress(tasks[i].wt->group);
    for (size_t i = 0; i < n; i++) {
        task_t *t = &tasks[i];
        const char *reason = t->wt->group ? nem_learner_group_failure(t->wt->group) : "";
        if (!reason[0] || t->done || t->failed || t->phase != TASK_RUNNING)
            continue;
        /* a member whose process has ended already ends with its own outcome (a crash keeps its own error) */
        if (t->exited_ms || (t->runner && nem_runner_exited(t->runner)))
            continue;
        bson_error_t err;
        bson_set_error(&err, NEM_ERROR_RUNNER, NEM_RUNNER_EGROUP, "%s[%zu] member %d of %d: stopped: %s",
                       nem_stage_name(stage), t->position, t->wt->member, t->wt->group_size, reason);
        t->result.group_stopped = true;
        fail_task(t, &err);
    }
}

/* A stop is coming (a signal: a time limit's warning, a preemption, an interrupt): a running learner is asked to
 * checkpoint (its stop file appears: nemesyst_checkpoint_requested, db.checkpoint_requested(), NEMESYST_STOP_FILE)
 * and gets --checkpoint-grace seconds to do so and end; true while that time lasts. Other scripts stop at once. */
static bool grace_left(const nem_worker_ctx_t *ctx, nem_stage_t stage, task_t *t)
{
    int grace_s = ctx->plan->checkpoint_grace_s;
    if (stage != NEM_STAGE_LEARN || grace_s <= 0)
        return false;
    int64_t now = nem_now_ms();
    if (!t->stop_asked_ms) {
        int fd = open(t->stop_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
        t->stop_asked_ms = now;
        NEM_INFO("learn[%zu]: a stop is coming: asked to checkpoint and end (up to %d s)", t->position, grace_s);
    }
    return now - t->stop_asked_ms < (int64_t)grace_s * 1000;
}

/* One pass of poll() over every live script. A script whose output has closed is not waited for here: it drains
 * until its process exits, so one slow exit never stalls the others or a signal. */
static void pump_ready(const nem_worker_ctx_t *ctx, nem_stage_t stage, task_t *tasks, size_t n, nem_result_cb done,
                       void *ud)
{
    /* Up to 3 descriptors per script, however large --process-pool is, and its group socket. */
    struct pollfd *pfds = bson_malloc0((n * 4 + 1) * sizeof *pfds);
    size_t *owner = bson_malloc0((n * 4 + 1) * sizeof *owner), nfds = 0;
    int timeout = 1000;
    for (size_t i = 0; i < n; i++) {
        nem_learner_group_t *g = tasks[i].wt->group;
        if (!g || tasks[i].wt->slot != 0 || nem_learner_group_over(g))
            continue;
        /* a collective in flight is tested often; rank 0's abort is looked for a few times a second */
        timeout = timeout < (nem_learner_group_busy(g) ? 1 : 50) ? timeout : (nem_learner_group_busy(g) ? 1 : 50);
        size_t k = nem_learner_group_fds(g, pfds + nfds);
        for (size_t j = 0; j < k; j++)
            owner[nfds++] = SIZE_MAX;
    }
    for (size_t i = 0; i < n; i++) {
        int fds[3];
        if (tasks[i].done)
            continue;
        if (tasks[i].draining || tasks[i].exited_ms || tasks[i].phase != TASK_RUNNING)
            timeout = timeout < DRAIN_POLL_MS ? timeout : DRAIN_POLL_MS;
        if (tasks[i].phase != TASK_RUNNING)
            continue;
        size_t k = tasks[i].draining ? 0 : nem_runner_fds(tasks[i].runner, fds);
        for (size_t j = 0; j < k && j < 3; j++) {
            pfds[nfds] = (struct pollfd){.fd = fds[j], .events = POLLIN};
            owner[nfds++] = i;
        }
        int left = nem_runner_ms_left(tasks[i].runner);
        if (left >= 0 && left < timeout)
            timeout = left;
    }
    int r = poll(pfds, nfds, timeout);
    if (r < 0 && errno != EINTR)
        NEM_ERROR("poll: %s", strerror(errno));
    groups_pass(ctx, stage, tasks, n);
    for (size_t i = 0; i < n; i++) {
        task_t *t = &tasks[i];
        bool ready = false, eof = false;
        bson_error_t err = {0};
        if (t->phase == TASK_ROLLBACK) {
            rollback_poll(stage, t, false);
            if (t->done)
                done(&t->result, ud);
            continue;
        }
        if (t->phase == TASK_STOPPING) {
            if (nem_runner_stopped(t->runner)) {
                finish_task(ctx, stage, t);
                if (t->done)
                    done(&t->result, ud);
            }
            continue;
        }
        if (t->done)
            continue;
        for (size_t j = 0; j < nfds; j++)
            ready |= owner[j] == i && pfds[j].revents;
        if (ready && !nem_runner_pump(t->runner, nem_writer_item, t->writer, &eof, &err))
            fail_task(t, &err);
        if (eof)
            t->draining = true;
        /* The script exited but something it left behind (a background process) holds its pipes open: read what
         * is left for a moment, then end it; finish() kills the rest of its process group. */
        if (!t->draining && !t->failed && !t->exited_ms && nem_runner_exited(t->runner))
            t->exited_ms = nem_now_ms();
        if (t->exited_ms && nem_now_ms() - t->exited_ms >= EXITED_GRACE_MS)
            t->draining = true;
        if (nem_signal_pending() && !t->failed && !t->draining && !grace_left(ctx, stage, t)) {
            bson_set_error(&err, NEM_ERROR_RUNNER, NEM_RUNNER_ESIGNAL,
                           "%s script #%zu '%s': interrupted by signal %d", nem_stage_name(stage), t->position,
                           nem_run_plan_script(ctx->plan, stage, t->position)->path, nem_signal_pending());
            fail_task(t, &err);
            t->result.interrupted = true;
        }
        report_progress(ctx, t);
        /* A failed or timed-out script is stopped without waiting for it here (finish() reports a timeout
         * itself); a draining script ends once its process is gone. */
        if (t->failed || nem_runner_ms_left(t->runner) == 0) {
            nem_runner_stop(t->runner);
            t->phase = TASK_STOPPING;
        } else if (t->draining && nem_runner_exited(t->runner)) {
            finish_task(ctx, stage, t);
            if (t->done)
                done(&t->result, ud);
        }
    }
    bson_free(pfds);
    bson_free(owner);
}

void nem_worker_run(const nem_worker_ctx_t *ctx, nem_stage_t stage, const nem_worker_task_t *wtasks, size_t n,
                    nem_result_cb done, void *ud)
{
    task_t *tasks = bson_malloc0((n + 1) * sizeof *tasks);
    for (size_t i = 0; i < n; i++) {
        task_t *t = &tasks[i];
        bson_error_t err = {0};
        t->wt = &wtasks[i];
        t->position = wtasks[i].position;
        t->result.stage = stage;
        t->result.position = wtasks[i].position;
        t->result.member = wtasks[i].member;
        t->result.group_size = wtasks[i].group_size;
        t->result.consumed = -1;
        t->result.rank = ctx->world->rank;
        bson_strncpy(t->result.host, ctx->world->host, sizeof t->result.host);
        t->result.started_ms = nem_wall_ms();
        if (!start_task(ctx, stage, t, &err)) {
            fail_task(t, &err);
            end_task_now(ctx, stage, t);
            done(&t->result, ud);
        }
    }
    for (;;) {
        size_t remaining = 0;
        for (size_t i = 0; i < n; i++)
            remaining += !tasks[i].done || (tasks[i].wt->group && !nem_learner_group_over(tasks[i].wt->group));
        if (!remaining)
            break;
        pump_ready(ctx, stage, tasks, n, done, ud);
    }
    for (size_t i = 0; i < n; i++)
        task_cleanup(&tasks[i]);
    bson_free(tasks);
}
