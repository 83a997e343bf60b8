/* Unit suite: the stage layer's pure parts, without MPI or a server: round packing (src/stage/coordinator/pack.c),
 * every message's encoder and decoder (src/stage/message.c), and the learner group header's verdicts. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stage/coordinator/pack.h"
#include "stage/coordinator/summary.h"
#include "stage/message.h"

/* --- round packing --- */

/* Packs units (sizes[i] slots each) into rounds as the coordinator does; returns the number of rounds and, per
 * unit, the round it went to. */
static int pack_all(const nem_pack_env_t *env, const int *sizes, size_t n, int *round_of, nem_round_t *rounds,
                    int max_rounds)
{
    int nr = 0;
    for (size_t start = 0; start < n && nr < max_rounds;) {
        nem_packer_t pk;
        nem_pack_begin(&pk, env, &rounds[nr], NEM_STAGE_LEARN, nr + 1);
        for (; start < n && nem_pack_fits(&pk, sizes[start]); start++) {
            char *shards[8] = {"{\"a\":0}", "{\"a\":1}", "{\"a\":2}", "{\"a\":3}", "{\"a\":4}", "{\"a\":5}",
                               "{\"a\":6}", "{\"a\":7}"};
            nem_pack_add(&pk, start, sizes[start], sizes[start] > 1 ? shards : NULL);
            round_of[start] = nr;
        }
        nr++;
    }
    return nr;
}

START_TEST(pack_deals_slots_to_workers_in_turn)
{
    nem_pack_env_t env = {.world_size = 3, .process_pool = 2};
    int sizes[5] = {1, 1, 1, 1, 1}, round_of[5];
    nem_round_t r[4];
    ck_assert_int_eq(nem_pack_workers(&env), 2);
    ck_assert_uint_eq(nem_pack_slots(&env), 4);
    ck_assert_int_eq(pack_all(&env, sizes, 5, round_of, r, 4), 2);
    ck_assert_uint_eq(r[0].n_tasks, 4);
    ck_assert_uint_eq(r[1].n_tasks, 1);
    int want[4] = {1, 2, 1, 2};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(r[0].tasks[i].rank, want[i]);
        ck_assert_uint_eq(r[0].tasks[i].position, (size_t)i);
        ck_assert_int_eq(r[0].tasks[i].group, -1);
        ck_assert_ptr_null(r[0].tasks[i].shard);
    }
    ck_assert_int_eq(r[1].tasks[0].rank, 1); /* a new round starts at the first worker */
    ck_assert_int_eq(r[1].round, 2);
    nem_round_clear(&r[0]);
    nem_round_clear(&r[1]);
}
END_TEST

START_TEST(pack_one_rank_runs_everything)
{
    nem_pack_env_t env = {.world_size = 1, .process_pool = 3};
    int sizes[7] = {1, 1, 1, 1, 1, 1, 1}, round_of[7];
    nem_round_t r[4];
    ck_assert_uint_eq(nem_pack_slots(&env), 3);
    ck_assert_int_eq(pack_all(&env, sizes, 7, round_of, r, 4), 3); /* uneven: 3, 3, 1 */
    ck_assert_uint_eq(r[2].n_tasks, 1);
    for (int i = 0; i < 3; i++) {
        for (size_t t = 0; t < r[i].n_tasks; t++)
            ck_assert_int_eq(r[i].tasks[t].rank, 0);
        nem_round_clear(&r[i]);
    }
}
END_TEST

