/* The stages of a run over MPI: the entry point every rank calls (stage.c). Rank 0 coordinates
 * (coordinator/), the other ranks work (worker/), and scripts run in child processes (runner/); run-plan.h is
 * what app/ hands down, message.h what the ranks say to each other. */
#ifndef NEM_STAGE_H
#define NEM_STAGE_H

#include "stage/run-plan.h"
#include "util/world.h"

/* Runs every enabled stage over MPI: rank 0 coordinates, the other ranks work (rank 0 works too when alone).
 * Returns the exit status, the same on every rank. */
int nem_stages_run(const nem_world_t *world, const nem_run_plan_t *plan);

#endif
