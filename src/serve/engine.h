/* Server engines behind one interface (the shape of hpc/ior's aiori): each engine fills a struct of operations
 * that say what to run and how to ask it to stop; src/serve/server.c runs them. Keeping the "what" apart from the
 * "run" is what lets the mongod paths, which cannot run here, be checked exactly by unit tests. */
#ifndef NEM_SERVE_ENGINE_H
#define NEM_SERVE_ENGINE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/errors.h"
#include "util/strv.h"

/* init: loopback only, no authentication, to create the user. start: the served database, authentication on. */
typedef enum { NEM_PHASE_INIT, NEM_PHASE_START } nem_phase_t;

/* Everything an engine needs to know, resolved from the options once (src/serve/spec.c). */
typedef struct {
    char *program;          /* absolute path of the server binary */
    char *db_path;          /* --db-path, ~ expanded */
    char *log_dir;          /* --db-log-path */
    char *log_file;         /* log_dir/--db-log-name */
    char *config_path;      /* --db-config-path or NULL */
    char **bind_ip;         /* --db-bind-ip, NULL-terminated */
    size_t n_bind_ip;
    char *connect_ip;       /* where nemesyst itself reaches the server (loopback for wildcard/localhost) */
    int port;
    int64_t cursor_timeout; /* --db-cursor-timeout, passed on as cursorTimeoutMillis like the original */
    char *replset;          /* --db-replica-set-name or NULL */
    char *user;             /* --db-user-name or NULL */
    char *password;         /* resolved password or NULL; never in argv or logs */
    char *auth_db;          /* --db-authentication-database, else --db-name */
    char *role;             /* --db-user-role */
    char *auth_mechanism;   /* --db-authentication */
    int start_timeout_ms;
    int stop_timeout_ms;
    /* Serving with TLS (--db-server-tls-*): the started server accepts TLS connections only. tls is false during
     * --db-init, whose server listens on loopback, plain. */
    bool tls;
    char *tls_cert_file;    /* --db-server-tls-cert-file: the server's certificate (PEM), with its key unless... */
    char *tls_key_file;     /* --db-server-tls-key-file, or NULL (the key is in tls_cert_file) */
    char *tls_ca_file;      /* --db-server-tls-ca-file or NULL: given, every client must show a certificate it signed */
    /* How nemesyst itself connects to a TLS server (ping, shutdown): the client options --db-tls-*. */
    char *client_ca_file;        /* --db-tls-ca-file or NULL (the system's CAs) */
    char *client_cert_key_file;  /* --db-tls-certificate-key-file or NULL */
    char *client_cert_key_password; /* its password or NULL; never in argv or logs */
} nem_server_spec_t;

typedef struct nem_engine {
    const char *name;       /* --db-engine value */
    const char *program;    /* binary looked up on PATH and in libexec */
    /* The server's command line for a phase; argv->v[0] is spec->program. Never contains a secret. */
    bool (*build_argv)(const nem_server_spec_t *spec, nem_phase_t phase, nem_strv_t *argv, bson_error_t *err);
    /* NAME=VALUE entries for the child's environment (the only channel for a secret given to a server). */
    void (*build_env)(const nem_server_spec_t *spec, nem_phase_t phase, nem_strv_t *env);
    /* Optional: files the command line names that must be made before the server starts (mongod's one PEM of
     * certificate and key). NULL = none. */
    bool (*prepare)(const nem_server_spec_t *spec, nem_phase_t phase, bson_error_t *err);
    /* During init, once the loopback server answers: make sure the user exists. */
    bool (*init_user)(const nem_server_spec_t *spec, bson_error_t *err);
    /* The graceful stop request: a command for the admin database (left empty = none, signal only). */
    void (*stop_command)(const nem_server_spec_t *spec, bson_t *cmd);
    bool log_to_stderr;     /* the server logs to stderr: nemesyst redirects it into spec->log_file */
} nem_engine_t;

extern const nem_engine_t nem_engine_mongod;
extern const nem_engine_t nem_engine_ferretdb;

/* NULL for an unknown name. */
const nem_engine_t *nem_engine_by_name(const char *name);

/* Finds the engine's binary: for ferretdb first $NEMESYST_FERRETDB (an explicit choice wins), then PATH, then
 * NEM_PKGLIBEXECDIR, then (ferretdb) the build cache. Returns a malloc'ed absolute path or NULL. */
char *nem_engine_find(const nem_engine_t *engine);

/* Finds a program on PATH, then in NEM_PKGLIBEXECDIR. Returns a malloc'ed absolute path or NULL. */
char *nem_find_program(const char *name);

/* Resolves --db-engine (auto|mongod|ferretdb) to an engine and its binary. */
bool nem_engine_choose(const char *name, const nem_engine_t **engine, char **program, bson_error_t *err);

/* mongod's createUser command for the init phase (exposed for the unit tests). Holds the password: the command
 * goes over the wire only. */
void nem_mongod_create_user_command(const nem_server_spec_t *spec, bson_t *cmd);

/* mongod takes the server's certificate and key in one file: --db-server-tls-cert-file itself, or, when the key is
 * apart (--db-server-tls-key-file), this file in the db path that prepare writes (mode 0600). */
#define NEM_MONGOD_TLS_PEM_NAME "nemesyst-server-tls.pem"

/* Connection helpers for the serving code (src/serve/client.c). */
/* One ping against spec's connect address; with credentials when user is given. */
bool nem_serve_ping(const nem_server_spec_t *spec, bool with_auth, int timeout_ms, bson_error_t *err);
/* Runs cmd against database db with or without spec's credentials; reply may be NULL. */
bool nem_serve_command(const nem_server_spec_t *spec, bool with_auth, const char *db, const bson_t *cmd,
                       int timeout_ms, bson_t *reply, bson_error_t *err);

#endif