START_TEST(pack_group_that_does_not_fit_starts_the_next_round)
{
    char hosts[3 * 8] = "";
    strcpy(hosts + 0, "zero");
    strcpy(hosts + 8, "a");
    strcpy(hosts + 16, "b");
    nem_pack_env_t env = {.world_size = 3, .process_pool = 2, .hosts = hosts, .host_len = 8};
    int sizes[4] = {1, 1, 3, 1}, round_of[4];
    nem_round_t r[4];
    ck_assert_int_eq(pack_all(&env, sizes, 4, round_of, r, 4), 2);
    ck_assert_int_eq(round_of[1], 0);
    ck_assert_int_eq(round_of[2], 1); /* 2 slots left, the group needs 3 */
    ck_assert_int_eq(round_of[3], 1);
    ck_assert_uint_eq(r[0].n_tasks, 2);
    ck_assert_uint_eq(r[1].n_tasks, 4);
    ck_assert_uint_eq(nem_round_groups(&r[1]), 1);
    /* members on ranks 1, 2, 1: hosts a, b, a */
    const nem_round_task_t *t = r[1].tasks;
    ck_assert_int_eq(t[0].rank, 1);
    ck_assert_int_eq(t[1].rank, 2);
    ck_assert_int_eq(t[2].rank, 1);
    for (int m = 0; m < 3; m++) {
        ck_assert_int_eq(t[m].member, m);
        ck_assert_int_eq(t[m].size, 3);
        ck_assert_int_eq(t[m].group, 0);
        ck_assert_str_eq(t[m].master, "a"); /* member 0's host, by name: the group spans two hosts */
    }
    ck_assert_int_eq(t[0].local_size, 2);
    ck_assert_int_eq(t[0].local_rank, 0);
    ck_assert_int_eq(t[2].local_rank, 1);
    ck_assert_int_eq(t[1].local_size, 1);
    ck_assert_int_eq(t[1].local_rank, 0);
    ck_assert_str_eq(t[1].shard, "{\"a\":1}");
    ck_assert_int_eq(t[3].group, -1);
    ck_assert_int_eq(t[3].rank, 2);
    nem_round_clear(&r[0]);
    nem_round_clear(&r[1]);
}
END_TEST

START_TEST(pack_group_on_one_host_meets_on_loopback)
{
    char hosts[3 * 8] = "";
    strcpy(hosts + 0, "n");
    strcpy(hosts + 8, "n");
    strcpy(hosts + 16, "n");
    nem_pack_env_t env = {.world_size = 3, .process_pool = 1, .hosts = hosts, .host_len = 8};
    int sizes[2] = {2, 2}, round_of[2];
    nem_round_t r[4];
    ck_assert_int_eq(pack_all(&env, sizes, 2, round_of, r, 4), 2);
    ck_assert_str_eq(r[0].tasks[0].master, "127.0.0.1");
    ck_assert_int_eq(r[0].tasks[1].local_rank, 1);
    ck_assert_int_eq(r[0].tasks[1].local_size, 2);
    nem_round_clear(&r[0]);
    nem_round_clear(&r[1]);
}
END_TEST

START_TEST(pack_group_larger_than_a_round_still_runs)
{
    /* app/run.c refuses it before a run; the packer never loops on one: the first unit always fits */
    nem_pack_env_t env = {.world_size = 2, .process_pool = 1};
    int sizes[2] = {3, 1}, round_of[2];
    nem_round_t r[4];
    ck_assert_int_eq(pack_all(&env, sizes, 2, round_of, r, 4), 2);
    ck_assert_uint_eq(r[0].n_tasks, 3);
    for (int m = 0; m < 3; m++)
        ck_assert_int_eq(r[0].tasks[m].rank, 1);
    nem_round_clear(&r[0]);
    nem_round_clear(&r[1]);
}
END_TEST

/* --- messages --- */

