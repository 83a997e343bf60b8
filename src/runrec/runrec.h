/* The run record: one document per run in NEM_RUNS_COLLECTION of --db-name, the run's identity and history. This
 * module owns its schema, and all reading and writing of it; rank 0's coordinator decides when
 * (src/stage/coordinator/run-record.c), the listing prints it (runlist.h), the registry reads it.
 *
 * Schema (NEM_RUNREC_SCHEMA; a record without "schema" is of version 1, the same fields):
 *   _id           the run id: UTC start time and a unique part, "20261206T231700Z-0a1b2c3d4e5f6a7b"
 *   schema        NEM_RUNREC_SCHEMA
 *   stamp_format  the provenance stamp format of its documents (provenance.h; absent: the first)
 *   name          --run-name: what people call the run (1-128 bytes, no control characters), or null
 *   tags          --tag KEY=VALUE, each: {KEY: VALUE}, both strings (config/config.h nem_tag_split: a KEY has no
 *                 '.' and does not start with '$'); {} when none. Absent in records of versions before them: read
 *                 as null and {}. Set when the run starts; --resume keeps them (a different one given is refused)
 *   sweep         --sweep FILE --sweep-index N (config/sweep.c): {name: --sweep-name or FILE's name without its
 *                 extension, index: N (from 0), overrides: {OPTION: VALUE} the set applied above every other
 *                 source, typed as the options snapshot types them, lists as arrays}; null for a run of no sweep
 *                 (absent in records of earlier versions: read as null). Set when the run starts; --resume keeps
 *                 it (a different set given is refused); --sweep-resume finds a set's unfinished run by it
 *   status        running | succeeded | failed | interrupted (util/status.h)
 *   started, ended, resumed, heartbeat   dates; heartbeat_s: how often rank 0 refreshes heartbeat
 *   version       the nemesyst that started it; ranks, hosts (rank order); user: who started it (rank 0's user
 *                 name, or "uid N"; absent in runs of earlier versions)
 *   options, resume_options   the option snapshot, no secrets (large values by reference, provenance.h)
 *   scripts       {"clean-0": {stage, position, path, status, started, ended, documents, models, rank, host,
 *                 error, stamp, metrics, consumed, model, group...}} (stage/message.h: nem_task_result_to_bson)
 *   stamps        [STAMP, ...]: the stamp of each script in scripts, at the top so an index (stamps_1, made where
 *                 records are written: provenance.h nem_provenance_index_runs) finds the run that wrote a stamped
 *                 document without reading every record; kept in sync by nem_runrec_scripts ($addToSet with each
 *                 "scripts.KEY" entry it sets) and by a resume (the previous scripts' stamps). [] in a new record;
 *                 absent in records of earlier versions, which readers still look through (registry/query.c)
 *   attempts      [{n, job, restart, host, ranks, started, ended, status, openlineage}]: one per job that ran it
 *                 (openlineage: with --openlineage, {sent, dropped} of that attempt)
 *   owner         rank 0's process (util/procinfo.h), so a lost run is told from a live one
 *   openlineage   with --openlineage: {url (no user, password or query), run_uuid, sent, dropped}, the events the
 *                 latest attempt delivered and gave up (openlineage/openlineage.h; stage/coordinator/lineage-events.c)
 *   error         why it did not succeed, or null */
#ifndef NEM_RUNREC_H
#define NEM_RUNREC_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "util/status.h"

#define NEM_RUNS_COLLECTION "nemesyst_runs"
#define NEM_RUNREC_SCHEMA 1

/* Creates a new run record (run_id_out receives its id), or with resume_id reopens that run: previous receives its
 * per-script entries ({"clean-0": {...status...}}) so only the unfinished scripts are run again. run_options: the
 * option snapshot (no secrets), stored as "options" (or "resume_options"); heartbeat_s: the run's --heartbeat.
 * name, tags and sweep (NULL or empty: none): stored as "name", "tags" and "sweep" in a new record; with resume_id
 * each given must be the record's (NEM_PROVENANCE_ELABEL, exit status 2, otherwise, before the record changes).
 * *legacy: the run was recorded before stamp format 2 (only a resumed run can be): its documents keep the first
 * stamp format. */
