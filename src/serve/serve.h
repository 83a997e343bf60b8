/* Serving: rank 0 owns the database server's life (--db-init, --db-start, --db-login, --db-stop). */
#ifndef NEM_SERVE_H
#define NEM_SERVE_H

#include "app/app.h" /* nem_world_t and nem_config_t */

typedef struct nem_serve nem_serve_t;

/* Every rank calls it, before the stages. Rank 0 does --db-init then --db-start as asked and broadcasts the
 * outcome. On failure every rank returns the same exit status (NEM_EXIT_SERVER, or 128+signal when a signal cut
 * the start short) after rank 0 logged one clear error, and *out is NULL (nem_serve_end accepts NULL). On success
 * returns -1 and, on workers on another host than rank 0 whose --db-ip is loopback while the server is rank 0's
 * own (started by this run), rewrites cfg's db-ip to rank 0's host name. A --db-start whose ranks span more than
 * one host while every --db-bind-ip is loopback fails on every rank (NEM_EXIT_SERVER) before anything starts: the
 * ranks elsewhere could not reach the server. Installs the signal handlers. */
int nem_serve_begin(const nem_world_t *world, nem_config_t *cfg, nem_serve_t **out);

/* Every rank calls it after the stages, whatever their outcome. Rank 0 runs --db-login (the shell as a child,
 * waited for), then --db-stop as asked: a server started by this run, else the one named by the pid file in
 * --db-path. Returns status_so_far when non-zero, else rank 0's serving status (0 ok), the same on every rank.
 * Frees s. */
int nem_serve_end(const nem_world_t *world, nem_config_t *cfg, nem_serve_t *s, int status_so_far);

#endif
