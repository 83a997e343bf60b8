/* Live OpenLineage events (https://openlineage.io/spec, RunEvent of spec 2-0-2): rank 0's coordinator builds them
 * (stage/coordinator/lineage-events.c) and hands them to an emitter, which delivers them from a thread of its own
 * to an http:// or https:// endpoint (libcurl, POST, one JSON event per request) or appends them, one a line, to
 * the file of a file: URL. Delivery never fails or slows the run: emitting only queues; each try is bounded by the
 * timeout, a failed event is tried NEM_OL_TRIES times, then dropped with one warning (later events of an endpoint
 * that keeps failing get one try each); at the end the queue is given the timeout to drain and what is left is
 * dropped. The emitter counts what was sent and what was dropped (the run record's "openlineage").
 *
 * This module knows nothing of runs or scripts: events are documents the caller builds with the helpers below. */
#ifndef NEM_OPENLINEAGE_H
#define NEM_OPENLINEAGE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#define NEM_OL_SPEC_URL "https://openlineage.io/spec/2-0-2/OpenLineage.json"
#define NEM_OL_RUN_EVENT NEM_OL_SPEC_URL "#/$defs/RunEvent"
/* The producer of every event and facet, and the schema of nemesyst's own facets (nemesyst_read). */
#define NEM_OL_PRODUCER "https://github.com/nemesyst/nemesyst/tree/" PACKAGE_VERSION
#define NEM_OL_FACETS_URL "https://github.com/nemesyst/nemesyst/doc/openlineage-facets.json" /* doc/ */
#define NEM_OL_TRIES 3           /* tries of one event before it is dropped */
#define NEM_OL_QUEUE_MAX 10000   /* events waiting; more are dropped */
#define NEM_OL_API_KEY_MAX 4096  /* bytes of an API key file */

typedef struct {
    const char *url;          /* http://, https:// or file: (NULL: no events) */
    const char *ns;           /* the jobs' namespace */
    const char *ca_file;      /* https: the CA certificates to trust (NULL: the system's) */
    const char *api_key_file; /* its first line is sent as "Authorization: Bearer KEY" (NULL: none) */
    int timeout_ms;           /* one try's limit, and how long the end waits for the queue */
} nem_ol_opts_t;

typedef struct nem_ol nem_ol_t;

/* Checks a --openlineage URL: http:// or https:// with a host, or file: with a path; no user or password in it.
 * False with why (a phrase, never the URL's secret parts). */
bool nem_ol_url_ok(const char *url, char *why, size_t len);
/* The URL without user, password, query or fragment, for messages and the run record. */
void nem_ol_url_public(const char *url, char *out, size_t len);
/* Reads an API key file's first line (refused when group or others may read it, empty or not UTF-8). */
bool nem_ol_read_api_key(const char *path, char **key, bson_error_t *err);

/* Starts the emitter (reads the API key file; initialises libcurl once); NULL with err on failure. */
nem_ol_t *nem_ol_new(const nem_ol_opts_t *opts, bson_error_t *err);
/* Queues an event (a RunEvent document); never blocks on the network. NULL ol: nothing. */
void nem_ol_emit(nem_ol_t *ol, const bson_t *event);
/* What the emitter did. */
typedef struct {
    uint64_t sent, dropped;   /* events delivered, events given up */
    bool warned;              /* the sender already warned of a drop */
    char last_error[256];     /* why the last try failed */
} nem_ol_stats_t;
/* Waits up to the timeout for the queued events, stops the thread and drops what is left; stats (may be NULL)
 * receives the counts. Safe to call again; nem_ol_destroy calls it. */
void nem_ol_finish(nem_ol_t *ol, nem_ol_stats_t *stats);
void nem_ol_destroy(nem_ol_t *ol);

/* --- building events --- */

/* A UUID (version 5, RFC 4122: SHA-1 of nemesyst's namespace UUID and name) as 36 characters: one name, one UUID. */
void nem_ol_uuid(const char *name, char out[37]);

/* What one event says. */
typedef struct {
    const char *type;          /* START, COMPLETE, FAIL, ABORT */
    int64_t time_ms;           /* milliseconds since the epoch */
    const char *run_uuid;
    const char *job_ns, *job_name;
    const char *job_type;      /* the jobType facet's: "JOB" (a run), "TASK" (a script) */
    const char *parent_uuid;   /* the parent run facet (NULL: none) */
    const char *parent_job;    /* its job's name (same namespace) */
    const char *error;         /* FAIL: the errorMessage run facet (NULL: none) */
    const bson_t *run_facets;  /* more run facets (NULL: none) */
    const bson_t *inputs, *outputs; /* arrays of datasets (nem_ol_dataset), NULL: empty */
} nem_ol_event_t;

void nem_ol_event(const nem_ol_event_t *e, bson_t *out);
/* Starts facet key in parent with its _producer and _schemaURL; end with bson_append_document_end(parent, facet). */
void nem_ol_facet_begin(bson_t *parent, const char *key, const char *schema_url, bson_t *facet);
/* Appends a dataset {namespace, name, facets?, inputFacets/outputFacets?} to array (its next index). */
void nem_ol_dataset(bson_t *array, const char *ns, const char *name, const bson_t *facets, const char *io_key,
                    const bson_t *io_facets);

#endif
