/* The coordinator's MPI transport (coordinator-private.h). */
#include <mpi.h>
#include <string.h>
#include <time.h>

#include "stage/coordinator-private.h"
#include "util/exitcodes.h"

enum { TAG_RESULT = 11, TAG_ROUND_DONE = 12, TAG_PROGRESS = 13, TAG_GROUP_ABORT = 14 };

/* Broadcasts a BSON document from rank 0; on other ranks doc is initialised from what arrived. */
void nem_coord_bcast(const nem_world_t *world, bson_t *doc)
{
    uint32_t len = world->rank == 0 ? doc->len : 0;
    nem_mpi_bcast(&len, 1, MPI_UINT32_T, 0);
    uint8_t *buf = bson_malloc(len);
    if (world->rank == 0)
        memcpy(buf, bson_get_data(doc), len);
    nem_mpi_bcast(buf, (int)len, MPI_BYTE, 0);
    if (world->rank != 0) {
        bson_t tmp;
        if (!bson_init_static(&tmp, buf, len))
            nem_world_abort(NEM_EXIT_FAILURE);
        bson_copy_to(&tmp, doc);
    }
    bson_free(buf);
}

/* Workers: sends a result to rank 0 as soon as a script ends. */
void nem_coord_send_result(const nem_task_result_t *r, void *ud)
{
    (void)ud;
    bson_t doc;
    nem_task_result_to_bson(r, NULL, &doc);
    MPI_Send(bson_get_data(&doc), (int)doc.len, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
    bson_destroy(&doc);
}

/* Workers tell rank 0 how many documents they wrote, at most once a second. */
void nem_coord_progress_send(uint64_t documents, void *ud)
{
    coord_t *c = ud;
    c->unsent += documents;
    int64_t now = nem_wall_ms();
    if (!c->unsent || now - c->sent_ms < 1000)
        return;
    MPI_Send(&c->unsent, 1, MPI_UINT64_T, 0, TAG_PROGRESS, MPI_COMM_WORLD);
    c->unsent = 0;
    c->sent_ms = now;
}

void nem_coord_send_round_done(coord_t *c)
{
    if (c->unsent) {
        MPI_Send(&c->unsent, 1, MPI_UINT64_T, 0, TAG_PROGRESS, MPI_COMM_WORLD);
        c->unsent = 0;
    }
    MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_ROUND_DONE, MPI_COMM_WORLD);
}

/* Rank 0, more than one rank: waits for every worker's end-of-round message, recording results as they come and
 * reporting progress meanwhile, without spinning a core. */
void nem_coord_collect_round(coord_t *c)
{
    int workers = c->world->size - 1, finished = 0;
    while (finished < workers) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (!flag) {
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
            nem_summary_progress(c->summary, NEM_PROGRESS_MS);
            nem_coord_heartbeat(c);
            continue;
        }
        int len;
        MPI_Get_count(&st, MPI_BYTE, &len);
        uint8_t *buf = bson_malloc(len > 0 ? (size_t)len : 1);
        MPI_Recv(buf, len, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (st.MPI_TAG == TAG_ROUND_DONE) {
            finished++;
        } else if (st.MPI_TAG == TAG_PROGRESS) {
            uint64_t docs;
            memcpy(&docs, buf, sizeof docs < (size_t)len ? sizeof docs : (size_t)len);
            nem_summary_live(c->summary, docs);
        } else {
            bson_t doc;
            nem_task_result_t r;
            if (bson_init_static(&doc, buf, (size_t)len) && nem_task_result_from_bson(&r, &doc))
                nem_coord_record(&r, c);
        }
        bson_free(buf);
    }
}

/* Learner groups: rank 0 tells the ranks of a failed group's other members to stop them. The message is BSON
 * {round, group, why}; rank 0 counts what it sent to each rank and says so in every round plan, so each worker
 * receives every one (nem_coord_drain_aborts) and none is left behind at the end. */
void nem_coord_send_abort(coord_t *c, int rank, int group, const char *why)
{
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_INT32(&doc, "round", c->round);
    BSON_APPEND_INT32(&doc, "group", group);
    BSON_APPEND_UTF8(&doc, "why", why);
    MPI_Send(bson_get_data(&doc), (int)doc.len, MPI_BYTE, rank, TAG_GROUP_ABORT, MPI_COMM_WORLD);
    bson_destroy(&doc);
    c->aborts_sent[rank]++;
}

/* Receives one abort that is known to be there or waiting (blocking when wait); the group index when it is of
 * this round, else -1. */
static int receive_abort(coord_t *c, bool wait, char *why, size_t len)
{
    MPI_Status st;
    int flag = 0;
    if (wait)
        MPI_Probe(0, TAG_GROUP_ABORT, MPI_COMM_WORLD, &st), flag = 1;
    else
        MPI_Iprobe(0, TAG_GROUP_ABORT, MPI_COMM_WORLD, &flag, &st);
    if (!flag)
        return -2;
    int n;
    MPI_Get_count(&st, MPI_BYTE, &n);
    uint8_t *buf = bson_malloc(n > 0 ? (size_t)n : 1);
    MPI_Recv(buf, n, MPI_BYTE, 0, TAG_GROUP_ABORT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    c->aborts_received++;
    bson_t doc;
    bson_iter_t it;
    int round = -1, group = -1;
    if (why && len)
        why[0] = '\0';
    if (n > 0 && bson_init_static(&doc, buf, (size_t)n) && bson_iter_init(&it, &doc)) {
        while (bson_iter_next(&it)) {
            if (!strcmp(bson_iter_key(&it), "round"))
                round = (int)bson_iter_as_int64(&it);
            else if (!strcmp(bson_iter_key(&it), "group"))
                group = (int)bson_iter_as_int64(&it);
            else if (!strcmp(bson_iter_key(&it), "why") && BSON_ITER_HOLDS_UTF8(&it) && why)
                bson_strncpy(why, bson_iter_utf8(&it, NULL), len);
        }
    }
    bson_free(buf);
    return round == c->round ? group : -1;
}

int nem_coord_poll_abort(void *ud, char *why, size_t len)
{
    coord_t *c = ud;
    if (c->world->size == 1 || c->world->rank == 0)
        return -1;
    for (;;) {
        int g = receive_abort(c, false, why, len);
        if (g == -2)
            return -1;
        if (g >= 0)
            return g;
    }
}

void nem_coord_drain_aborts(coord_t *c, const bson_t *plan)
{
    bson_iter_t it, arr;
    char key[16];
    const char *k;
    if (c->world->rank == 0 || !bson_iter_init_find(&it, plan, "aborts") || !bson_iter_recurse(&it, &arr))
        return;
    bson_uint32_to_string((uint32_t)c->world->rank, &k, key, sizeof key);
    if (!bson_iter_find(&arr, k))
        return;
    int sent = (int)bson_iter_as_int64(&arr);
    while (c->aborts_received < sent)
        receive_abort(c, true, NULL, 0);
}

void nem_coord_append_aborts(const coord_t *c, bson_t *plan)
{
    bson_t arr;
    char key[16];
    const char *k;
    if (!c->aborts_sent)
        return;
    BSON_APPEND_ARRAY_BEGIN(plan, "aborts", &arr);
    for (int r = 0; r < c->world->size; r++) {
        bson_uint32_to_string((uint32_t)r, &k, key, sizeof key);
        BSON_APPEND_INT32(&arr, k, c->aborts_sent[r]);
    }
    bson_append_array_end(plan, &arr);
}
