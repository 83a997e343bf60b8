/* Runner internals shared by runner.c (lifecycle), runner-spawn.c (fork/exec), runner-items.c (item stream
 * parser), runner-log.c (log channels) and runner-kinds.c (one vtable per script kind). */
#ifndef NEM_RUNNER_PRIVATE_H
#define NEM_RUNNER_PRIVATE_H

#include "stage/runner/runner.h"

#include <signal.h>

/* A growable input buffer: bytes [start, len) are unconsumed. */
typedef struct {
    char *data;
    size_t start, len, cap;
} nem_rbuf_t;

typedef enum { NEM_FMT_DETECT, NEM_FMT_JSON, NEM_FMT_BSON } nem_item_fmt_t;

typedef struct {
    int fd;               /* -1 once closed */
    nem_rbuf_t in;
    nem_item_fmt_t fmt;
    uint64_t line;        /* JSON: lines consumed so far */
    uint64_t offset;      /* bytes consumed so far */
    size_t scanned;       /* JSON: bytes after in.start already searched for a newline */
    /* JSON: one libbson reader for the whole stream, fed a line at a time (a reader costs ~26 KB to set up,
     * more than parsing a small document); made at the first line, freed by nem_items_free */
    bson_json_reader_t *reader;
    bool primed;          /* the reader holds the '{' that opens the next line's document */
    const char *feed;     /* the rest of the line the reader is being fed */
    size_t feed_len;
    bool feed_brace;      /* then a '{' */
} nem_items_chan_t;

typedef struct {
    int fd;               /* -1 once closed */
    nem_rbuf_t in;
    bool is_stderr;
} nem_log_chan_t;

#include "util/strv.h"

typedef struct nem_runner_kind {
    const char *name;
    bool items_on_stdout;   /* EXEC: stdout carries items; the others use NEMESYST_ITEM_FD and log their stdout */
    nem_item_fmt_t fmt;     /* the item stream's format, or DETECT for the #nemesyst:bson first line */
    bool requires_end;      /* success needs the end-of-output record (the adapter and the plugin host send it) */
    bool (*argv)(const nem_script_spec_t *spec, nem_strv_t *argv, bson_error_t *err);
} nem_runner_kind_t;

extern const nem_runner_kind_t nem_runner_kind_exec, nem_runner_kind_python, nem_runner_kind_plugin;

struct nem_runner {
    const nem_runner_kind_t *kind;
    char *label;            /* "clean script #0 'path'": how every message names the script */
    char *log_prefix;       /* "path #0 (rank 1)" */
    pid_t pid;
    bool reaped;
    int status;             /* waitpid status once reaped */
    int timeout_s;
    int64_t deadline_us;    /* monotonic; 0 = none */
    int64_t stop_us;        /* nem_runner_stop: when the grace ends and SIGKILL follows (0 = not stopping) */
    bool killed;            /* SIGKILL sent after the grace */
    bool timed_out;
    bool failed;            /* pump failed: fail_err holds why */
    bson_error_t fail_err;
    char last_err[240];     /* the last line seen on stderr, to explain a failure */
    nem_items_chan_t items;
    uint64_t n_items;       /* items delivered (documents and markers), not counting the end record */
    bool ended;             /* the end-of-output record arrived */
    int64_t end_items;      /* the count it announced */
    nem_log_chan_t logs[2];
    size_t n_logs;
};

/* Fds the spawn hands to the runner (parent ends, non-blocking). */
typedef struct {
    int items, out, err;    /* out = -1 when stdout carries the items */
} nem_child_fds_t;

/* runner-spawn.c. NEM_GUARD_KILL: sent by the rank to a script's guard alone (never to the group), it SIGKILLs
 * the script and everything the script left, in its process group or out of it, and the guard then ends. */
#define NEM_GUARD_KILL SIGUSR1
/* runner-spawn.c */
bool nem_runner_spawn(const nem_runner_kind_t *kind, const nem_script_spec_t *spec, pid_t *pid,
                      nem_child_fds_t *fds, bson_error_t *err);

/* runner-io.c: reads what is there without blocking, at most budget bytes; *closed on EOF. False on a read
 * error other than EAGAIN. */
bool nem_rbuf_fill(nem_rbuf_t *b, int fd, size_t budget, bool *closed);
void nem_rbuf_reserve(nem_rbuf_t *b, size_t more);
void nem_rbuf_consume(nem_rbuf_t *b, size_t n);
void nem_rbuf_free(nem_rbuf_t *b);

/* runner-items.c: parses the complete items in the buffer (all of it at EOF). */
bool nem_items_parse(nem_runner_t *r, bool at_eof, nem_item_cb cb, void *ud, bson_error_t *err);
void nem_items_free(nem_items_chan_t *ch);

/* runner-log.c: logs the complete lines in the buffer (all of it at EOF). */
void nem_log_lines(nem_runner_t *r, nem_log_chan_t *ch, bool at_eof);

/* runner-io.c: an error prefixed with the script's label */
bool nem_runner_error(const nem_runner_t *r, bson_error_t *err, int code, const char *fmt, ...)
    BSON_GNUC_PRINTF(4, 5);

/* runner-kinds.c: the helper programs, from the environment, the build tree or the install. */
char *nem_runner_helper_path(const char *env_name, const char *build_path, const char *installed_path);

/* runner-paths.c (compiled with the build tree's paths) */
const char *nem_runner_build_top(void);
const char *nem_runner_source_top(void);

#endif
