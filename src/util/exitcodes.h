/* Exit statuses of nemesyst, documented in README.md and nemesyst(1). */
#ifndef NEM_EXITCODES_H
#define NEM_EXITCODES_H
enum {
    NEM_EXIT_OK = 0,
    NEM_EXIT_FAILURE = 1,     /* runtime failure not covered below */
    NEM_EXIT_USAGE = 2,       /* bad option, config file, value or path: nothing was started */
    NEM_EXIT_SERVER = 3,      /* database server could not be started, stopped or reached */
    NEM_EXIT_SCRIPTS = 4,     /* one or more stage scripts failed (see the run record) */
    NEM_EXIT_UNVERIFIABLE = 5, /* nemesyst-registry verify: the recorded lineage cannot be checked (its data
                                * collection was dropped, its stored pipeline is gone, nothing was recorded) */
    NEM_EXIT_SIGINT = 130,
    NEM_EXIT_SIGTERM = 143,
};
#endif