START_TEST(round_plan_round_trip)
{
    nem_pack_env_t env = {.world_size = 3, .process_pool = 2};
    nem_packer_t pk;
    nem_round_t r, back;
    char *shards[2] = {"{\"_id\":{\"$lt\":5}}", "{\"_id\":{\"$gte\":5}}"};
    int aborts[3] = {0, 2, 1};
    bson_t msg;
    bson_error_t err;
    nem_pack_begin(&pk, &env, &r, NEM_STAGE_LEARN, 7);
    nem_pack_add(&pk, 4, 1, NULL);
    ck_assert_int_eq(nem_pack_add(&pk, 5, 2, shards), 0);
    r.aborts = aborts;
    r.n_ranks = 3;
    nem_msg_round_encode(&r, &msg);
    r.aborts = NULL;
    ck_assert(nem_msg_round_decode(&msg, &back, &err));
    ck_assert(!back.end);
    ck_assert_int_eq(back.stage, NEM_STAGE_LEARN);
    ck_assert_int_eq(back.round, 7);
    ck_assert_uint_eq(back.n_tasks, 3);
    ck_assert_int_eq(back.n_ranks, 3);
    ck_assert_int_eq(back.aborts[1], 2);
    ck_assert_int_eq(back.aborts[2], 1);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_uint_eq(back.tasks[i].position, r.tasks[i].position);
        ck_assert_int_eq(back.tasks[i].rank, r.tasks[i].rank);
        ck_assert_int_eq(back.tasks[i].member, r.tasks[i].member);
        ck_assert_int_eq(back.tasks[i].size, r.tasks[i].size);
        ck_assert_int_eq(back.tasks[i].group, r.tasks[i].group);
        ck_assert_int_eq(back.tasks[i].local_rank, r.tasks[i].local_rank);
        ck_assert_int_eq(back.tasks[i].local_size, r.tasks[i].local_size);
    }
    ck_assert_ptr_null(back.tasks[0].shard);
    ck_assert_str_eq(back.tasks[2].shard, shards[1]);
    ck_assert_str_eq(back.tasks[2].master, "127.0.0.1");
    bson_destroy(&msg);
    nem_round_clear(&back);
    nem_round_clear(&r);

    nem_round_t end = {.end = true};
    nem_msg_round_encode(&end, &msg);
    ck_assert(nem_msg_round_decode(&msg, &back, &err));
    ck_assert(back.end);
    ck_assert_ptr_null(back.aborts);
    bson_destroy(&msg);
    nem_round_clear(&back);
}
END_TEST

START_TEST(round_plan_malformed_is_refused)
{
    bson_t msg = BSON_INITIALIZER, arr, t;
    nem_round_t back;
    bson_error_t err;
    BSON_APPEND_INT32(&msg, "v", NEM_MESSAGE_VERSION);
    BSON_APPEND_UTF8(&msg, "stage", "learn");
    BSON_APPEND_ARRAY_BEGIN(&msg, "tasks", &arr);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &t);
    BSON_APPEND_INT32(&t, "rank", 1); /* no position */
    bson_append_document_end(&arr, &t);
    bson_append_array_end(&msg, &arr);
    ck_assert(!nem_msg_round_decode(&msg, &back, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "malformed task 0"));
    bson_destroy(&msg);
    bson_init(&msg);
    BSON_APPEND_INT32(&msg, "v", NEM_MESSAGE_VERSION);
    ck_assert(!nem_msg_round_decode(&msg, &back, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "without a stage"));
    bson_destroy(&msg);
}
END_TEST

START_TEST(every_message_names_another_version)
{
    bson_t msg = BSON_INITIALIZER;
    bson_error_t err;
    nem_round_t r;
    nem_msg_hello_t h;
    nem_task_result_t res;
    nem_msg_abort_t a;
    uint64_t docs;
    char want[64];
    BSON_APPEND_INT32(&msg, "v", NEM_MESSAGE_VERSION + 1);
    snprintf(want, sizeof want, "version %d arrived", NEM_MESSAGE_VERSION + 1);
    ck_assert(!nem_msg_round_decode(&msg, &r, &err));
    ck_assert_ptr_nonnull(strstr(err.message, want));
    ck_assert_ptr_nonnull(strstr(err.message, "round plan"));
    ck_assert(!nem_msg_hello_decode(&msg, &h, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "hello"));
    ck_assert(!nem_msg_result_decode(&msg, &res, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "result"));
    ck_assert(!nem_msg_abort_decode(&msg, &a, &err));
    ck_assert(!nem_msg_progress_decode(&msg, &docs, &err));
    bson_destroy(&msg);
    bson_init(&msg); /* no version at all */
    ck_assert(!nem_msg_hello_decode(&msg, &h, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "version -1"));
    bson_destroy(&msg);
}
END_TEST

