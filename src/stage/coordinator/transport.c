/* Rank 0's end of the messages (coordinator-private.h): events from the workers, aborts to them. */
#include <mpi.h>
#include <string.h>
#include <time.h>

#include "stage/coordinator/coordinator-private.h"

void nem_coord_next_event(int wait_ms, nem_event_t *ev)
{
    int flag = 0;
    MPI_Status st;
    memset(ev, 0, sizeof *ev);
    ev->kind = NEM_EV_NONE;
    for (int waited = 0;; waited += 2) {
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (flag)
            break;
        if (waited >= wait_ms)
            return;
        struct timespec ts = {0, 2 * 1000 * 1000}; /* without spinning a core */
        nanosleep(&ts, NULL);
    }
    int len;
    bson_t msg;
    bson_error_t err = {0};
    bool ok;
    MPI_Get_count(&st, MPI_BYTE, &len);
    ev->source = st.MPI_SOURCE;
    bool bson = nem_msg_recv(st.MPI_SOURCE, st.MPI_TAG, len, &msg);
    switch (st.MPI_TAG) {
    case NEM_TAG_ROUND_DONE:
        ev->kind = NEM_EV_ROUND_DONE;
        ok = true;
        break;
    case NEM_TAG_PROGRESS:
        ev->kind = NEM_EV_PROGRESS;
        ok = bson && nem_msg_progress_decode(&msg, &ev->documents, &err);
        break;
    case NEM_TAG_RESULT:
        ev->kind = NEM_EV_RESULT;
        ok = bson && nem_msg_result_decode(&msg, &ev->result, &err);
        break;
    default:
        ok = false;
        bson_set_error(&err, 0, 0, "a message with the unknown tag %d arrived", st.MPI_TAG);
    }
    if (!ok) {
        ev->kind = NEM_EV_BAD;
        bson_snprintf(ev->why, sizeof ev->why, "rank %d: %s", st.MPI_SOURCE,
                      err.message[0] ? err.message : "a message that is not BSON arrived");
    }
    bson_destroy(&msg);
}

/* Learner groups: rank 0 tells the ranks of a failed group's other members to stop them. It counts what it sent
 * to each rank and says so in every round plan, so each worker receives every one and none is left behind. */
void nem_coord_send_abort(coord_t *c, int rank, int group, const char *why)
{
    nem_msg_abort_t a = {.round = c->round, .group = group};
    bson_t msg;
    bson_strncpy(a.why, why, sizeof a.why);
    nem_msg_abort_encode(&a, &msg);
    nem_msg_send(&msg, rank, NEM_TAG_ABORT);
    bson_destroy(&msg);
    c->aborts_sent[rank]++;
}
