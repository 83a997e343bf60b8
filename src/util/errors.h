/* The error catalogue: every error domain of nemesyst and every code in it, in one place. Call sites name them;
 * no raw numbers. Errors follow libbson's convention (a bson_error_t with domain, code and a one-line message).
 * The exit status of a failure is derived from domain and code by one table: nem_exit_status() (errors.c),
 * documented in README.md and nemesyst(1). Domains start at 1001, clear of libbson's and libmongoc's. */
#ifndef NEM_UTIL_ERRORS_H
#define NEM_UTIL_ERRORS_H

#include <bson/bson.h>

enum {
    NEM_ERROR_CONFIG = 1001,     /* options, config files, environment, password (src/config) */
    NEM_ERROR_LOG = 1002,        /* the log file (src/log) */
    NEM_ERROR_STORE = 1003,      /* the database: connection, writes, GridFS (src/store) */
    NEM_ERROR_SERVE = 1004,      /* the database server's life: init, start, stop, login (src/serve) */
    NEM_ERROR_RUNNER = 1005,     /* a stage script (src/stage/runner*) */
    NEM_ERROR_PROVENANCE = 1006, /* run records, lineage, rollback (src/provenance, src/stage/worker/writer.c) */
    NEM_ERROR_SUMMARY = 1007,    /* --summary-json (src/stage/coordinator/summary.c) */
    NEM_ERROR_SIGNAL = 1008,     /* a wait interrupted by SIGINT/SIGTERM/SIGHUP: the code is the signal number */
    NEM_ERROR_FS = 1010,         /* file helpers (src/util/fs.c): codes are errno values, 0 for a wrong kind or size */
};

/* NEM_ERROR_CONFIG */
enum { NEM_CONFIG_EUSAGE = 1, NEM_CONFIG_EFILE = 2, NEM_CONFIG_EVALUE = 3, NEM_CONFIG_EINTR = 4 };

/* NEM_ERROR_LOG */
enum { NEM_LOG_EOPEN = 1 };

/* NEM_ERROR_STORE; the server's own code, when there is one, is quoted in the message. */
enum {
    NEM_STORE_EOPTION = 1,  /* a bad connection setting (names the option and value) */
    NEM_STORE_ECONNECT = 2, /* the server cannot be reached within the deadline */
    NEM_STORE_EAUTH = 3,    /* the server refused the credentials */
    NEM_STORE_ESERVER = 4,  /* the server refused a command */
    NEM_STORE_EIO = 5,      /* a local file could not be read or written */
    NEM_STORE_ENOTFOUND = 6,/* no such GridFS file */
    NEM_STORE_ECORRUPT = 7, /* a GridFS file whose chunks do not match its length */
    NEM_STORE_EDRIVER = 8,  /* any other libmongoc failure */
};

/* NEM_ERROR_SERVE */
enum {
    NEM_SERVE_EOPTION = 1,  /* a serving option that cannot work (names it) */
    NEM_SERVE_ENOSERVER = 2,/* no server program (mongod, ferretdb) to run */
    NEM_SERVE_ESYSTEM = 3,  /* a system call failed: the message quotes strerror */
    NEM_SERVE_EBUSY = 4,    /* a server already runs on the db path, or the port is taken */
    NEM_SERVE_EFAILED = 5,  /* the server did not start, answer or stop (the message quotes its log) */
    NEM_SERVE_ELOGIN = 6,   /* --db-login could not run a shell */
};

/* NEM_ERROR_RUNNER */
enum {
    NEM_RUNNER_ESPAWN = 1,   /* could not start */
    NEM_RUNNER_EOUTPUT = 2,  /* malformed output (message names the line or byte offset) */
    NEM_RUNNER_ETOOBIG = 3,  /* a document over 16 MiB */
    NEM_RUNNER_EEXIT = 4,    /* non-zero exit status */
    NEM_RUNNER_ESIGNAL = 5,  /* killed by a signal (crash) */
    NEM_RUNNER_ETIMEOUT = 6, /* ran past its timeout and was killed */
    NEM_RUNNER_EINCOMPLETE = 7, /* exited 0 without (or with a wrong) end-of-output record: output was lost */
    NEM_RUNNER_EGROUP = 8,   /* a learner group failed as one: a member failed, or the members disagreed */
};

/* NEM_ERROR_PROVENANCE */
enum {
    NEM_PROVENANCE_EREAD = 1,     /* a script file could not be read for its sha256 */
    NEM_PROVENANCE_ENORUN = 2,    /* --resume names no recorded run */
    NEM_PROVENANCE_ENOSTAMP = 3,  /* a rollback needs provenance, which was off */
    NEM_PROVENANCE_ESCRIPTS = 4,  /* --resume with other scripts than the run had */
    NEM_PROVENANCE_ELIVE = 5,     /* --resume of a run that is still alive */
    NEM_PROVENANCE_EBLOB = 6,     /* large lineage could not be stored */
    NEM_PROVENANCE_ELABEL = 7,    /* --resume with another --run-name or --tag than the run was given */
};

/* NEM_ERROR_SUMMARY */
enum { NEM_SUMMARY_EWRITE = 1 };

/* The exit status for an error that ends the program (util/exitcodes.h): 2 for bad input and refused requests
 * (nothing was started), 3 for the database and its server, 4 for scripts, 128 + the signal for an interruption
 * (130 for a prompt interrupted by Ctrl-C), 1 for the rest. */
int nem_exit_status(const bson_error_t *err);

#endif
