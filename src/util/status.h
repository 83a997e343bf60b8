/* The one vocabulary of statuses, as run records store them (runrec/runrec.h) and as every table and JSON form shows
 * them: the end-of-run summary, --summary-json, --list-runs and nemesyst-registry.
 *   a run:     running, succeeded, failed, interrupted (a signal stopped it; --resume finishes it), and lost (shown,
 *              never stored: still recorded as running, but its rank 0 died without closing it);
 *   a script:  succeeded or failed; an attempt of a run (its "attempts"): as a run. */
#ifndef NEM_UTIL_STATUS_H
#define NEM_UTIL_STATUS_H

#include <stdbool.h>

typedef enum {
    NEM_STATUS_RUNNING,
    NEM_STATUS_SUCCEEDED,
    NEM_STATUS_FAILED,
    NEM_STATUS_INTERRUPTED,
    NEM_STATUS_LOST,
    NEM_STATUS_UNKNOWN, /* a word none of the above: a record of another version, or none at all */
    NEM_STATUS__COUNT
} nem_status_t;

/* The word of a status ("succeeded"); "?" for NEM_STATUS_UNKNOWN. */
const char *nem_status_name(nem_status_t s);
/* A stored word as a status; NULL or any other word: NEM_STATUS_UNKNOWN. */
nem_status_t nem_status_parse(const char *word);
/* A script's status from whether it succeeded. */
nem_status_t nem_status_of_script(bool ok);

#endif