START_TEST(hello_progress_abort_round_trip)
{
    nem_msg_hello_t h = {.status = -1, .attempt = 3, .resumed = true, .legacy = false}, h2;
    nem_msg_abort_t a = {.round = 4, .group = 1}, a2;
    bson_t msg;
    bson_error_t err;
    uint64_t docs;
    bson_strncpy(h.run_id, "0123456789abcdef01234567", sizeof h.run_id);
    nem_msg_hello_encode(&h, &msg);
    ck_assert(nem_msg_hello_decode(&msg, &h2, &err));
    ck_assert_int_eq(h2.status, -1);
    ck_assert_str_eq(h2.run_id, h.run_id);
    ck_assert_int_eq(h2.attempt, 3);
    ck_assert(h2.resumed && !h2.legacy);
    bson_destroy(&msg);
    nem_msg_progress_encode(UINT64_C(12345678901), &msg);
    ck_assert(nem_msg_progress_decode(&msg, &docs, &err));
    ck_assert_uint_eq(docs, UINT64_C(12345678901));
    bson_destroy(&msg);
    bson_strncpy(a.why, "member 1 of the learner group of 2 failed (rank 2 on b)", sizeof a.why);
    nem_msg_abort_encode(&a, &msg);
    ck_assert(nem_msg_abort_decode(&msg, &a2, &err));
    ck_assert_int_eq(a2.round, 4);
    ck_assert_int_eq(a2.group, 1);
    ck_assert_str_eq(a2.why, a.why);
    bson_destroy(&msg);
}
END_TEST

START_TEST(result_round_trip)
{
    nem_task_result_t r = {.stage = NEM_STAGE_LEARN, .position = 2, .ok = false, .started_ms = 1000,
                           .ended_ms = 2500, .documents = 40, .models = 1, .rank = 3, .member = 1,
                           .group_size = 2, .group_stopped = true, .consumed = 99, .n_metrics = 2,
                           .interrupted = true};
    nem_task_result_t back;
    bson_t msg;
    bson_error_t err;
    bson_strncpy(r.error, "exit status 1", sizeof r.error);
    bson_strncpy(r.host, "node7", sizeof r.host);
    bson_strncpy(r.consumed_digest, "ab", sizeof r.consumed_digest);
    bson_strncpy(r.model, "65f000000000000000000001", sizeof r.model);
    bson_strncpy(r.metrics[0].name, "loss", sizeof r.metrics[0].name);
    r.metrics[0].value = 0.25;
    r.metrics[0].step = 10;
    bson_strncpy(r.metrics[1].name, "accuracy", sizeof r.metrics[1].name);
    r.metrics[1].value = 0.875;
    bson_strncpy(r.metrics[1].model, "65f000000000000000000002", sizeof r.metrics[1].model);
    nem_msg_result_encode(&r, &msg);
    ck_assert(nem_msg_result_decode(&msg, &back, &err));
    ck_assert_int_eq(back.stage, r.stage);
    ck_assert_uint_eq(back.position, 2);
    ck_assert(!back.ok);
    ck_assert_int_eq(back.started_ms, 1000);
    ck_assert_int_eq(back.ended_ms, 2500);
    ck_assert_uint_eq(back.documents, 40);
    ck_assert_uint_eq(back.models, 1);
    ck_assert_int_eq(back.rank, 3);
    ck_assert_str_eq(back.host, "node7");
    ck_assert_str_eq(back.error, "exit status 1");
    ck_assert_int_eq(back.member, 1);
    ck_assert_int_eq(back.group_size, 2);
    ck_assert(back.group_stopped);
    ck_assert(back.interrupted);
    ck_assert_int_eq(back.consumed, 99);
    ck_assert_str_eq(back.consumed_digest, "ab");
    ck_assert_str_eq(back.model, r.model);
    ck_assert_uint_eq(back.n_metrics, 2);
    ck_assert_str_eq(back.metrics[1].name, "accuracy");
    ck_assert_double_eq(back.metrics[1].value, 0.875);
    ck_assert_str_eq(back.metrics[1].model, r.metrics[1].model);
    ck_assert_int_eq(back.metrics[0].step, 10);
    bson_destroy(&msg);
    /* the run record's entry carries no message version */
    nem_task_result_to_bson(&r, "learner.py", &msg);
    ck_assert(!bson_has_field(&msg, "v"));
    ck_assert(bson_has_field(&msg, "path"));
    ck_assert(!bson_has_field(&msg, "interrupted")); /* a message's only: the record says failed, and why */
    bson_destroy(&msg);
}
END_TEST

