/* The run record's life on rank 0: opened (or reopened for --resume) before the first round, every result
 * recorded as it arrives (in one update per round or per second), a heartbeat while the run lives, closed with the
 * run's status (coordinator-private.h). */
#include <mpi.h>
#include <string.h>

#include "log/log.h"
#include "provenance/provenance.h"
#include "stage/coordinator-private.h"
#include "util/exitcodes.h"
#include "util/signals.h"

/* Rank 0: refreshes the run record's nem_coord_heartbeat every --nem_coord_heartbeat seconds, so a run whose rank 0 died can be told
 * from a live one (nem_runrec_is_lost). Called from every wait of rank 0. */
void nem_coord_heartbeat(coord_t *c)
{
    int64_t now = nem_wall_ms();
    bson_error_t err;
    if (c->world->rank != 0 || !c->store || !c->run_id[0] ||
        now - c->beat_ms < (int64_t)c->plan->heartbeat_s * 1000)
        return;
    c->beat_ms = now;
    if (!nem_runrec_heartbeat(c->store, c->run_id, &err) && !c->beat_failed) {
        c->beat_failed = true;
        NEM_WARN("run record %s: nem_coord_heartbeat: %s", c->run_id, err.message);
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
}

void nem_coord_record(const nem_task_result_t *r, void *ud)
{
    coord_t *c = ud;
    if (r->group_size > 1 && r->member >= 0)
        nem_coord_group_result(c, r); /* the group's entry once every member has reported */
    else
        nem_coord_record_entry(c, r, NULL);
}

/* Rank 0: store, run record. Returns an exit status or -1 to go on. */
int nem_coord_open_run(coord_t *c)
{
    bson_error_t err = {0};
    char *hosts = NULL;
    bson_t harr = BSON_INITIALIZER;

    if (c->world->rank == 0)
        hosts = bson_malloc0((size_t)c->world->size * NEM_HOSTLEN);
    nem_mpi_gather(c->world->host, NEM_HOSTLEN, MPI_CHAR, hosts, 0);
    if (c->world->rank != 0)
        return -1;
    c->hosts = hosts;
    c->aborts_sent = bson_malloc0(((size_t)c->world->size + 1) * sizeof *c->aborts_sent);
    for (int r = 0; r < c->world->size; r++) {
        char key[16];
        const char *k;
        bson_uint32_to_string((uint32_t)r, &k, key, sizeof key);
        hosts[r * NEM_HOSTLEN + NEM_HOSTLEN - 1] = '\0';
        BSON_APPEND_UTF8(&harr, k, hosts + r * NEM_HOSTLEN);
    }
    int status = -1;
    if (!(c->store = nem_store_new(&c->plan->store, &err)) || !nem_store_ping(c->store, &err)) {
        NEM_ERROR("%s", err.message);
        status = NEM_EXIT_SERVER;
    } else if (!nem_runrec_begin(c->store, &c->plan->options, c->plan->heartbeat_s, &harr, c->world->size,
                                 c->plan->resume_id, c->run_id, &c->previous, &c->legacy, &err)) {
        NEM_ERROR("run record: %s", err.message);
        /* a refused --resume is bad input (2); a write the driver or server failed is the server's (3) */
        status = err.domain == NEM_ERROR_PROVENANCE ? nem_exit_status(&err) : NEM_EXIT_SERVER;
    } else if (!nem_coord_same_scripts(c, &err)) {
        NEM_ERROR("%s", err.message);
        status = NEM_EXIT_USAGE;
    } else {
        NEM_INFO("run %s%s", c->run_id, c->plan->resume_id ? " (resumed)" : "");
    }
    bson_destroy(&harr);
    return status;
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
    else
        snprintf(why, sizeof why, "%zu script(s) failed", failed);
    bool ok = !failed && !sig;
    nem_coord_flush(c);
    if (!nem_runrec_end(c->store, c->run_id, ok ? "succeeded" : sig ? "interrupted" : "failed", ok ? NULL : why,
                        &err)) {
        NEM_ERROR("run record %s: %s", c->run_id, err.message);
        c->record_failed = true;
    }
    nem_summary_print(c->summary, stdout);
    fflush(stdout);
    const char *json = c->plan->summary_json;
    if (json && !nem_summary_write_json(c->summary, ok ? "succeeded" : sig ? "interrupted" : "failed", json, &err)) {
        NEM_ERROR("%s", err.message);
        return NEM_EXIT_FAILURE;
    }
    if (c->record_failed) {
        /* The server went away (or refused): what the run wrote and what its record says may differ. The record
         * still says running, so once its nem_coord_heartbeat expires it is a lost run, and --resume then removes what the
         * unfinished scripts wrote and reruns them, exactly once. */
        NEM_ERROR("run %s: its run record could not be written (see above: the server stopped answering or "
                  "refused): once it works again, --resume %s finishes this run exactly once (after %" PRId64
                  " s, when its nem_coord_heartbeat has expired)",
                  c->run_id, c->run_id, (int64_t)NEM_RUNREC_LOST_FACTOR * c->plan->heartbeat_s);
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
bool nem_coord_connect_workers(coord_t *c)
{
    int ok = 1, all = 0;
    if (c->world->rank != 0) {
        bson_error_t err = {0};
        if (!(c->store = nem_store_new(&c->plan->store, &err)) || !nem_store_ping(c->store, &err)) {
            NEM_ERROR("rank %d on %s cannot use the database: %s", c->world->rank, c->world->host, err.message);
            ok = 0;
        }
    }
    nem_mpi_allreduce(&ok, &all, 1, MPI_INT, MPI_MIN);
    if (!all && c->world->rank == 0) {
        bson_error_t err;
        NEM_ERROR("run %s: a worker rank cannot use the database (see its error above)", c->run_id);
        if (!nem_runrec_end(c->store, c->run_id, "failed", "a worker rank could not connect to the database", &err))
            NEM_ERROR("run record %s: %s", c->run_id, err.message);
    }
    return all;
}

/* Live progress: rank 0 counts documents as they are written, not only when scripts end. */
void nem_coord_progress_local(uint64_t documents, void *ud)
{
    coord_t *c = ud;
    nem_summary_live(c->summary, documents);
    nem_summary_progress(c->summary, NEM_PROGRESS_MS);
    nem_coord_heartbeat(c);
}

/* --list-runs: rank 0 prints the run records; 1 when one of them is lost. */
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
