/* The messages of a run (message.h): codecs, then how they travel. */
#include "stage/message.h"

#include <mpi.h>
#include <string.h>

#include "util/exitcodes.h"
#include "util/status.h"

#define VERSION_KEY "v"

/* Every decoder's first check. */
static bool check_version(const bson_t *msg, const char *what, bson_error_t *err)
{
    bson_iter_t it;
    int64_t v = bson_iter_init_find(&it, msg, VERSION_KEY) && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it)
                                                                                           : -1;
    if (v == NEM_MESSAGE_VERSION)
        return true;
    bson_set_error(err, 0, 0, "a %s message of version %" PRId64 " arrived; this nemesyst speaks version %d: every "
                   "rank of a run must run the same nemesyst", what, v, NEM_MESSAGE_VERSION);
    return false;
}

static void begin(bson_t *out)
{
    bson_init(out);
    BSON_APPEND_INT32(out, VERSION_KEY, NEM_MESSAGE_VERSION);
}

/* --- result --- */

static void result_fields(const nem_task_result_t *r, const char *path, bson_t *out)
{
    BSON_APPEND_UTF8(out, "stage", nem_stage_name(r->stage));
    BSON_APPEND_INT64(out, "position", (int64_t)r->position);
    if (path)
        BSON_APPEND_UTF8(out, "path", path);
    BSON_APPEND_UTF8(out, "status", nem_status_name(nem_status_of_script(r->ok)));
    BSON_APPEND_DATE_TIME(out, "started", r->started_ms);
    BSON_APPEND_DATE_TIME(out, "ended", r->ended_ms);
    BSON_APPEND_INT64(out, "documents", (int64_t)r->documents);
    BSON_APPEND_INT64(out, "models", (int64_t)r->models);
    BSON_APPEND_INT32(out, "rank", r->rank);
    BSON_APPEND_UTF8(out, "host", r->host);
    if (r->ok)
        BSON_APPEND_NULL(out, "error");
    else
        BSON_APPEND_UTF8(out, "error", r->error);
    if (r->group_size > 1) {
        if (r->member >= 0) {
            BSON_APPEND_INT32(out, "member", r->member);
            BSON_APPEND_BOOL(out, "group_stopped", r->group_stopped);
        }
        BSON_APPEND_INT32(out, "group_size", r->group_size);
    }
    if (r->consumed >= 0) {
        bson_t c;
        BSON_APPEND_DOCUMENT_BEGIN(out, "consumed", &c);
        BSON_APPEND_INT64(&c, "count", r->consumed);
        BSON_APPEND_UTF8(&c, "digest", r->consumed_digest);
        bson_append_document_end(out, &c);
    }
    if (r->model[0]) {
        bson_oid_t oid;
        bson_oid_init_from_string(&oid, r->model);
        BSON_APPEND_OID(out, "model", &oid);
    }
    if (r->n_metrics) {
        bson_t arr, m;
        char key[16];
        const char *k;
        BSON_APPEND_ARRAY_BEGIN(out, "metrics", &arr);
        for (size_t i = 0; i < r->n_metrics && i < NEM_RESULT_METRICS; i++) {
            bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
            BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &m);
            BSON_APPEND_UTF8(&m, "name", r->metrics[i].name);
            BSON_APPEND_DOUBLE(&m, "value", r->metrics[i].value);
            BSON_APPEND_INT64(&m, "step", r->metrics[i].step);
            if (r->metrics[i].model[0]) {
                bson_oid_t oid;
                bson_oid_init_from_string(&oid, r->metrics[i].model);
                BSON_APPEND_OID(&m, "model", &oid);
            }
            bson_append_document_end(&arr, &m);
        }
        bson_append_array_end(out, &arr);
    }
}

void nem_task_result_to_bson(const nem_task_result_t *r, const char *path, bson_t *out)
{
    bson_init(out);
    result_fields(r, path, out);
}

void nem_msg_result_encode(const nem_task_result_t *r, bson_t *out)
{
    begin(out);
    result_fields(r, NULL, out);
    if (r->interrupted)
        BSON_APPEND_BOOL(out, "interrupted", true);
}