/* --- the learner group header --- */

/* The group's combined header, as MPI_MAX over the ranks' headers gives it. */
static void combine(const nem_group_header_t *hs, int n, int64_t out[NEM_GROUP_HEADER_LEN])
{
    int64_t one[NEM_GROUP_HEADER_LEN];
    for (int i = 0; i < n; i++) {
        nem_group_header_encode(&hs[i], one);
        for (int k = 0; k < NEM_GROUP_HEADER_LEN; k++)
            out[k] = i == 0 || one[k] > out[k] ? one[k] : out[k];
    }
}

START_TEST(group_header_verdicts)
{
    int64_t in[NEM_GROUP_HEADER_LEN], a, b;
    nem_group_header_t h;
    nem_group_header_t same[3] = {{.count = 10, .dtype = 1, .op = 0}, {.count = 10, .dtype = 1, .op = 0},
                                  {.count = 10, .dtype = 1, .op = 0}};
    combine(same, 3, in);
    ck_assert_int_eq(nem_group_header_decode(in, 3, &h, &a, &b), NEM_GROUP_REDUCE);
    ck_assert_uint_eq(h.count, 10);
    ck_assert_uint_eq(h.dtype, 1);

    nem_group_header_t counts[2] = {{.count = 10, .dtype = 1}, {.count = 12, .dtype = 1}};
    combine(counts, 2, in);
    ck_assert_int_eq(nem_group_header_decode(in, 2, &h, &a, &b), NEM_GROUP_DISAGREE);
    ck_assert_int_eq(a, 10);
    ck_assert_int_eq(b, 12);

    nem_group_header_t ops[2] = {{.count = 10, .op = 1}, {.count = 10, .op = 2}};
    combine(ops, 2, in);
    ck_assert_int_eq(nem_group_header_decode(in, 2, &h, &a, &b), NEM_GROUP_DISAGREE);

    nem_group_header_t failed[2] = {{.count = 10}, {.ended = true, .failed = 2}};
    combine(failed, 2, in);
    ck_assert_int_eq(nem_group_header_decode(in, 2, &h, &a, &b), NEM_GROUP_MEMBER_FAILED);
    ck_assert_int_eq(a, 1);

    nem_group_header_t unnamed[2] = {{.ended = true, .failed = 3}, {.count = 4}};
    combine(unnamed, 2, in);
    ck_assert_int_eq(nem_group_header_decode(in, 2, &h, &a, &b), NEM_GROUP_FAILED);

    nem_group_header_t early[2] = {{.ended = true}, {.count = 4}};
    combine(early, 2, in);
    ck_assert_int_eq(nem_group_header_decode(in, 2, &h, &a, &b), NEM_GROUP_ENDED_REDUCING);

    nem_group_header_t done[2] = {{.ended = true}, {.ended = true}};
    combine(done, 2, in);
    ck_assert_int_eq(nem_group_header_decode(in, 2, &h, &a, &b), NEM_GROUP_OVER);

    /* another version on one rank: max(v) and max(-v) disagree */
    combine(same, 2, in);
    in[1] = -(NEM_MESSAGE_VERSION - 1 > 0 ? NEM_MESSAGE_VERSION - 1 : 0);
    in[0] = NEM_MESSAGE_VERSION + 1;
    ck_assert_int_eq(nem_group_header_decode(in, 2, &h, &a, &b), NEM_GROUP_VERSION);
}
END_TEST

