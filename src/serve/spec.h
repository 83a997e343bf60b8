/* The engine-neutral server spec (filled from the options by app/plan.c): its checks and derived addresses. Private
 * to src/serve. */
#ifndef NEM_SERVE_SPEC_H
#define NEM_SERVE_SPEC_H

#include "serve/engine.h"
#include "util/errors.h"

/* Checks a filled spec (paths set, port and timeouts in range, an address to bind) and sets connect_ip. False with
 * one line naming the option. */
bool nem_serve_spec_check(nem_server_spec_t *spec, bson_error_t *err);
void nem_serve_spec_clear(nem_server_spec_t *spec);

/* True for localhost and loopback addresses. */
bool nem_serve_is_loopback(const char *host);

/* True when a server this run starts on rank 0's host could not serve every rank: the ranks run on several hosts
 * and every --db-bind-ip address is loopback (no address at all counts as unreachable too). */
bool nem_serve_unreachable_by_ranks(bool several_hosts, char *const *bind_ip, size_t n_bind_ip);

#endif