static void metrics_from_bson(nem_task_result_t *r, bson_iter_t *arr)
{
    bson_iter_t e, f;
    if (!BSON_ITER_HOLDS_ARRAY(arr) || !bson_iter_recurse(arr, &e))
        return;
    while (bson_iter_next(&e) && r->n_metrics < NEM_RESULT_METRICS) {
        nem_result_metric_t *m = &r->metrics[r->n_metrics];
        if (!BSON_ITER_HOLDS_DOCUMENT(&e) || !bson_iter_recurse(&e, &f))
            continue;
        while (bson_iter_next(&f)) {
            const char *k = bson_iter_key(&f);
            if (!strcmp(k, "name") && BSON_ITER_HOLDS_UTF8(&f))
                bson_strncpy(m->name, bson_iter_utf8(&f, NULL), sizeof m->name);
            else if (!strcmp(k, "value") && BSON_ITER_HOLDS_NUMBER(&f))
                m->value = bson_iter_as_double(&f);
            else if (!strcmp(k, "step") && BSON_ITER_HOLDS_NUMBER(&f))
                m->step = bson_iter_as_int64(&f);
            else if (!strcmp(k, "model") && BSON_ITER_HOLDS_OID(&f))
                bson_oid_to_string(bson_iter_oid(&f), m->model);
        }
        if (m->name[0])
            r->n_metrics++;
    }
}

bool nem_task_result_from_bson(nem_task_result_t *r, const bson_t *doc)
{
    bson_iter_t it;
    memset(r, 0, sizeof *r);
    r->member = -1;
    r->group_size = 1;
    r->consumed = -1;
    if (!bson_iter_init(&it, doc))
        return false;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!strcmp(k, "stage") && BSON_ITER_HOLDS_UTF8(&it))
            nem_stage_from_name(bson_iter_utf8(&it, NULL), &r->stage);
        else if (!strcmp(k, "position"))
            r->position = (size_t)bson_iter_as_int64(&it);
        else if (!strcmp(k, "status") && BSON_ITER_HOLDS_UTF8(&it))
            r->ok = nem_status_parse(bson_iter_utf8(&it, NULL)) == NEM_STATUS_SUCCEEDED;
        else if (!strcmp(k, "started") && BSON_ITER_HOLDS_DATE_TIME(&it))
            r->started_ms = bson_iter_date_time(&it);
        else if (!strcmp(k, "ended") && BSON_ITER_HOLDS_DATE_TIME(&it))
            r->ended_ms = bson_iter_date_time(&it);
        else if (!strcmp(k, "documents"))
            r->documents = (uint64_t)bson_iter_as_int64(&it);
        else if (!strcmp(k, "models"))
            r->models = (uint64_t)bson_iter_as_int64(&it);
        else if (!strcmp(k, "rank"))
            r->rank = (int)bson_iter_as_int64(&it);
        else if (!strcmp(k, "host") && BSON_ITER_HOLDS_UTF8(&it))
            bson_strncpy(r->host, bson_iter_utf8(&it, NULL), sizeof r->host);
        else if (!strcmp(k, "error") && BSON_ITER_HOLDS_UTF8(&it))
            bson_strncpy(r->error, bson_iter_utf8(&it, NULL), sizeof r->error);
        else if (!strcmp(k, "metrics"))
            metrics_from_bson(r, &it);
        else if (!strcmp(k, "member"))
            r->member = (int)bson_iter_as_int64(&it);
        else if (!strcmp(k, "group_size"))
            r->group_size = (int)bson_iter_as_int64(&it);
        else if (!strcmp(k, "group_stopped"))
            r->group_stopped = bson_iter_as_bool(&it);
        else if (!strcmp(k, "interrupted"))
            r->interrupted = bson_iter_as_bool(&it);
        else if (!strcmp(k, "model") && BSON_ITER_HOLDS_OID(&it))
            bson_oid_to_string(bson_iter_oid(&it), r->model);
        else if (!strcmp(k, "consumed") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bson_iter_t c;
            bson_iter_recurse(&it, &c);
            while (bson_iter_next(&c)) {
                if (!strcmp(bson_iter_key(&c), "count"))
                    r->consumed = bson_iter_as_int64(&c);
                else if (!strcmp(bson_iter_key(&c), "digest") && BSON_ITER_HOLDS_UTF8(&c))
                    bson_strncpy(r->consumed_digest, bson_iter_utf8(&c, NULL), sizeof r->consumed_digest);
            }
        }
    }
    return true;
}

bool nem_msg_result_decode(const bson_t *msg, nem_task_result_t *r, bson_error_t *err)
{
    if (!check_version(msg, "result", err))
        return false;
    return nem_task_result_from_bson(r, msg);
}

