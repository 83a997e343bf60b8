/* A round as a worker rank runs it (worker.h). */
#include <arpa/inet.h>
#include <mpi.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log/log.h"
#include "stage/worker/worker.h"
#include "util/exitcodes.h"

/* A TCP port free on this host for torch.distributed's rendezvous (the kernel picks it). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY), .sin_port = 0};
    socklen_t len = sizeof a;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* A learner group first gets its communicator (every rank takes part in the split, rank 0 and the ranks without a
 * member of it too) and its rendezvous port. */
void nem_worker_round(const nem_world_t *world, const nem_round_t *round, const nem_worker_ctx_t *wctx,
                      nem_result_cb done, void *ud)
{
    size_t ntasks = round->n_tasks, n = 0, ngroups = nem_round_groups(round);
    const nem_round_task_t *all = round->tasks;
    nem_worker_task_t *mine = bson_malloc0((ntasks + 1) * sizeof *mine);
    nem_learner_group_t **groups = bson_malloc0((ngroups + 1) * sizeof *groups);
    int *ports = bson_malloc0((ngroups + 1) * sizeof *ports);
    for (size_t g = 0; g < ngroups; g++) {
        size_t nlocal = 0;
        bool lead = false;
        int size = 1;
        for (size_t i = 0; i < ntasks; i++)
            if (all[i].group == (int)g) {
                size = all[i].size;
                if (all[i].rank == world->rank) {
                    nlocal++;
                    lead |= all[i].member == 0;
                }
            }
        MPI_Comm comm = MPI_COMM_NULL;
        if (world->size > 1) {
            /* member 0's rank is the group's rank 0: it picks the port and tells the others */
            MPI_Comm_split(MPI_COMM_WORLD, nlocal ? 0 : MPI_UNDEFINED, lead ? 0 : 1 + world->rank, &comm);
            if (comm != MPI_COMM_NULL) {
                ports[g] = lead ? free_port() : 0;
                MPI_Bcast(&ports[g], 1, MPI_INT, 0, comm);
            }
        } else {
            ports[g] = free_port();
        }
        if (nlocal) {
            char label[64];
            int64_t pos = -1;
            for (size_t i = 0; i < ntasks && pos < 0; i++)
                if (all[i].group == (int)g)
                    pos = (int64_t)all[i].position;
            snprintf(label, sizeof label, "%s[%" PRId64 "]", nem_stage_name(round->stage), pos);
            groups[g] = nem_learner_group_new(label, size, comm, nlocal);
        } else if (comm != MPI_COMM_NULL) {
            MPI_Comm_free(&comm);
        }
    }
    size_t *slots = bson_malloc0((ngroups + 1) * sizeof *slots);
    for (size_t i = 0; i < ntasks; i++) {
        if (all[i].rank != world->rank)
            continue;
        nem_worker_task_t *w = &mine[n++];
        w->position = all[i].position;
        w->member = all[i].member;
        w->group_size = all[i].size;
        w->group_index = all[i].group;
        if (all[i].group >= 0) {
            w->group = groups[all[i].group];
            w->slot = slots[all[i].group]++;
            w->master_port = ports[all[i].group];
        }
        w->local_rank = all[i].local_rank;
        w->local_size = all[i].local_size;
        w->master_addr = all[i].master;
        w->shard_json = all[i].shard;
    }
    if (n && done)
        nem_worker_run(wctx, round->stage, mine, n, done, ud);
    for (size_t g = 0; g < ngroups; g++)
        nem_learner_group_destroy(groups[g]);
    bson_free(groups);
    bson_free(ports);
    bson_free(slots);
    bson_free(mine);
}

void nem_worker_stage(nem_link_t *l, const nem_worker_ctx_t *wctx)
{
    for (;;) {
        bson_t msg = BSON_INITIALIZER;
        nem_round_t round;
        bson_error_t err = {0};
        nem_msg_bcast(l->world, &msg);
        bool ok = nem_msg_round_decode(&msg, &round, &err);
        bson_destroy(&msg);
        if (!ok) {
            NEM_ERROR("rank %d: %s", l->world->rank, err.message);
            nem_world_abort(NEM_EXIT_FAILURE);
        }
        l->round = round.end ? l->round : round.round;
        nem_link_drain_aborts(l, &round);
        bool end = round.end;
        if (!end) {
            nem_worker_round(l->world, &round, wctx, nem_link_send_result, l);
            nem_link_round_done(l);
        }
        nem_round_clear(&round);
        if (end)
            return;
    }
}
