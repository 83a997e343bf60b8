/* Round packing, pure: which scripts of a stage go into a round and where each runs. A round has (worker ranks x
 * --process-pool) slots; a script takes one, a learner group one per member, and a group never spans two rounds
 * (one that does not fit in what is left starts the next round; app/run.c refused one that fits in none). Slots
 * are dealt to the worker ranks in turn, so a round spreads its scripts over every rank; with one rank, rank 0 runs
 * them all. A group's members learn their rank among the members on their host, and the rendezvous host of
 * torch.distributed: member 0's host, or loopback when every member runs there.
 * No MPI and no server: tests/unit/test_stage.c checks it alone. */
#ifndef NEM_STAGE_PACK_H
#define NEM_STAGE_PACK_H

#include <stdbool.h>
#include <stddef.h>

#include "stage/message.h"

typedef struct {
    int world_size;         /* the run's ranks; 1: rank 0 runs everything */
    int process_pool;       /* --process-pool: scripts per worker rank in a round */
    const char *hosts;      /* every rank's host name, host_len bytes each; NULL: all one host */
    size_t host_len;
} nem_pack_env_t;

typedef struct {
    const nem_pack_env_t *env;
    nem_round_t *round;
    size_t slot;            /* slots taken */
} nem_packer_t;

/* Worker ranks (the ranks other than 0, or rank 0 alone) and slots per round. */
int nem_pack_workers(const nem_pack_env_t *env);
size_t nem_pack_slots(const nem_pack_env_t *env);
/* The host of a rank, "localhost" when the environment names none. */
const char *nem_pack_host(const nem_pack_env_t *env, int rank);

/* Starts round number of stage in round (which the caller clears with nem_round_clear). */
void nem_pack_begin(nem_packer_t *p, const nem_pack_env_t *env, nem_round_t *round, nem_stage_t stage, int number);
/* Whether a unit of k slots (a script, or a group of k members) still fits: the first always does. */
bool nem_pack_fits(const nem_packer_t *p, int k);
/* Adds the script at position as k tasks (k > 1: a learner group whose member m reads shards[m], copied). Returns
 * the group's index in the round, or -1 for a script alone. The ranks it got are the last k tasks' ranks. */
int nem_pack_add(nem_packer_t *p, size_t position, int k, char *const *shards);

#endif