/* --- hello --- */

void nem_msg_hello_encode(const nem_msg_hello_t *h, bson_t *out)
{
    begin(out);
    BSON_APPEND_INT32(out, "status", h->status);
    BSON_APPEND_UTF8(out, "run", h->run_id);
    BSON_APPEND_INT64(out, "attempt", h->attempt);
    BSON_APPEND_BOOL(out, "resumed", h->resumed);
    BSON_APPEND_BOOL(out, "legacy", h->legacy);
}

bool nem_msg_hello_decode(const bson_t *msg, nem_msg_hello_t *h, bson_error_t *err)
{
    bson_iter_t it;
    memset(h, 0, sizeof *h);
    h->status = -1;
    if (!check_version(msg, "hello", err))
        return false;
    if (bson_iter_init_find(&it, msg, "status"))
        h->status = (int)bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, msg, "run") && BSON_ITER_HOLDS_UTF8(&it))
        bson_strncpy(h->run_id, bson_iter_utf8(&it, NULL), sizeof h->run_id);
    if (bson_iter_init_find(&it, msg, "attempt"))
        h->attempt = bson_iter_as_int64(&it);
    h->resumed = bson_iter_init_find(&it, msg, "resumed") && bson_iter_as_bool(&it);
    h->legacy = bson_iter_init_find(&it, msg, "legacy") && bson_iter_as_bool(&it);
    return true;
}

/* --- round plan --- */

static void append_aborts(const nem_round_t *r, bson_t *out)
{
    bson_t arr;
    char key[16];
    const char *k;
    if (!r->aborts)
        return;
    BSON_APPEND_ARRAY_BEGIN(out, "aborts", &arr);
    for (int i = 0; i < r->n_ranks; i++) {
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        BSON_APPEND_INT32(&arr, k, r->aborts[i]);
    }
    bson_append_array_end(out, &arr);
}

void nem_msg_round_encode(const nem_round_t *r, bson_t *out)
{
    begin(out);
    if (r->end) {
        BSON_APPEND_BOOL(out, "end", true);
        append_aborts(r, out);
        return;
    }
    bson_t arr, t;
    char key[16];
    const char *k;
    BSON_APPEND_UTF8(out, "stage", nem_stage_name(r->stage));
    BSON_APPEND_INT32(out, "round", r->round);
    BSON_APPEND_ARRAY_BEGIN(out, "tasks", &arr);
    for (size_t i = 0; i < r->n_tasks; i++) {
        const nem_round_task_t *task = &r->tasks[i];
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &t);
        BSON_APPEND_INT64(&t, "position", (int64_t)task->position);
        BSON_APPEND_INT32(&t, "rank", task->rank);
        if (task->group >= 0) {
            BSON_APPEND_INT32(&t, "member", task->member);
            BSON_APPEND_INT32(&t, "size", task->size);
            BSON_APPEND_INT32(&t, "group", task->group);
            BSON_APPEND_INT32(&t, "local_rank", task->local_rank);
            BSON_APPEND_INT32(&t, "local_size", task->local_size);
            BSON_APPEND_UTF8(&t, "master", task->master ? task->master : "");
            BSON_APPEND_UTF8(&t, "shard", task->shard ? task->shard : "");
        }
        bson_append_document_end(&arr, &t);
    }
    bson_append_array_end(out, &arr);
    append_aborts(r, out);
}

static bool read_task(bson_iter_t *doc, nem_round_task_t *t)
{
    bson_iter_t f;
    memset(t, 0, sizeof *t);
    t->member = t->group = -1;
    t->size = t->local_size = 1;
    if (!BSON_ITER_HOLDS_DOCUMENT(doc) || !bson_iter_recurse(doc, &f))
        return false;
    bool position = false, rank = false;
    while (bson_iter_next(&f)) {
        const char *k = bson_iter_key(&f);
        if (!strcmp(k, "position") && BSON_ITER_HOLDS_NUMBER(&f))
            t->position = (size_t)bson_iter_as_int64(&f), position = true;
        else if (!strcmp(k, "rank") && BSON_ITER_HOLDS_NUMBER(&f))
            t->rank = (int)bson_iter_as_int64(&f), rank = true;
        else if (!strcmp(k, "member"))
            t->member = (int)bson_iter_as_int64(&f);
        else if (!strcmp(k, "size"))
            t->size = (int)bson_iter_as_int64(&f);
        else if (!strcmp(k, "group"))
            t->group = (int)bson_iter_as_int64(&f);
        else if (!strcmp(k, "local_rank"))
            t->local_rank = (int)bson_iter_as_int64(&f);
        else if (!strcmp(k, "local_size"))
            t->local_size = (int)bson_iter_as_int64(&f);
        else if (!strcmp(k, "master") && BSON_ITER_HOLDS_UTF8(&f))
            t->master = bson_strdup(bson_iter_utf8(&f, NULL));
        else if (!strcmp(k, "shard") && BSON_ITER_HOLDS_UTF8(&f))
            t->shard = bson_strdup(bson_iter_utf8(&f, NULL));
    }
    return position && rank && t->size >= 1 && (t->group < 0 || (t->member >= 0 && t->member < t->size));
}

