/* The run record's life on rank 0: opened (or reopened for --resume) before the first round, every result
 * recorded as it arrives (in one update per round or per second), a heartbeat while the run lives, closed with the
 * run's status (coordinator.h). */
#include <mpi.h>
#include <string.h>
#include <time.h>

#include "log/log.h"
#include "provenance/provenance.h"
#include "runrec/runrec.h"
#include "stage/coordinator/coordinator-private.h"
#include "util/exitcodes.h"
#include "util/procinfo.h"
#include "util/signals.h"
#include "util/status.h"

/* Rank 0: refreshes the run record's heartbeat every --heartbeat seconds, so a run whose rank 0 died can be told
 * from a live one (nem_runrec_is_lost). Called from every wait of rank 0. */
void nem_coord_heartbeat(coord_t *c)
{
    int64_t now = nem_wall_ms();
    bson_error_t err;
    if (!c->store || !c->run_id[0] ||
        now - c->beat_ms < (int64_t)c->plan->heartbeat_s * 1000)
        return;
    c->beat_ms = now;
    if (!nem_runrec_heartbeat(c->store, c->run_id, &err) && !c->beat_failed) {
        c->beat_failed = true;
        NEM_WARN("run record %s: heartbeat: %s", c->run_id, err.message);
    }
}

/* Writes the pending run-record entries in one update: one round trip per round (or per second in long rounds),
 * not one per script, keeps the coordinator off the critical path of short scripts. */
void nem_coord_flush(coord_t *c)
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
void nem_coord_record_entry(coord_t *c, const nem_task_result_t *r, const bson_t *extra)
{
    bson_t entry;
    char key[64], path[80];
    const nem_script_plan_t *sp = nem_run_plan_script(c->plan, r->stage, r->position);
    nem_task_result_to_bson(r, sp ? sp->path : NULL, &entry);
    if (!c->legacy) {
        bson_oid_t stamp;
        nem_stamp_id(c->run_id, r->stage, r->position, &stamp);
        BSON_APPEND_OID(&entry, "stamp", &stamp);
    }
    if (extra)
        bson_concat(&entry, extra);
    nem_script_key(r->stage, r->position, key, sizeof key);
    snprintf(path, sizeof path, "scripts.%s", key);
    BSON_APPEND_DOCUMENT(&c->pending, path, &entry);
    bson_destroy(&entry);
    if (nem_wall_ms() - c->flushed_ms >= NEM_RECORD_FLUSH_MS)
        nem_coord_flush(c);
    nem_summary_add(c->summary, r);
    nem_summary_progress(c->summary, NEM_PROGRESS_MS);
    nem_coord_ol_script_end(c, r, extra);
}


/* --resume of a run still recorded as running: refused while it may live, with how long to wait; taken over at
 * once when its rank 0 ran on this host and has ended. What nem_runrec_begin would refuse by the heartbeat alone
 * is decided here; a run it already calls lost, or one not running, is left to it. Returns an exit status, or -1
 * to go on. */
