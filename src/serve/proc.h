/* Child processes for serving: the shared spawner (util/spawn.h) with its errors in serve's domain, so a server or
 * shell that cannot start exits 3 like every other serving failure. Private to src/serve. */
#ifndef NEM_SERVE_PROC_H
#define NEM_SERVE_PROC_H

#include "config/env.h"
#include "util/errors.h"
#include "util/spawn.h"

/* nem_spawn() failing with NEM_ERROR_SERVE / NEM_SERVE_ESYSTEM; the child never sees nemesyst's secrets
 * (nem_env_withheld). */
static inline pid_t nem_proc_spawn(const nem_spawn_t *sp, bson_error_t *err)
{
    nem_spawn_t with = *sp;
    with.withhold = nem_env_withheld;
    return nem_spawn(&with, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, err);
}

#endif