bool nem_msg_round_decode(const bson_t *msg, nem_round_t *r, bson_error_t *err)
{
    bson_iter_t it, arr;
    memset(r, 0, sizeof *r);
    if (!check_version(msg, "round plan", err))
        return false;
    if (bson_iter_init_find(&it, msg, "aborts") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr)) {
        bson_iter_t count = arr;
        while (bson_iter_next(&count))
            r->n_ranks++;
        r->aborts = bson_malloc0(((size_t)r->n_ranks + 1) * sizeof *r->aborts);
        for (int i = 0; i < r->n_ranks && bson_iter_next(&arr); i++)
            r->aborts[i] = (int)bson_iter_as_int64(&arr);
    }
    if (bson_iter_init_find(&it, msg, "end")) {
        r->end = true;
        return true;
    }
    if (!bson_iter_init_find(&it, msg, "stage") || !BSON_ITER_HOLDS_UTF8(&it) ||
        !nem_stage_from_name(bson_iter_utf8(&it, NULL), &r->stage)) {
        bson_set_error(err, 0, 0, "a round plan without a stage arrived");
        nem_round_clear(r);
        return false;
    }
    if (bson_iter_init_find(&it, msg, "round"))
        r->round = (int)bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, msg, "tasks") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr)) {
        /* As many as the round holds: a large --process-pool must not drop any. */
        bson_iter_t count = arr;
        size_t n = 0;
        while (bson_iter_next(&count))
            n++;
        r->tasks = bson_malloc0((n + 1) * sizeof *r->tasks);
        while (bson_iter_next(&arr) && r->n_tasks < n)
            if (!read_task(&arr, &r->tasks[r->n_tasks++])) {
                bson_set_error(err, 0, 0, "round %d's plan has a malformed task %zu", r->round, r->n_tasks - 1);
                nem_round_clear(r);
                return false;
            }
    }
    return true;
}

void nem_round_clear(nem_round_t *r)
{
    for (size_t i = 0; i < r->n_tasks; i++) {
        bson_free(r->tasks[i].master);
        bson_free(r->tasks[i].shard);
    }
    bson_free(r->tasks);
    bson_free(r->aborts);
    memset(r, 0, sizeof *r);
}

size_t nem_round_groups(const nem_round_t *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_tasks; i++)
        if (r->tasks[i].group >= 0 && (size_t)r->tasks[i].group + 1 > n)
            n = (size_t)r->tasks[i].group + 1;
    return n;
}

/* --- progress and abort --- */

void nem_msg_progress_encode(uint64_t documents, bson_t *out)
{
    begin(out);
    BSON_APPEND_INT64(out, "documents", (int64_t)documents);
}

bool nem_msg_progress_decode(const bson_t *msg, uint64_t *documents, bson_error_t *err)
{
    bson_iter_t it;
    *documents = 0;
    if (!check_version(msg, "progress", err))
        return false;
    if (bson_iter_init_find(&it, msg, "documents") && BSON_ITER_HOLDS_NUMBER(&it))
        *documents = (uint64_t)bson_iter_as_int64(&it);
    return true;
}

void nem_msg_abort_encode(const nem_msg_abort_t *a, bson_t *out)
{
    begin(out);
    BSON_APPEND_INT32(out, "round", a->round);
    BSON_APPEND_INT32(out, "group", a->group);
    BSON_APPEND_UTF8(out, "why", a->why);
}