static int check_resume(coord_t *c)
{
    const char *id = c->resume_id;
    bson_t run;
    bson_error_t err = {0};
    int status = -1;
    if (!nem_runrec_get(c->store, id, &run, &err)) {
        NEM_ERROR("run record: %s", err.message);
        status = NEM_EXIT_SERVER;
        goto out;
    }
    int64_t age = 0, now = nem_wall_ms();
    if (bson_empty(&run) || !nem_runrec_is_running(&run))
        goto out;
    nem_proc_t owner;
    nem_proc_state_t state = nem_proc_owner_state(&run, &owner);
    bool lost = nem_runrec_is_lost(&run, now, &age); /* by its heartbeat, or its owner gone */
    if (lost && state != NEM_PROC_GONE)
        goto out; /* nem_runrec_begin takes it over, saying so */
    if (state == NEM_PROC_GONE) {
        /* Closed for it as failed, then reopened by nem_runrec_begin; only while it still says running, so a
         * record another process changed meanwhile is judged again there. */
        char why[512];
        snprintf(why, sizeof why, "its rank 0, pid %" PRId64 " on host %s, ended without closing the run",
                 owner.pid, owner.host);
        if (nem_runrec_close_lost(c->store, id, why, &err)) {
            NEM_WARN("--resume %s: that run was lost (%s; last heartbeat %.0f s ago): resuming it", id, why,
                     age / 1000.0);
        } else {
            NEM_ERROR("run record: %s", err.message);
            status = NEM_EXIT_SERVER;
        }
        goto out;
    }
    if (state == NEM_PROC_ALIVE) {
        char launcher[64] = "";
        if (owner.launcher_pid > 0) /* rank 0 may have ended while its job is still being wound down */
            snprintf(launcher, sizeof launcher, ", its job's launcher pid %" PRId64, owner.launcher_pid);
        bson_set_error(&err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_ELIVE,
                       "--resume %s: that run is still running (its rank 0 is pid %" PRId64 "%s on this host, %s; "
                       "last heartbeat %.0f s ago): resume it once it has ended",
                       id, owner.pid, launcher, owner.host, age / 1000.0);
    } else {
        /* Not a process of this host (or this boot, or this pid namespace), or a record naming none: only its
         * heartbeat can tell, so say when it will. */
        int64_t left_ms = (int64_t)NEM_RUNREC_LOST_FACTOR * nem_runrec_heartbeat_s(&run) * 1000 - age;
        int64_t left_s = left_ms > 0 ? (left_ms + 999) / 1000 : 1;
        char where[512], hint[512];
        where[0] = '\0';
        if (owner.host[0] && strcmp(owner.host, c->world->host) == 0) /* another boot or pid namespace */
            snprintf(where, sizeof where, " on host %s, from another boot or pid namespace", owner.host);
        else if (owner.host[0])
            snprintf(where, sizeof where, " on host %s", owner.host);
        if (owner.host[0] && strcmp(owner.host, c->world->host) != 0)
            snprintf(hint, sizeof hint, ", or at once when resumed on %s once its rank 0 there has ended", owner.host);
        else
            snprintf(hint, sizeof hint, " (see --list-runs)");
        bson_set_error(&err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_ELIVE,
                       "--resume %s: run %s may still be running%s (heartbeat %.0f s ago); it counts as lost after "
                       "%" PRId64 " more seconds%s",
                       id, id, where, age / 1000.0, left_s, hint);
    }
    NEM_ERROR("run record: %s", err.message);
    status = nem_exit_status(&err);
out:
    bson_destroy(&run);
    return status;
}

/* Closes this job's entry of attempts with how it ended. */
static void close_attempt(coord_t *c, nem_status_t status)
{
    bson_error_t err;
    if (c->attempt >= 1 && !nem_runrec_attempt_end(c->store, c->run_id, c->attempt, status, &err))
        NEM_WARN("run record %s: attempt %" PRId64 " not closed: %s", c->run_id, c->attempt, err.message);
}

/* --requeue in a requeued Slurm job (SLURM_RESTART_COUNT above 0): the run this job started (the newest whose
 * attempts name its SLURM_JOB_ID) is resumed, with no run id to copy. None, or one that succeeded: a new run. */
static bool requeued_run(coord_t *c, bson_error_t *err)
{
    const char *job = getenv("SLURM_JOB_ID"), *restart = getenv("SLURM_RESTART_COUNT");
    c->resume_id = c->plan->resume_id;
    if (c->resume_id || !c->plan->requeue || !job || !*job || !restart || strtoll(restart, NULL, 10) < 1)
        return true;
    bool ok = nem_runrec_of_job(c->store, job, c->requeued_id, sizeof c->requeued_id, err);
    if (ok && c->requeued_id[0]) {
        c->resume_id = c->requeued_id;
        NEM_INFO("Slurm job %s, restart %s: resuming its run %s (--requeue)", job, restart, c->resume_id);
    } else if (ok) {
        NEM_INFO("Slurm job %s, restart %s: no unfinished run of this job to resume: a new run", job, restart);
    }
    return ok;
}

/* --sweep-resume (a sweep's task run again: resubmitted, or retried by slurm/nemesyst-sweep.sbatch): the newest run
 * of this sweep name and index is resumed when it did not succeed and has the same overrides. None, one that
 * succeeded, or one of other overrides (the file changed): a new run. */
