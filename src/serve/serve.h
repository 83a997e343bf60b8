/* Serving: rank 0 owns the database server's life (--db-init, --db-start, --db-login, --db-stop). */
#ifndef NEM_SERVE_H
#define NEM_SERVE_H

#include "serve/engine.h"
#include "store/store.h"
#include "util/world.h"

/* What serving does, resolved from the options by app/ (app/plan.c). */
typedef struct {
    bool init, start, stop, login;
    bool intervention;              /* pause the init server for manual work */
    char *engine;                   /* auto, mongod or ferretdb */
    nem_server_spec_t spec;         /* filled when any of the four is asked; nem_serve_begin takes it */
    const nem_store_opts_t *client; /* how nemesyst reaches the server (its host) and --db-login connects */
    char *address_file;             /* --db-address-file: written once the started server answers, removed at stop */
    bool tls;                       /* clients must use TLS (said in the address file) */
} nem_serve_plan_t;

void nem_serve_plan_clear(nem_serve_plan_t *plan);

typedef struct nem_serve nem_serve_t;

/* Every rank calls it, before the stages. Rank 0 does --db-init then --db-start as asked and broadcasts the
 * outcome. On failure every rank returns the same exit status (NEM_EXIT_SERVER, or 128+signal when a signal cut
 * the start short) after rank 0 logged one clear error, and *out is NULL (nem_serve_end accepts NULL). On success
 * returns -1. A --db-start whose ranks span more than one host while every --db-bind-ip is loopback fails on every
 * rank (NEM_EXIT_SERVER) before anything starts: the ranks elsewhere could not reach the server. Installs the signal
 * handlers. */
int nem_serve_begin(const nem_world_t *world, nem_serve_plan_t *plan, nem_serve_t **out);

/* Where this rank must reach the server instead of the client's host, or NULL. When this run started the server
 * and --db-ip is loopback: the address the server listens on when that is not loopback (--db-bind-ip ADDR or
 * HOSTNAME), else, on ranks on another host than rank 0, rank 0's host name (a wildcard --db-bind-ip). */
const char *nem_serve_db_host(const nem_serve_t *s);

/* Every rank calls it after the stages, whatever their outcome. Rank 0 runs --db-login (the shell as a child,
 * waited for), then --db-stop as asked: a server started by this run, else the one named by the pid file in
 * --db-path. Returns status_so_far when non-zero, else rank 0's serving status (0 ok), the same on every rank.
 * Frees s. */
int nem_serve_end(const nem_world_t *world, const nem_serve_plan_t *plan, nem_serve_t *s, int status_so_far);

#endif
