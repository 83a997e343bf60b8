/* Summary table, JSON summary and progress lines. */
#include "stage/coordinator/summary.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "runrec/runlist.h"
#include "util/status.h"

struct nem_summary {
    const nem_run_plan_t *plan;
    char run_id[64];
    nem_task_result_t *results;
    size_t n, cap, total, failed;
    uint64_t documents;
    uint64_t live;           /* documents reported while their scripts ran */
    int64_t started_ms, last_progress_ms;
    uint64_t last_docs;      /* documents at the last progress line: the rate is the last interval's */
    struct running {
        nem_stage_t stage;
        size_t position;
        int64_t since_ms;
    } *running;              /* the current round's scripts that have not reported yet */
    size_t n_running;
};

nem_summary_t *nem_summary_new(const nem_run_plan_t *plan, const char *run_id, size_t total_scripts)
{
    nem_summary_t *s = bson_malloc0(sizeof *s);
    s->plan = plan;
    bson_strncpy(s->run_id, run_id, sizeof s->run_id);
    s->total = total_scripts;
    s->started_ms = s->last_progress_ms = nem_wall_ms();
    return s;
}

void nem_summary_add(nem_summary_t *s, const nem_task_result_t *r)
{
    if (s->n == s->cap)
        s->results = bson_realloc(s->results, (s->cap = s->cap * 2 + 8) * sizeof *s->results);
    s->results[s->n++] = *r;
    s->documents += r->documents;
    s->failed += !r->ok;
    for (size_t i = 0; i < s->n_running; i++)
        if (s->running[i].stage == r->stage && s->running[i].position == r->position) {
            s->running[i] = s->running[--s->n_running];
            break;
        }
}

static const char *path_of(const nem_summary_t *s, nem_stage_t stage, size_t position)
{
    const nem_script_plan_t *sp = nem_run_plan_script(s->plan, stage, position);
    return sp ? sp->path : NULL;
}

void nem_summary_round(nem_summary_t *s, nem_stage_t stage, const size_t *positions, size_t n)
{
    int64_t now = nem_wall_ms();
    s->running = bson_realloc(s->running, (n + 1) * sizeof *s->running);
    s->n_running = n;
    for (size_t i = 0; i < n; i++)
        s->running[i] = (struct running){stage, positions[i], now};
}

void nem_summary_progress(nem_summary_t *s, int64_t interval_ms)
{
    int64_t now = nem_wall_ms();
    if (now - s->last_progress_ms < interval_ms)
        return;
    double secs = (now - s->last_progress_ms) / 1000.0;
    s->last_progress_ms = now;
    /* Live counts run ahead of finished scripts' totals; rolled-back scripts make them an upper bound. */
    uint64_t docs = s->live > s->documents ? s->live : s->documents;
    double rate = secs > 0 && docs >= s->last_docs ? (docs - s->last_docs) / secs : 0.0;
    s->last_docs = docs;
    /* Which scripts are still running, and for how long: a script that hangs without a timeout is never silent. */
    bson_string_t *running = bson_string_new("");
    for (size_t i = 0; i < s->n_running && i < 4; i++) {
        const char *path = path_of(s, s->running[i].stage, s->running[i].position);
        const char *base = path ? strrchr(path, '/') : NULL;
        bson_string_append_printf(running, "%s %s[%zu] %s %.0f s", i ? "," : "; running:",
                                  nem_stage_name(s->running[i].stage), s->running[i].position,
                                  base ? base + 1 : path ? path : "?", (now - s->running[i].since_ms) / 1000.0);
    }
    if (s->n_running > 4)
        bson_string_append_printf(running, " and %zu more", s->n_running - 4);
    NEM_INFO("progress: %zu/%zu scripts done (%zu failed), %" PRIu64 " documents, %.1f documents/s%s", s->n,
             s->total, s->failed, docs, rate, running->str);
    bson_string_free(running, true);
}

void nem_summary_live(nem_summary_t *s, uint64_t documents)
{
    s->live += documents;
}

size_t nem_summary_failed(const nem_summary_t *s)
{
    return s->failed;
}

static const char *script_of(const nem_summary_t *s, const nem_task_result_t *r)
{
    const char *p = path_of(s, r->stage, r->position);
    return p ? p : "?";
}

void nem_summary_print(const nem_summary_t *s, FILE *out)
{
    nem_table_t *t = nem_runlist_scripts_new();
    fprintf(out, "\nrun %s: %zu script(s), %zu failed\n", s->run_id, s->n, s->failed);
    for (size_t i = 0; i < s->n; i++) {
        const nem_task_result_t *r = &s->results[i];
        char key[64];
        /* The file name, as a user knows the script (the run record and --summary-json hold the full path). */
        const char *path = script_of(s, r), *base = strrchr(path, '/');
        nem_script_key(r->stage, r->position, key, sizeof key);
        nem_runlist_scripts_add(t, &(nem_runlist_script_t){
            .key = key, .status = nem_status_name(nem_status_of_script(r->ok)), .host = r->host,
            .file = base && base[1] ? base + 1 : path, .error = r->ok ? NULL : r->error, .rank = r->rank,
            .ms = r->ended_ms - r->started_ms, .documents = (int64_t)r->documents, .models = (int64_t)r->models});
    }
    nem_table_print(t, out, NULL);
    nem_table_destroy(t);
}

bool nem_summary_write_json(const nem_summary_t *s, nem_status_t status, const char *path, bson_error_t *err)
{
    bson_t doc = BSON_INITIALIZER, arr;
    char key[16];
    const char *k;
    BSON_APPEND_UTF8(&doc, "run", s->run_id);
    BSON_APPEND_UTF8(&doc, "status", nem_status_name(status));
    BSON_APPEND_INT64(&doc, "scripts_total", (int64_t)s->n);
    BSON_APPEND_INT64(&doc, "scripts_failed", (int64_t)s->failed);
    BSON_APPEND_INT64(&doc, "documents", (int64_t)s->documents);
    BSON_APPEND_ARRAY_BEGIN(&doc, "scripts", &arr);
    for (size_t i = 0; i < s->n; i++) {
        bson_t entry;
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        nem_task_result_to_bson(&s->results[i], script_of(s, &s->results[i]), &entry);
        BSON_APPEND_DOCUMENT(&arr, k, &entry);
        bson_destroy(&entry);
    }
    bson_append_array_end(&doc, &arr);
    char *json = bson_as_relaxed_extended_json(&doc, NULL);
    bson_destroy(&doc);
    /* Write to a temporary name and rename, so a reader never sees half a file. */
    char *tmp = bson_strdup_printf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    bool ok = f && fputs(json, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0)
        ok = false;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        bson_set_error(err, NEM_ERROR_SUMMARY, NEM_SUMMARY_EWRITE, "cannot write --summary-json '%s': %s", path, strerror(errno));
        unlink(tmp);
    }
    bson_free(tmp);
    bson_free(json);
    return ok;
}

void nem_summary_destroy(nem_summary_t *s)
{
    if (!s)
        return;
    bson_free(s->results);
    bson_free(s->running);
    bson_free(s);
}
