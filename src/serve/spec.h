/* The serving options, resolved once from the configuration into an engine-neutral spec. Private to src/serve. */
#ifndef NEM_SERVE_SPEC_H
#define NEM_SERVE_SPEC_H

#include "config/config.h"
#include "serve/engine.h"

/* Fills spec (program left NULL: the engine is chosen separately). False on a bad value. */
bool nem_serve_spec_from_cfg(const nem_config_t *cfg, nem_server_spec_t *spec, bson_error_t *err);
void nem_serve_spec_clear(nem_server_spec_t *spec);

/* True for localhost and loopback addresses. */
bool nem_serve_is_loopback(const char *host);

/* True when a server this run starts on rank 0's host could not serve every rank: the ranks run on several hosts
 * and every --db-bind-ip address is loopback (no address at all counts as unreachable too). */
bool nem_serve_unreachable_by_ranks(bool several_hosts, char *const *bind_ip, size_t n_bind_ip);

#endif
