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
}

bool nem_task_result_from_bson(nem_task_result_t *r, const bson_t *doc)
{
    bson_iter_t it;
    memset(r, 0, sizeof *r);
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
    }
    return true;
}
