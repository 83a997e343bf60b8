/* The run listing (runlist.h): rows from run records, one table for --list-runs and nemesyst-registry. */
#include "runrec/runlist.h"

#include <string.h>

#include "runrec/runrec.h"
#include "util/clock.h"
#include "util/status.h"
#include "util/strv.h"
#include "util/table.h"

bool nem_runlist_each(nem_store_t *store, bool with_options, nem_doc_cb cb, void *ud, bson_error_t *err)
{
    return nem_runlist_find(store, NULL, with_options, cb, ud, err);
}

bool nem_runlist_find(nem_store_t *store, const bson_t *query, bool with_options, nem_doc_cb cb, void *ud,
                      bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER;
    /* a batch of a bounded size: the reply the driver holds does not grow with the number of runs */
    bson_t *opts = with_options ? BCON_NEW("sort", "{", "started", BCON_INT32(-1), "}", "batchSize", BCON_INT32(64))
                                : BCON_NEW("sort", "{", "started", BCON_INT32(-1), "}", "projection", "{", "options",
                                           BCON_INT32(0), "resume_options", BCON_INT32(0), "}", "batchSize",
                                           BCON_INT32(64));
    bool ok = nem_store_find(store, NEM_RUNS_COLLECTION, query ? query : &filter, opts, cb, ud, err);
    bson_destroy(opts);
    bson_destroy(&filter);
    return ok;
}

/* Top-level fields of a record, tolerant of missing ones and other types. */
static const char *str_of(const bson_t *doc, const char *key, const char *dflt)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : dflt;
}

static int64_t date_of(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_DATE_TIME(&it) ? bson_iter_date_time(&it)
                                                                               : INT64_MIN;
}

static int64_t int_of(const bson_t *doc, const char *key, int64_t dflt)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : dflt;
}

static void append_date(bson_t *doc, const char *key, int64_t ms)
{
    char buf[32];
    if (ms == INT64_MIN)
        BSON_APPEND_NULL(doc, key);
    else
        BSON_APPEND_UTF8(doc, key, nem_iso_ms(ms, buf));
}

void nem_runlist_append_span(bson_t *out, int64_t started, int64_t ended, int64_t until, const char *duration_key)
{
    append_date(out, "started", started);
    append_date(out, "ended", ended);
    if (started != INT64_MIN && until != INT64_MIN)
        BSON_APPEND_INT64(out, duration_key, until - started);
    else
        BSON_APPEND_NULL(out, duration_key);
}

/* Each host once, in rank order. */
static void append_hosts(const bson_t *record, bson_t *out)
{
    bson_iter_t it, h;
    bson_t hosts;
    nem_strv_t seen = {0};
    BSON_APPEND_ARRAY_BEGIN(out, "hosts", &hosts);
    if (bson_iter_init_find(&it, record, "hosts") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &h))
        while (bson_iter_next(&h)) {
            bool dup = false;
            if (!BSON_ITER_HOLDS_UTF8(&h))
                continue;
            for (size_t i = 0; i < seen.n && !dup; i++)
                dup = strcmp(seen.v[i], bson_iter_utf8(&h, NULL)) == 0;
            if (!dup) {
                char key[16];
                const char *k;
                bson_uint32_to_string((uint32_t)seen.n, &k, key, sizeof key);
                BSON_APPEND_UTF8(&hosts, k, bson_iter_utf8(&h, NULL));
                nem_strv_push(&seen, bson_iter_utf8(&h, NULL));
            }
        }
    bson_append_array_end(out, &hosts);
    nem_strv_free(&seen);
}