static bool sweep_run(coord_t *c, bson_error_t *err)
{
    bson_iter_t it;
    bool different = false;
    if (c->resume_id || !c->plan->sweep_resume || bson_empty(&c->plan->sweep))
        return true;
    const char *name = bson_iter_init_find(&it, &c->plan->sweep, "name") ? bson_iter_utf8(&it, NULL) : "?";
    int64_t index = bson_iter_init_find(&it, &c->plan->sweep, "index") ? bson_iter_as_int64(&it) : -1;
    if (!nem_runrec_of_sweep(c->store, &c->plan->sweep, c->requeued_id, sizeof c->requeued_id, &different, err))
        return false;
    if (c->requeued_id[0] && !different) {
        c->resume_id = c->requeued_id;
        NEM_INFO("sweep %s, index %" PRId64 ": resuming its unfinished run %s (--sweep-resume)", name, index,
                 c->resume_id);
    } else if (c->requeued_id[0]) {
        NEM_WARN("sweep %s, index %" PRId64 ": its newest run %s did not succeed, but with other overrides (the "
                 "sweep file changed): a new run", name, index, c->requeued_id);
        c->requeued_id[0] = '\0';
    } else {
        NEM_INFO("sweep %s, index %" PRId64 ": no unfinished run to resume (--sweep-resume): a new run", name, index);
    }
    return true;
}

/* The store and the run record: the hello every rank needs (its status: an exit status, or -1 to go on). */
void nem_coord_open_run(coord_t *c, nem_msg_hello_t *hello)
{
    bson_error_t err = {0};
    bson_t harr = BSON_INITIALIZER;
    for (int r = 0; r < c->world->size; r++) {
        char key[16];
        const char *k;
        bson_uint32_to_string((uint32_t)r, &k, key, sizeof key);
        BSON_APPEND_UTF8(&harr, k, nem_pack_host(&c->pack, r));
    }
    int status = -1;
    if (!(c->store = nem_store_new(&c->plan->store, &err)) || !nem_store_ping(c->store, &err)) {
        NEM_ERROR("%s", err.message);
        status = NEM_EXIT_SERVER;
    } else if (!requeued_run(c, &err) || !sweep_run(c, &err)) {
        NEM_ERROR("run record: %s", err.message);
        status = NEM_EXIT_SERVER;
    } else if (c->resume_id && (status = check_resume(c)) >= 0) {
        /* refused, and said why */
    } else if (!nem_runrec_begin(c->store, &c->plan->options, c->plan->run_name, &c->plan->tags, &c->plan->sweep,
                                 c->plan->heartbeat_s, &harr, c->world->size,
                                 c->resume_id, c->run_id, &c->previous, &c->legacy, &err)) {
        NEM_ERROR("run record: %s", err.message);
        /* a refused --resume is bad input (2); a write the driver or server failed is the server's (3) */
        status = err.domain == NEM_ERROR_PROVENANCE ? nem_exit_status(&err) : NEM_EXIT_SERVER;
    } else if (!nem_runrec_set_owner(c->store, c->run_id, c->world->size > 1, &err) ||
               !nem_runrec_attempt_begin(c->store, c->run_id, c->world->host, c->world->size, &c->attempt, &err)) {
        NEM_ERROR("run record %s: %s", c->run_id, err.message);
        status = NEM_EXIT_SERVER;
    } else if (!nem_coord_same_scripts(c, &err) || !nem_coord_same_options(c, &err)) {
        bson_error_t e;
        NEM_ERROR("%s", err.message);
        status = NEM_EXIT_USAGE;
        /* the refused resume reopened the record: close it again, so the right --resume may follow at once */
        if (!nem_runrec_end(c->store, c->run_id, NEM_STATUS_FAILED, err.message, &e))
            NEM_ERROR("run record %s: %s", c->run_id, e.message);
    } else {
        NEM_INFO("run %s%s", c->run_id, c->resume_id ? " (resumed)" : "");
        nem_coord_ol_run_start(c);
    }
    bson_destroy(&harr);
    memset(hello, 0, sizeof *hello);
    hello->status = status;
    bson_strncpy(hello->run_id, c->run_id, sizeof hello->run_id);
    hello->attempt = c->attempt;
    hello->resumed = c->resume_id != NULL;
    hello->legacy = c->legacy;
}

