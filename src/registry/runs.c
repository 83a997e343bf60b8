/* `runs`: the run records (provenance.h: nemesyst_runs), one row each, newest first. */
#include "registry/registry.h"

#include <string.h>

#include "provenance/provenance.h"
#include "util/exitcodes.h"

void nem_reg_run_row(const nem_reg_t *r, const bson_t *record, bson_t *out)
{
    bson_t hosts, scripts;
    bson_iter_t it;
    int64_t age = 0, ok = 0, failed = 0;
    const char *status = nem_reg_str(record, "status", "?");
    /* lost as --list-runs says: an expired heartbeat, or a rank 0 of this host that has ended (util/procinfo.h) */
    bool lost = nem_runrec_is_lost(record, r->now_ms, &age);
    int64_t started = nem_reg_date(record, "started"), ended = nem_reg_date(record, "ended");
    /* How long it ran: to its end, to now while it lives, to its last heartbeat once lost. */
    int64_t until = ended != INT64_MIN ? ended
                    : lost             ? nem_reg_date(record, "heartbeat")
                    : strcmp(status, "running") == 0 ? r->now_ms
                                                     : INT64_MIN;

    bson_init(out);
    BSON_APPEND_UTF8(out, "id", nem_reg_str(record, "_id", "?"));
    BSON_APPEND_UTF8(out, "status", lost ? "lost" : status);
    BSON_APPEND_UTF8(out, "recorded_status", status);
    nem_reg_append_date(out, "started", started);
    nem_reg_append_date(out, "ended", ended);
    if (started != INT64_MIN && until != INT64_MIN)
        BSON_APPEND_INT64(out, "duration_ms", until - started);
    else
        BSON_APPEND_NULL(out, "duration_ms");
    if (strcmp(status, "running") == 0)
        BSON_APPEND_INT64(out, "heartbeat_age_ms", age);
    /* hosts: one per rank in the record; each host once here, in rank order */
    nem_strv_t seen = {0};
    uint32_t nh = 0;
    bson_t all;
    BSON_APPEND_ARRAY_BEGIN(out, "hosts", &hosts);
    if (nem_reg_sub(record, "hosts", &all) && bson_iter_init(&it, &all))
        while (bson_iter_next(&it)) {
            bool dup = false;
            if (!BSON_ITER_HOLDS_UTF8(&it))
                continue;
            for (size_t i = 0; i < seen.n && !dup; i++)
                dup = strcmp(seen.v[i], bson_iter_utf8(&it, NULL)) == 0;
            if (!dup) {
                nem_strv_push(&seen, bson_iter_utf8(&it, NULL));
                nem_reg_push_str(&hosts, &nh, bson_iter_utf8(&it, NULL));
            }
        }
    bson_append_array_end(out, &hosts);
    nem_strv_free(&seen);
    BSON_APPEND_INT64(out, "ranks", nem_reg_int(record, "ranks", 0));
    if (nem_reg_sub(record, "scripts", &scripts) && bson_iter_init(&it, &scripts))
        while (bson_iter_next(&it)) {
            bson_iter_t f;
            if (BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &f) && bson_iter_find(&f, "status") &&
                BSON_ITER_HOLDS_UTF8(&f))
                (*(strcmp(bson_iter_utf8(&f, NULL), "succeeded") == 0 ? &ok : &failed))++;
        }
    BSON_APPEND_INT64(out, "scripts_ok", ok);
    BSON_APPEND_INT64(out, "scripts_failed", failed);
    const char *error = nem_reg_str(record, "error", NULL);
    if (error)
        BSON_APPEND_UTF8(out, "error", error);
    else
        BSON_APPEND_NULL(out, "error");
    BSON_APPEND_UTF8(out, "version", nem_reg_str(record, "version", "?"));
}

static const char *duration_text(const bson_t *row, char *buf, size_t n)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, row, "duration_ms") || !BSON_ITER_HOLDS_INT64(&it)) {
        snprintf(buf, n, "-");
        return buf;
    }
    double s = (double)bson_iter_int64(&it) / 1000.0;
    if (s < 60)
        snprintf(buf, n, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
    return buf;
}

static char *hosts_text(const bson_t *row)
{
    bson_t hosts;
    bson_iter_t it;
    bson_string_t *s = bson_string_new("");
    if (nem_reg_sub(row, "hosts", &hosts) && bson_iter_init(&it, &hosts))
        while (bson_iter_next(&it))
            bson_string_append_printf(s, "%s%s", s->len ? "," : "", bson_iter_utf8(&it, NULL));
    return bson_string_free(s, false);
}

void nem_reg_print_run_row(FILE *out, const bson_t *row)
{
    char dur[32];
    char *hosts = hosts_text(row);
    fprintf(out, "%-26s %-24s %9s %-11s %4" PRId64 " %6" PRId64 "  %s\n", nem_reg_str(row, "id", "?"),
            nem_reg_str(row, "started", "-"), duration_text(row, dur, sizeof dur), nem_reg_str(row, "status", "?"),
            nem_reg_int(row, "scripts_ok", 0), nem_reg_int(row, "scripts_failed", 0), hosts);
    bson_free(hosts);
}

void nem_reg_print_run_header(FILE *out)
{
    fprintf(out, "%-26s %-24s %9s %-11s %4s %6s  %s\n", "run", "started", "duration", "status", "ok", "failed",
            "hosts");
}

typedef struct {
    const nem_reg_t *r;
    bson_t *rows;
    uint32_t n;
} rows_t;

static bool add_row(const bson_t *record, void *ud, bson_error_t *err)
{
    rows_t *rows = ud;
    bson_t row, child;
    (void)err;
    nem_reg_run_row(rows->r, record, &row);
    nem_reg_push_doc(rows->rows, &rows->n, &child);
    bson_concat(&child, &row);
    bson_append_document_end(rows->rows, &child);
    bson_destroy(&row);
    return true;
}

int nem_reg_runs(nem_reg_t *r)
{
    bson_t report = BSON_INITIALIZER, rows;
    bson_error_t err;
    BSON_APPEND_ARRAY_BEGIN(&report, "runs", &rows);
    rows_t ud = {r, &rows, 0};
    bool ok = nem_reg_each_run(r->store, false, add_row, &ud, &err);
    bson_append_array_end(&report, &rows);
    if (!ok) {
        bson_destroy(&report);
        return nem_reg_fail(&err);
    }
    if (r->json) {
        nem_reg_print_json(r->out, &report);
    } else {
        bson_iter_t it;
        nem_reg_print_run_header(r->out);
        if (nem_reg_sub(&report, "runs", &rows) && bson_iter_init(&it, &rows))
            while (bson_iter_next(&it)) {
                bson_t row;
                if (nem_reg_sub(&rows, bson_iter_key(&it), &row))
                    nem_reg_print_run_row(r->out, &row);
            }
    }
    bson_destroy(&report);
    return NEM_EXIT_OK;
}