void nem_runlist_row(const bson_t *record, int64_t now_ms, bson_t *out)
{
    bson_iter_t it, s, f;
    int64_t age = 0, ok = 0, failed = 0;
    const char *status = str_of(record, "status", "?");
    bool running = nem_status_parse(status) == NEM_STATUS_RUNNING;
    bool lost = nem_runrec_is_lost(record, now_ms, &age);
    int64_t started = date_of(record, "started"), ended = date_of(record, "ended");
    /* How long it ran: to its end, to now while it lives, to its last heartbeat once lost. */
    int64_t until = ended != INT64_MIN ? ended : lost ? date_of(record, "heartbeat") : running ? now_ms : INT64_MIN;

    bson_init(out);
    BSON_APPEND_UTF8(out, "id", str_of(record, "_id", "?"));
    const char *name = str_of(record, "name", NULL);
    if (name)
        BSON_APPEND_UTF8(out, "name", name);
    else
        BSON_APPEND_NULL(out, "name");
    bson_t tags;
    BSON_APPEND_DOCUMENT_BEGIN(out, "tags", &tags);
    if (bson_iter_init_find(&it, record, "tags") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &s))
        while (bson_iter_next(&s))
            if (BSON_ITER_HOLDS_UTF8(&s))
                bson_append_iter(&tags, NULL, 0, &s);
    bson_append_document_end(out, &tags);
    /* a run of a sweep: {name, index} (its overrides are in `run` and `diff`) */
    bson_iter_t sw;
    if (bson_iter_init_find(&it, record, "sweep") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        bson_t sweep;
        BSON_APPEND_DOCUMENT_BEGIN(out, "sweep", &sweep);
        if (bson_iter_recurse(&it, &sw) && bson_iter_find(&sw, "name") && BSON_ITER_HOLDS_UTF8(&sw))
            BSON_APPEND_UTF8(&sweep, "name", bson_iter_utf8(&sw, NULL));
        if (bson_iter_recurse(&it, &sw) && bson_iter_find(&sw, "index") && BSON_ITER_HOLDS_NUMBER(&sw))
            BSON_APPEND_INT64(&sweep, "index", bson_iter_as_int64(&sw));
        bson_append_document_end(out, &sweep);
    } else {
        BSON_APPEND_NULL(out, "sweep");
    }
    BSON_APPEND_UTF8(out, "status", lost ? nem_status_name(NEM_STATUS_LOST) : status);
    BSON_APPEND_UTF8(out, "recorded_status", status);
    nem_runlist_append_span(out, started, ended, until, "duration_ms");
    if (running)
        BSON_APPEND_INT64(out, "heartbeat_age_ms", age);
    append_hosts(record, out);
    BSON_APPEND_INT64(out, "ranks", int_of(record, "ranks", 0));
    if (bson_iter_init_find(&it, record, "scripts") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &s))
        while (bson_iter_next(&s))
            if (BSON_ITER_HOLDS_DOCUMENT(&s) && bson_iter_recurse(&s, &f) && bson_iter_find(&f, "status") &&
                BSON_ITER_HOLDS_UTF8(&f))
                (*(nem_status_parse(bson_iter_utf8(&f, NULL)) == NEM_STATUS_SUCCEEDED ? &ok : &failed))++;
    BSON_APPEND_INT64(out, "scripts_ok", ok);
    BSON_APPEND_INT64(out, "scripts_failed", failed);
    int64_t attempts = 0; /* the jobs that ran it (a record from before attempts were kept: one) */
    if (bson_iter_init_find(&it, record, "attempts") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &s))
        while (bson_iter_next(&s))
            attempts++;
    BSON_APPEND_INT64(out, "attempts", attempts ? attempts : 1);
    const char *error = str_of(record, "error", NULL);
    if (error)
        BSON_APPEND_UTF8(out, "error", error);
    else
        BSON_APPEND_NULL(out, "error");
    BSON_APPEND_UTF8(out, "version", str_of(record, "version", "?"));
}

typedef struct {
    int64_t now_ms;
    bson_t *rows;
    uint32_t n;
    size_t lost;
    int status; /* keep rows shown with this status (nem_status_t), or -1 */
} rows_t;

static bool add_row(const bson_t *record, void *ud, bson_error_t *err)
{
    rows_t *r = ud;
    bson_t row;
    char key[16];
    const char *k;
    (void)err;
    nem_runlist_row(record, r->now_ms, &row);
    if (r->status >= 0 && nem_status_parse(str_of(&row, "status", "")) != (nem_status_t)r->status) {
        bson_destroy(&row);
        return true;
    }
    r->lost += strcmp(str_of(&row, "status", ""), nem_status_name(NEM_STATUS_LOST)) == 0;
    bson_uint32_to_string(r->n++, &k, key, sizeof key);
    BSON_APPEND_DOCUMENT(r->rows, k, &row);
    bson_destroy(&row);
    return true;
}

bool nem_runlist_rows(nem_store_t *store, int64_t now_ms, bson_t *rows, size_t *lost, bson_error_t *err)
{
    return nem_runlist_rows_matching(store, now_ms, NULL, -1, rows, lost, err);
}

bool nem_runlist_rows_matching(nem_store_t *store, int64_t now_ms, const bson_t *query, int status, bson_t *rows,
                               size_t *lost, bson_error_t *err)
{
    rows_t r = {now_ms, rows, 0, 0, status};
    bool ok = nem_runlist_find(store, query, false, add_row, &r, err);
    if (lost)
        *lost = r.lost;
    return ok;
}