int nem_coord_close_run(coord_t *c)
{
    bson_error_t err;
    size_t failed = nem_summary_failed(c->summary);
    char why[256];
    int sig = nem_signal_pending();
    const char *job = getenv("SLURM_JOB_ID"), *name = sig ? nem_signal_name(sig) : NULL;
    char what[32];
    snprintf(what, sizeof what, "%s%ssignal %d%s", name ? name : "", name ? " (" : "", sig, name ? ")" : "");
    if (sig && job && *job) /* under Slurm a SIGTERM is how a time limit, scancel or preemption ends a job */
        snprintf(why, sizeof why, "interrupted by %s in Slurm job %.32s (its time limit, scancel or preemption); "
                 "--resume %s finishes it", what, job, c->run_id);
    else if (sig)
        snprintf(why, sizeof why, "interrupted by %s; --resume %s finishes it", what, c->run_id);
    else if (failed)
        snprintf(why, sizeof why, "%zu script(s) failed", failed);
    else
        snprintf(why, sizeof why, "part of the run record could not be written; --resume %s finishes it", c->run_id);
    /* A run whose record missed a write is not "succeeded": --resume reruns what the record does not show done. */
    bool ok = !failed && !sig && !c->record_failed;
    nem_coord_flush(c);
    ok = ok && !c->record_failed;
    nem_status_t status = ok ? NEM_STATUS_SUCCEEDED : sig ? NEM_STATUS_INTERRUPTED : NEM_STATUS_FAILED;
    nem_coord_ol_run_end(c, status, why);
    close_attempt(c, status);
    bool closed = nem_runrec_end(c->store, c->run_id, status,
                                 ok ? NULL : why, &err);
    if (!closed) {
        NEM_ERROR("run record %s: %s", c->run_id, err.message);
        c->record_failed = true;
    }
    nem_summary_print(c->summary, stdout);
    fflush(stdout);
    const char *json = c->plan->summary_json;
    if (json && !nem_summary_write_json(c->summary, status, json, &err)) {
        NEM_ERROR("%s", err.message);
        return NEM_EXIT_FAILURE;
    }
    if (c->record_failed) {
        /* The server went away (or refused): what the run wrote and what its record says may differ. --resume
         * removes what the unfinished scripts wrote and reruns them, exactly once. When the record could be closed,
         * at once; when not, it still says running: a --resume on this host takes it over as soon as this process
         * has ended (the record names it), one elsewhere once its heartbeat has expired. */
        if (closed)
            NEM_ERROR("run %s: part of its run record could not be written (see above); it is recorded as %s: "
                      "--resume %s finishes this run exactly once",
                      c->run_id, nem_status_name(status), c->run_id);
        else
            NEM_ERROR("run %s: its run record could not be written (see above: the server stopped answering or "
                      "refused): once it works again, --resume %s finishes this run exactly once (at once on this "
                      "host, %s, when this run has ended; elsewhere after %" PRId64 " s, when its heartbeat has "
                      "expired)",
                      c->run_id, c->run_id, c->world->host,
                      (int64_t)NEM_RUNREC_LOST_FACTOR * c->plan->heartbeat_s);
        return sig ? (sig == 2 ? NEM_EXIT_SIGINT : NEM_EXIT_SIGTERM) : NEM_EXIT_SERVER;
    }
    if (sig)
        return sig == 2 ? NEM_EXIT_SIGINT : NEM_EXIT_SIGTERM;
    if (failed)
        return NEM_EXIT_SCRIPTS;
    return NEM_EXIT_OK;
}

void nem_coord_workers_failed(coord_t *c)
{
    bson_error_t err;
    NEM_ERROR("run %s: a worker rank cannot use the database (see its error above)", c->run_id);
    nem_coord_ol_run_end(c, NEM_STATUS_FAILED, "a worker rank could not connect to the database");
    if (!nem_runrec_end(c->store, c->run_id, NEM_STATUS_FAILED, "a worker rank could not connect to the database",
                        &err))
        NEM_ERROR("run record %s: %s", c->run_id, err.message);
}

/* Live progress: rank 0 counts documents as they are written, not only when scripts end. */
void nem_coord_progress_local(uint64_t documents, void *ud)
{
    coord_t *c = ud;
    nem_summary_live(c->summary, documents);
    nem_summary_progress(c->summary, NEM_PROGRESS_MS);
    nem_coord_heartbeat(c);
}

/* --list-runs: rank 0 prints the run records, newest first; 1 when one of them is lost. */
int nem_coord_list_runs(const nem_world_t *world, const nem_run_plan_t *plan)
{
    int status = NEM_EXIT_OK;
    if (world->rank == 0) {
        bson_error_t err = {0};
        nem_store_t *store;
        size_t lost = 0;
        if (!(store = nem_store_new(&plan->store, &err)) || !nem_store_ping(store, &err)) {
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
    nem_mpi_bcast(&status, 1, MPI_INT, 0);
    return status;
}
