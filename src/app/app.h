/* The whole program below main(): option resolution on rank 0, broadcast, then serving and stages. */
#ifndef NEM_APP_H
#define NEM_APP_H

#include "config/config.h"
#include "util/world.h"

/* Resolves options on rank 0 and shares the result with every rank. Returns an exit status >= 0 when the
 * program should end now (help, version, print-config, bad input), or -1 to go on with *out set. */
int nem_app_configure(const nem_world_t *world, int argc, char **argv, nem_config_t **out);

/* Runs serving and the stages for a resolved configuration; returns the exit status (same on every rank). */
int nem_app_run(const nem_world_t *world, nem_config_t *cfg);

#endif