void nem_runlist_duration(int64_t ms, char *buf, size_t n)
{
    double s = (double)ms / 1000.0;
    if (s < 60)
        snprintf(buf, n, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

/* name and tags are what people chose: cut (with "...") so that one long one keeps the table readable; --json has
 * them whole. */
static const nem_table_col_t columns[] = {
    {"run", NEM_TABLE_LEFT, 0},       {"name", NEM_TABLE_LEFT, 24},      {"status", NEM_TABLE_LEFT, 0},
    {"started", NEM_TABLE_LEFT, 0},   {"duration", NEM_TABLE_RIGHT, 0},  {"heartbeat", NEM_TABLE_RIGHT, 0},
    {"attempts", NEM_TABLE_RIGHT, 0}, {"ok", NEM_TABLE_RIGHT, 0},        {"failed", NEM_TABLE_RIGHT, 0},
    {"hosts", NEM_TABLE_LEFT, 0},     {"tags", NEM_TABLE_LEFT, 40},      {"sweep", NEM_TABLE_LEFT, 40},
};

/* The last column, sweep (NAME[INDEX]), is there only when a run listed is of a sweep. */
#define N_COLUMNS (sizeof columns / sizeof *columns)

static bool row_has_sweep(const bson_t *row)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, row, "sweep") && BSON_ITER_HOLDS_DOCUMENT(&it);
}

static void add_cells(nem_table_t *t, const bson_t *row, bool sweep_column)
{
    bson_iter_t it, h;
    char dur[32] = "-", beat[32] = "-";
    if (bson_iter_init_find(&it, row, "duration_ms") && BSON_ITER_HOLDS_INT64(&it))
        nem_runlist_duration(bson_iter_int64(&it), dur, sizeof dur);
    if (bson_iter_init_find(&it, row, "heartbeat_age_ms") && BSON_ITER_HOLDS_INT64(&it))
        snprintf(beat, sizeof beat, "%.0fs ago", (double)bson_iter_int64(&it) / 1000.0);
    bson_string_t *hosts = bson_string_new("");
    if (bson_iter_init_find(&it, row, "hosts") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &h))
        while (bson_iter_next(&h))
            if (BSON_ITER_HOLDS_UTF8(&h))
                bson_string_append_printf(hosts, "%s%s", hosts->len ? "," : "", bson_iter_utf8(&h, NULL));
    bson_string_t *tags = bson_string_new("");
    if (bson_iter_init_find(&it, row, "tags") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &h))
        while (bson_iter_next(&h))
            if (BSON_ITER_HOLDS_UTF8(&h))
                bson_string_append_printf(tags, "%s%s=%s", tags->len ? "," : "", bson_iter_key(&h),
                                          bson_iter_utf8(&h, NULL));
    nem_table_add(t, str_of(row, "id", "?"));
    nem_table_add(t, str_of(row, "name", NULL));
    nem_table_add(t, str_of(row, "status", "?"));
    nem_table_add(t, str_of(row, "started", "-"));
    nem_table_add(t, dur);
    nem_table_add(t, beat);
    nem_table_addf(t, "%" PRId64, int_of(row, "attempts", 1));
    nem_table_addf(t, "%" PRId64, int_of(row, "scripts_ok", 0));
    nem_table_addf(t, "%" PRId64, int_of(row, "scripts_failed", 0));
    nem_table_add(t, hosts->str);
    nem_table_add(t, tags->len ? tags->str : NULL);
    bson_iter_t sw, sn, si;
    if (!sweep_column) {
        /* no column */
    } else if (bson_iter_init(&sw, row) && bson_iter_find_descendant(&sw, "sweep.name", &sn) && BSON_ITER_HOLDS_UTF8(&sn) &&
        bson_iter_init(&sw, row) && bson_iter_find_descendant(&sw, "sweep.index", &si) && BSON_ITER_HOLDS_NUMBER(&si))
        nem_table_addf(t, "%s[%" PRId64 "]", bson_iter_utf8(&sn, NULL), bson_iter_as_int64(&si));
    else
        nem_table_add(t, NULL);
    bson_string_free(hosts, true);
    bson_string_free(tags, true);
}

