/* A worker rank's end of the messages (worker.h): results, progress and the round's end to rank 0, aborts from it. */
#include <mpi.h>
#include <string.h>

#include "log/log.h"
#include "stage/worker/worker.h"
#include "util/exitcodes.h"

void nem_link_send_result(const nem_task_result_t *r, void *link)
{
    (void)link;
    bson_t msg;
    nem_msg_result_encode(r, &msg);
    nem_msg_send(&msg, 0, NEM_TAG_RESULT);
    bson_destroy(&msg);
}

static void send_progress(nem_link_t *l)
{
    bson_t msg;
    nem_msg_progress_encode(l->unsent, &msg);
    nem_msg_send(&msg, 0, NEM_TAG_PROGRESS);
    bson_destroy(&msg);
    l->unsent = 0;
}

/* Documents written, told to rank 0 at most once a second. */
void nem_link_progress(uint64_t documents, void *link)
{
    nem_link_t *l = link;
    l->unsent += documents;
    int64_t now = nem_wall_ms();
    if (!l->unsent || now - l->sent_ms < 1000)
        return;
    send_progress(l);
    l->sent_ms = now;
}

void nem_link_round_done(nem_link_t *l)
{
    if (l->unsent)
        send_progress(l);
    nem_msg_send(NULL, 0, NEM_TAG_ROUND_DONE);
}

/* Receives one abort that is known to be there or waiting (blocking when wait); the group index when it is of
 * this round, -1 when of an earlier one, -2 when none was waiting. */
static int receive_abort(nem_link_t *l, bool wait, char *why, size_t len)
{
    MPI_Status st;
    int flag = 0, n;
    if (wait)
        MPI_Probe(0, NEM_TAG_ABORT, MPI_COMM_WORLD, &st), flag = 1;
    else
        MPI_Iprobe(0, NEM_TAG_ABORT, MPI_COMM_WORLD, &flag, &st);
    if (!flag)
        return -2;
    MPI_Get_count(&st, MPI_BYTE, &n);
    bson_t msg;
    nem_msg_abort_t a;
    bson_error_t err = {0};
    bool ok = nem_msg_recv(0, NEM_TAG_ABORT, n, &msg) && nem_msg_abort_decode(&msg, &a, &err);
    bson_destroy(&msg);
    l->aborts_received++;
    if (why && len)
        why[0] = '\0';
    if (!ok) {
        NEM_ERROR("rank %d: an abort message from rank 0: %s", l->world->rank,
                  err.message[0] ? err.message : "not BSON");
        return -1;
    }
    if (why && len)
        bson_strncpy(why, a.why, len);
    return a.round == l->round ? a.group : -1;
}

int nem_link_poll_abort(void *link, char *why, size_t len)
{
    nem_link_t *l = link;
    for (;;) {
        int g = receive_abort(l, false, why, len);
        if (g == -2)
            return -1;
        if (g >= 0)
            return g;
    }
}

void nem_link_drain_aborts(nem_link_t *l, const nem_round_t *plan)
{
    if (!plan->aborts || l->world->rank >= plan->n_ranks)
        return;
    while (l->aborts_received < plan->aborts[l->world->rank])
        receive_abort(l, true, NULL, 0);
}