/* --- the writer's batching (store/bulk.c) --- */

/* Sends docs of the given sizes through the batching rule; batch_of[i] receives the batch each went into. */
static size_t batches(const size_t *sizes, size_t n, size_t max_docs, size_t max_bytes, size_t *batch_of,
                      size_t *bytes_of)
{
    size_t nb = 0, docs = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (nem_batch_flush_before(docs, bytes, sizes[i], max_bytes))
            bytes_of[nb++] = bytes, docs = bytes = 0;
        batch_of[i] = nb;
        docs++, bytes += sizes[i];
        if (nem_batch_full(docs, bytes, max_docs, max_bytes))
            bytes_of[nb++] = bytes, docs = bytes = 0;
    }
    if (docs)
        bytes_of[nb++] = bytes;
    return nb;
}

START_TEST(writer_batches_by_count_and_bytes)
{
    size_t of[16], bytes[16];
    size_t small[7] = {10, 10, 10, 10, 10, 10, 10};
    ck_assert_uint_eq(batches(small, 7, 3, 1000, of, bytes), 3); /* 3 + 3 + 1 by count */
    ck_assert_uint_eq(of[2], 0);
    ck_assert_uint_eq(of[3], 1);
    ck_assert_uint_eq(of[6], 2);
    size_t mixed[5] = {40, 40, 30, 100, 5};
    ck_assert_uint_eq(batches(mixed, 5, 100, 100, of, bytes), 4);
    ck_assert_uint_eq(bytes[0], 80);  /* 30 more would pass 100: sent first */
    ck_assert_uint_eq(bytes[1], 30);  /* the same before the 100 */
    ck_assert_uint_eq(bytes[2], 100); /* full at exactly the budget: sent at once */
    ck_assert_uint_eq(bytes[3], 5);
    ck_assert_uint_eq(of[3], 2);
    size_t huge[3] = {5, 500, 5};
    ck_assert_uint_eq(batches(huge, 3, 100, 100, of, bytes), 3);
    ck_assert_uint_eq(bytes[1], 500); /* one document larger than the budget goes alone */
    ck_assert_uint_eq(of[2], 2);
    for (size_t i = 0; i < 16; i++)
        of[i] = 99;
    ck_assert_uint_eq(batches(huge, 0, 100, 100, of, bytes), 0);
}
END_TEST

/* --- the end-of-run summary --- */