void nem_runlist_print(FILE *out, const bson_t *rows)
{
    bson_iter_t it;
    bool sweep_column = false;
    if (bson_iter_init(&it, rows))
        while (!sweep_column && bson_iter_next(&it)) {
            bson_t row;
            const uint8_t *data;
            uint32_t len;
            if (!BSON_ITER_HOLDS_DOCUMENT(&it))
                continue;
            bson_iter_document(&it, &len, &data);
            sweep_column = bson_init_static(&row, data, len) && row_has_sweep(&row);
        }
    nem_table_t *t = nem_table_new(columns, sweep_column ? N_COLUMNS : N_COLUMNS - 1);
    if (bson_iter_init(&it, rows))
        while (bson_iter_next(&it)) {
            bson_t row;
            const uint8_t *data;
            uint32_t len;
            if (!BSON_ITER_HOLDS_DOCUMENT(&it))
                continue;
            bson_iter_document(&it, &len, &data);
            if (bson_init_static(&row, data, len))
                add_cells(t, &row, sweep_column);
        }
    nem_table_print(t, out, NULL);
    nem_table_destroy(t);
}

void nem_runlist_print_one(FILE *out, const bson_t *row)
{
    bool sweep_column = row_has_sweep(row);
    nem_table_t *t = nem_table_new(columns, sweep_column ? N_COLUMNS : N_COLUMNS - 1);
    add_cells(t, row, sweep_column);
    nem_table_print(t, out, NULL);
    nem_table_destroy(t);
}

static const nem_table_col_t script_columns[] = {
    {"script", NEM_TABLE_LEFT, 0},     {"status", NEM_TABLE_LEFT, 0},    {"rank", NEM_TABLE_RIGHT, 0},
    {"host", NEM_TABLE_LEFT, 0},       {"seconds", NEM_TABLE_RIGHT, 0},  {"documents", NEM_TABLE_RIGHT, 0},
    {"models", NEM_TABLE_RIGHT, 0},    {"file", NEM_TABLE_LEFT, 0},      {"error", NEM_TABLE_LEFT, 0},
};

nem_table_t *nem_runlist_scripts_new(void)
{
    return nem_table_new(script_columns, sizeof script_columns / sizeof *script_columns);
}

void nem_runlist_scripts_add(nem_table_t *t, const nem_runlist_script_t *s)
{
    nem_table_add(t, s->key);
    nem_table_add(t, s->status);
    nem_table_addf(t, "%" PRId64, s->rank);
    nem_table_add(t, s->host);
    if (s->ms >= 0)
        nem_table_addf(t, "%.3f", (double)s->ms / 1000.0);
    else
        nem_table_add(t, NULL);
    nem_table_addf(t, "%" PRId64, s->documents);
    nem_table_addf(t, "%" PRId64, s->models);
    nem_table_add(t, s->file);
    nem_table_add(t, s->error ? s->error : "");
}

/* ---- the listing streamed: a run at a time, whatever the number of runs ---- */

typedef struct {
    nem_store_t *store;
    const bson_t *query;
    int64_t now_ms;
    int status;
    bool json;
    FILE *out;
    nem_table_t *t; /* the table, once its columns are known (NULL before) */
    bool sweep_column;
    bson_t pending; /* the rows before then: up to a block of them (NEM_TABLE_BLOCK) */
    uint32_t n_pending;
    uint32_t n;
    size_t lost;
} stream_t;

static bool has_sweep_run(const bson_t *row, void *ud, bson_error_t *err)
{
    (void)row;
    (void)err;
    *(bool *)ud = true;
    return false; /* one is enough */
}

/* Whether a run the query matches is of a sweep, asked of the server ({$and: [query, {sweep.name: {$type:
 * "string"}}]}, the first one found: sweep.name is indexed). */
static bool any_sweep_run(stream_t *s, bool *any, bson_error_t *err)
{
    bson_t with = BSON_INITIALIZER, empty = BSON_INITIALIZER, and, sweep, type;
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1), "projection", "{", "_id", BCON_INT32(1), "}");
    BSON_APPEND_ARRAY_BEGIN(&with, "$and", &and);
    BSON_APPEND_DOCUMENT(&and, "0", s->query ? s->query : &empty);
    BSON_APPEND_DOCUMENT_BEGIN(&and, "1", &sweep);
    BSON_APPEND_DOCUMENT_BEGIN(&sweep, "sweep.name", &type);
    BSON_APPEND_UTF8(&type, "$type", "string");
    bson_append_document_end(&sweep, &type);
    bson_append_document_end(&and, &sweep);
    bson_append_array_end(&with, &and);
    *any = false;
    bson_error_t e = {0};
    bool ok = nem_store_find(s->store, NEM_RUNS_COLLECTION, &with, opts, has_sweep_run, any, &e);
    if (!ok && *any)
        ok = true; /* stopped at the first: not an error */
    else if (!ok && err)
        *err = e;
    bson_destroy(opts);
    bson_destroy(&with);
    bson_destroy(&empty);
    return ok;
}

