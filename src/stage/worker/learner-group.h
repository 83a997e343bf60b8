/* A learner group's part on one worker rank (--dl-data-parallel): the members this rank runs, the allreduce their C
 * plugins ask for, and the group's fate.
 *
 * The ranks that hold members share a communicator made for the group (round.c, MPI_Comm_split). On it they
 * make the same sequence of nonblocking collectives, so none is ever left pending:
 *   1. a header, MPI_MAX over {count, -count, dtype, -dtype, op, -op, ended, failed member + 1}, once every local
 *      member has asked for an allreduce or ended, or at once when one failed;
 *   2. when the header says every member asked for the same reduction: the data, the local members' buffers
 *      combined first, then MPI_Iallreduce; each member gets the result.
 * A header that says a member failed, a member ended while another still reduces, or the members disagree, ends
 * the group on every rank at the same step: the members still running are stopped. Members that never call
 * nemesyst_allreduce (PyTorch over gloo, executables) only post the last header; rank 0's abort message
 * (nem_learner_group_abort) stops them within moments when a member elsewhere failed. Progress is driven from the worker's
 * poll loop: nothing here blocks. */
#ifndef NEM_STAGE_WORKER_LEARNER_GROUP_H
#define NEM_STAGE_WORKER_LEARNER_GROUP_H

#include <mpi.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct nem_learner_group nem_learner_group_t;

/* comm: the group's communicator, or MPI_COMM_NULL when every member runs here and MPI is not needed. nlocal: the
 * members this rank runs. label: "learn[0]" for messages. */
nem_learner_group_t *nem_learner_group_new(const char *label, int size, MPI_Comm comm, size_t nlocal);
/* Local slot i runs member; plugin: it gets a socket for nemesyst_allreduce, whose child end is *child_fd (the
 * caller closes it once the child has it), else *child_fd = -1. False with why when no socket can be made. */
bool nem_learner_group_attach(nem_learner_group_t *g, size_t slot, int member, bool plugin, int *child_fd, char *why, size_t len);
/* A local member's process ended (or could not start): ok or failed. Only the first call counts. */
void nem_learner_group_member_ended(nem_learner_group_t *g, size_t slot, bool ok);
/* Rank 0 says another rank's member failed. */
void nem_learner_group_abort(nem_learner_group_t *g, const char *why);
/* The sockets to poll for requests (POLLIN), appended to pfds; returns how many. */
size_t nem_learner_group_fds(const nem_learner_group_t *g, struct pollfd *pfds);
/* Reads requests, starts and tests collectives, answers members: call on every pass. */
void nem_learner_group_progress(nem_learner_group_t *g);
/* A collective in flight: poll with a short timeout so it is tested often. */
bool nem_learner_group_busy(const nem_learner_group_t *g);
/* The group failed: why (one line; empty until then). Members still running must be stopped. */
const char *nem_learner_group_failure(const nem_learner_group_t *g);
/* Every rank of the group agreed that it is over (no collective will follow). */
bool nem_learner_group_over(const nem_learner_group_t *g);
/* Allreduce calls answered. */
unsigned long nem_learner_group_steps(const nem_learner_group_t *g);
void nem_learner_group_destroy(nem_learner_group_t *g);

#endif