START_TEST(summary_table_and_json)
{
    nem_script_plan_t scripts[2] = {{.path = "/work/learn/a.py"}, {.path = "b.sh"}};
    nem_run_plan_t plan = {0};
    plan.stages[NEM_STAGE_LEARN].enabled = true;
    plan.stages[NEM_STAGE_LEARN].n = 2;
    plan.stages[NEM_STAGE_LEARN].scripts = scripts;
    nem_summary_t *s = nem_summary_new(&plan, "R1", 2);
    nem_task_result_t ok = {.stage = NEM_STAGE_LEARN, .position = 0, .ok = true, .started_ms = 1000,
                            .ended_ms = 3500, .documents = 7, .models = 1, .rank = 1, .member = -1,
                            .group_size = 1, .consumed = -1};
    nem_task_result_t bad = ok;
    bad.position = 1;
    bad.ok = false;
    bad.documents = 2;
    bad.models = 0;
    bson_strncpy(ok.host, "n1", sizeof ok.host);
    bson_strncpy(bad.host, "n2", sizeof bad.host);
    bson_strncpy(bad.error, "exit status 3", sizeof bad.error);
    size_t at[2] = {0, 1};
    nem_summary_round(s, NEM_STAGE_LEARN, at, 2);
    nem_summary_add(s, &ok);
    nem_summary_add(s, &bad);
    ck_assert_uint_eq(nem_summary_failed(s), 1);

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    nem_summary_print(s, out);
    fclose(out);
    ck_assert_ptr_nonnull(strstr(text, "run R1: 2 script(s), 1 failed"));
    ck_assert_ptr_nonnull(strstr(text, "script"));
    char *row0 = strstr(text, "learn-0"), *row1 = strstr(text, "learn-1");
    ck_assert_ptr_nonnull(row0);
    ck_assert_ptr_nonnull(row1);
    ck_assert_ptr_nonnull(strstr(row0, "succeeded"));
    ck_assert(strstr(row0, "succeeded") < row1);
    ck_assert_ptr_nonnull(strstr(row1, "failed"));
    ck_assert_ptr_nonnull(strstr(row1, "exit status 3"));
    ck_assert_ptr_nonnull(strstr(row0, "a.py")); /* the file name, not the whole path */
    ck_assert_ptr_null(strstr(text, "/work/learn"));
    free(text);

    char path[] = "/tmp/nem-summary-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    bson_error_t err;
    ck_assert_msg(nem_summary_write_json(s, NEM_STATUS_FAILED, path, &err), "%s", err.message);
    bson_json_reader_t *rd = bson_json_reader_new_from_file(path, &err);
    ck_assert_ptr_nonnull(rd);
    bson_t doc = BSON_INITIALIZER;
    ck_assert_int_eq(bson_json_reader_read(rd, &doc, &err), 1);
    bson_iter_t it;
    ck_assert(bson_iter_init_find(&it, &doc, "status"));
    ck_assert_str_eq(bson_iter_utf8(&it, NULL), "failed");
    ck_assert(bson_iter_init_find(&it, &doc, "scripts_total"));
    ck_assert_int_eq(bson_iter_as_int64(&it), 2);
    ck_assert(bson_iter_init_find(&it, &doc, "scripts_failed"));
    ck_assert_int_eq(bson_iter_as_int64(&it), 1);
    ck_assert(bson_iter_init_find(&it, &doc, "documents"));
    ck_assert_int_eq(bson_iter_as_int64(&it), 9);
    bson_destroy(&doc);
    bson_json_reader_destroy(rd);
    unlink(path);
    /* a path it cannot write is an error naming it, not a crash */
    ck_assert(!nem_summary_write_json(s, NEM_STATUS_FAILED, "/nonexistent-dir/x.json", &err));
    ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent-dir/x.json"));
    nem_summary_destroy(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stage");
    TCase *pack = tcase_create("pack"), *msg = tcase_create("messages"), *hdr = tcase_create("group header");
    TCase *sum = tcase_create("summary");
    tcase_add_test(sum, summary_table_and_json);
    tcase_add_test(sum, writer_batches_by_count_and_bytes);
    tcase_add_test(pack, pack_deals_slots_to_workers_in_turn);
    tcase_add_test(pack, pack_one_rank_runs_everything);
    tcase_add_test(pack, pack_group_that_does_not_fit_starts_the_next_round);
    tcase_add_test(pack, pack_group_on_one_host_meets_on_loopback);
    tcase_add_test(pack, pack_group_larger_than_a_round_still_runs);
    tcase_add_test(msg, round_plan_round_trip);
    tcase_add_test(msg, round_plan_malformed_is_refused);
    tcase_add_test(msg, every_message_names_another_version);
    tcase_add_test(msg, hello_progress_abort_round_trip);
    tcase_add_test(msg, result_round_trip);
    tcase_add_test(hdr, group_header_verdicts);
    suite_add_tcase(s, pack);
    suite_add_tcase(s, msg);
    suite_add_tcase(s, hdr);
    suite_add_tcase(s, sum);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