/* The table made, its columns known: the sweep column (the last, NAME[INDEX]) when a run listed is of a sweep. A
 * listing of up to a block of rows (NEM_TABLE_BLOCK) knows from its rows, as nem_runlist_print does, and is printed
 * whole; a longer one, whose first block is printed before its last row is read, asks the server once its
 * block-and-one-th row comes (ask), so that the records are read once but for that. The rows held go into it. */
static bool start_table(stream_t *s, bool ask, bson_error_t *err)
{
    bool sweep_column = false;
    bson_iter_t it;
    if (ask) {
        if (!any_sweep_run(s, &sweep_column, err))
            return false;
    } else if (bson_iter_init(&it, &s->pending)) {
        while (!sweep_column && bson_iter_next(&it)) {
            bson_t row;
            const uint8_t *data;
            uint32_t len;
            bson_iter_document(&it, &len, &data);
            sweep_column = bson_init_static(&row, data, len) && row_has_sweep(&row);
        }
    }
    s->sweep_column = sweep_column;
    s->t = nem_table_new(columns, sweep_column ? N_COLUMNS : N_COLUMNS - 1);
    /* the columns whose widest cell is known, so that a long listing stays aligned past its first block */
    nem_table_min_width(s->t, 0, strlen("20260102T030405Z-0123abcd"));
    nem_table_min_width(s->t, 2, strlen("interrupted"));
    nem_table_min_width(s->t, 3, strlen("2026-01-02T03:04:05.000Z"));
    if (bson_iter_init(&it, &s->pending))
        while (bson_iter_next(&it)) {
            bson_t row;
            const uint8_t *data;
            uint32_t len;
            bson_iter_document(&it, &len, &data);
            if (bson_init_static(&row, data, len))
                add_cells(s->t, &row, sweep_column);
        }
    bson_reinit(&s->pending);
    s->n_pending = 0;
    return true;
}

static bool stream_row(const bson_t *record, void *ud, bson_error_t *err)
{
    stream_t *s = ud;
    bson_t row;
    bool ok = true;
    nem_runlist_row(record, s->now_ms, &row);
    if (s->status < 0 || nem_status_parse(str_of(&row, "status", "")) == (nem_status_t)s->status) {
        s->lost += strcmp(str_of(&row, "status", ""), nem_status_name(NEM_STATUS_LOST)) == 0;
        if (s->json) {
            char *json = bson_as_relaxed_extended_json(&row, NULL);
            fprintf(s->out, "%s%s", s->n++ ? ", " : "", json ? json : "{}");
            bson_free(json);
        } else {
            if (!s->t && s->n_pending == NEM_TABLE_BLOCK)
                ok = start_table(s, true, err); /* a row past the first block: the server says */
            if (ok && !s->t) {
                char key[16];
                const char *k;
                bson_uint32_to_string(s->n_pending++, &k, key, sizeof key);
                BSON_APPEND_DOCUMENT(&s->pending, k, &row);
            } else if (ok) {
                add_cells(s->t, &row, s->sweep_column);
                nem_table_flush_full(s->t, s->out, NULL);
            }
        }
    }
    bson_destroy(&row);
    return ok;
}

bool nem_runlist_stream(nem_store_t *store, int64_t now_ms, const bson_t *query, int status, bool json, FILE *out,
                        size_t *lost, bson_error_t *err)
{
    stream_t s = {store, query, now_ms, status, json, out, NULL, false, BSON_INITIALIZER, 0, 0, 0};
    if (json)
        fprintf(out, "{ \"runs\" : [ ");
    /* one read of the records, newest first (the server sorts on its started index); a table's rows are held until
     * its columns are known (start_table), a block at most */
    bool ok = nem_runlist_find(store, query, false, stream_row, &s, err);
    if (json)
        fprintf(out, " ] }\n"); /* as bson_as_relaxed_extended_json spaces it; an error half-way leaves valid JSON, the error on stderr says the rest is missing */
    else if (ok && (s.t || (ok = start_table(&s, false, err))))
        nem_table_print(s.t, out, NULL);
    nem_table_destroy(s.t);
    bson_destroy(&s.pending);
    if (lost)
        *lost = s.lost;
    return ok;
}

/* --list-runs (provenance.h). */
bool nem_runrec_list(nem_store_t *store, FILE *out, size_t *lost, bson_error_t *err)
{
    return nem_runlist_stream(store, nem_wall_ms(), NULL, -1, false, out, lost, err);
}
