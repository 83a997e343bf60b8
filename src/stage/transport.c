/* The coordinator's MPI transport (coordinator-private.h). */
#include <mpi.h>
#include <string.h>
#include <time.h>

#include "stage/coordinator-private.h"
#include "util/exitcodes.h"

enum { TAG_RESULT = 11, TAG_ROUND_DONE = 12, TAG_PROGRESS = 13 };

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