bool nem_msg_abort_decode(const bson_t *msg, nem_msg_abort_t *a, bson_error_t *err)
{
    bson_iter_t it;
    memset(a, 0, sizeof *a);
    a->round = a->group = -1;
    if (!check_version(msg, "abort", err))
        return false;
    if (bson_iter_init_find(&it, msg, "round"))
        a->round = (int)bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, msg, "group"))
        a->group = (int)bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, msg, "why") && BSON_ITER_HOLDS_UTF8(&it))
        bson_strncpy(a->why, bson_iter_utf8(&it, NULL), sizeof a->why);
    return true;
}

/* --- the learner group header --- */

enum { H_VERSION, H_NVERSION, H_COUNT, H_NCOUNT, H_DTYPE, H_NDTYPE, H_OP, H_NOP, H_ENDED, H_FAILED };

void nem_group_header_encode(const nem_group_header_t *h, int64_t out[NEM_GROUP_HEADER_LEN])
{
    memset(out, 0, NEM_GROUP_HEADER_LEN * sizeof *out);
    out[H_VERSION] = NEM_MESSAGE_VERSION, out[H_NVERSION] = -NEM_MESSAGE_VERSION;
    out[H_ENDED] = h->ended;
    out[H_FAILED] = h->failed;
    if (h->failed)
        return;
    if (h->count) {
        out[H_COUNT] = (int64_t)h->count, out[H_NCOUNT] = -(int64_t)h->count;
        out[H_DTYPE] = h->dtype, out[H_NDTYPE] = -(int64_t)h->dtype;
        out[H_OP] = h->op, out[H_NOP] = -(int64_t)h->op;
    }
}

nem_group_verdict_t nem_group_header_decode(const int64_t in[NEM_GROUP_HEADER_LEN], int size,
                                            nem_group_header_t *h, int64_t *a, int64_t *b)
{
    int64_t maxc = in[H_COUNT], minc = -in[H_NCOUNT];
    memset(h, 0, sizeof *h);
    *a = *b = 0;
    if (in[H_VERSION] != -in[H_NVERSION]) {
        *a = -in[H_NVERSION], *b = in[H_VERSION];
        return NEM_GROUP_VERSION;
    }
    if (in[H_FAILED] > size)
        return NEM_GROUP_FAILED;
    if (in[H_FAILED] > 0) {
        *a = in[H_FAILED] - 1;
        return NEM_GROUP_MEMBER_FAILED;
    }
    if (in[H_ENDED]) {
        return maxc > 0 ? NEM_GROUP_ENDED_REDUCING : NEM_GROUP_OVER;
    }
    if (maxc != minc || in[H_DTYPE] != -in[H_NDTYPE] || in[H_OP] != -in[H_NOP]) {
        *a = minc, *b = maxc;
        return NEM_GROUP_DISAGREE;
    }
    h->count = (uint64_t)maxc;
    h->dtype = (uint32_t)in[H_DTYPE];
    h->op = (uint32_t)in[H_OP];
    return NEM_GROUP_REDUCE;
}

/* --- how they travel --- */

void nem_msg_bcast(const nem_world_t *world, bson_t *msg)
{
    uint32_t len = world->rank == 0 ? msg->len : 0;
    nem_mpi_bcast(&len, 1, MPI_UINT32_T, 0);
    uint8_t *buf = bson_malloc(len);
    if (world->rank == 0)
        memcpy(buf, bson_get_data(msg), len);
    nem_mpi_bcast(buf, (int)len, MPI_BYTE, 0);
    if (world->rank != 0) {
        bson_t tmp;
        if (!bson_init_static(&tmp, buf, len))
            nem_world_abort(NEM_EXIT_FAILURE);
        bson_copy_to(&tmp, msg);
    }
    bson_free(buf);
}

void nem_msg_send(const bson_t *msg, int dest, int tag)
{
    MPI_Send(msg ? bson_get_data(msg) : NULL, msg ? (int)msg->len : 0, MPI_BYTE, dest, tag, MPI_COMM_WORLD);
}

bool nem_msg_recv(int source, int tag, int len, bson_t *msg)
{
    uint8_t *buf = bson_malloc(len > 0 ? (size_t)len : 1);
    bson_t tmp;
    MPI_Recv(buf, len, MPI_BYTE, source, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    bool ok = len > 0 && bson_init_static(&tmp, buf, (size_t)len);
    if (ok)
        bson_copy_to(&tmp, msg);
    else
        bson_init(msg);
    bson_free(buf);
    return ok;
}
