/* Task results: what a worker reports for one script, and the run record's per-script entry. */
#include "stage/stage.h"

#include <string.h>
#include <sys/time.h>

void nem_task_result_to_bson(const nem_task_result_t *r, const char *path, bson_t *out)
{
    bson_init(out);
    BSON_APPEND_UTF8(out, "stage", nem_stage_name(r->stage));
    BSON_APPEND_INT64(out, "position", (int64_t)r->position);
    if (path)
        BSON_APPEND_UTF8(out, "path", path);
    BSON_APPEND_UTF8(out, "status", r->ok ? "succeeded" : "failed");
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
            r->ok = strcmp(bson_iter_utf8(&it, NULL), "succeeded") == 0;
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