bool nem_runrec_begin(nem_store_t *store, const bson_t *run_options, const char *name, const bson_t *tags,
                      const bson_t *sweep, int heartbeat_s, const bson_t *hosts, int ranks, const char *resume_id, char run_id_out[64],
                      bson_t *previous, bool *legacy, bson_error_t *err);
/* Sets fields of the run record in one update ($set): several per-script entries at once ({"scripts.clean-0": {...},
 * ...}), the heartbeat, the end. The stamps of the per-script entries set go into "stamps" in the same update. */
bool nem_runrec_scripts(nem_store_t *store, const char *run_id, const bson_t *fields, bson_error_t *err);
/* Every run record holds "heartbeat" (a date rank 0 refreshes every --heartbeat seconds while the run lives),
 * "heartbeat_s" and the process of its rank 0 (util/procinfo.h). A run whose status is "running" but whose rank 0
 * ran on this host and has ended, or whose heartbeat is older than NEM_RUNREC_LOST_FACTOR intervals, is lost (its
 * rank 0 died without closing it): --list-runs says so, and --resume takes it over; a live one is refused. */
#define NEM_RUNREC_LOST_FACTOR 3
bool nem_runrec_heartbeat(nem_store_t *store, const char *run_id, bson_error_t *err);
/* True for a lost run; age_ms (may be NULL) receives the age of its heartbeat. */
bool nem_runrec_is_lost(const bson_t *run, int64_t now_ms, int64_t *age_ms);
/* --list-runs: prints the runs of the store's database, newest first, one line each (lost ones as "lost"), through
 * the one run listing (runlist.h, where it is defined); *lost counts them. */
bool nem_runrec_list(nem_store_t *store, FILE *out, size_t *lost, bson_error_t *err);
/* status: succeeded, failed or interrupted (a signal stopped the run; --resume finishes it). */
bool nem_runrec_end(nem_store_t *store, const char *run_id, nem_status_t status, const char *error,
                    bson_error_t *err);

/* The record of run id into *run (initialised; empty when there is none). */
bool nem_runrec_get(nem_store_t *store, const char *id, bson_t *run, bson_error_t *err);
/* Recorded as running (alive or lost). */
bool nem_runrec_is_running(const bson_t *run);
/* Its heartbeat interval in seconds (30 when it names none). */
int64_t nem_runrec_heartbeat_s(const bson_t *run);
/* A run recorded as running whose rank 0 is known to have ended: closed for it as failed with why, only while it
 * still says running (so a record another process changed meanwhile is judged again). */
bool nem_runrec_close_lost(nem_store_t *store, const char *id, const char *why, bson_error_t *err);
/* Names this process as the run's rank 0 (util/procinfo.h), with its launcher when there are other ranks. */
bool nem_runrec_set_owner(nem_store_t *store, const char *id, bool with_launcher, bson_error_t *err);
/* Appends this job's attempt {n, job, restart (Slurm's, when there are), host, ranks, started}; *attempt
 * receives its n (1, then one more per resume). */
bool nem_runrec_attempt_begin(nem_store_t *store, const char *id, const char *host, int ranks, int64_t *attempt,
                              bson_error_t *err);
/* Closes attempt n with how it ended. */
bool nem_runrec_attempt_end(nem_store_t *store, const char *id, int64_t attempt, nem_status_t status,
                            bson_error_t *err);
/* The newest run not succeeded whose attempts name Slurm job `job` (id_out empty when none). */
bool nem_runrec_of_job(nem_store_t *store, const char *job, char *id_out, size_t len, bson_error_t *err);
/* --sweep-resume: the newest run of sweep {name, index, overrides} (sweep.name and sweep.index as given) when it did
 * not succeed (id_out empty when there is none, or the newest succeeded). *different: that run's overrides are not
 * these (the sweep file changed since): id_out names it, and it is not to be resumed. */
bool nem_runrec_of_sweep(nem_store_t *store, const bson_t *sweep, char *id_out, size_t len, bool *different,
                         bson_error_t *err);

#endif
