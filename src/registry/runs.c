/* `runs`: the run records (runrec/runrec.h: nemesyst_runs), one row each, newest first: the one run listing
 * (runrec/runlist.h), which `nemesyst --list-runs` prints too; its filters (--name, --tag, --status, --since,
 * --until, --script) go into the query the server answers, so only the runs that match are read. */
#include "registry/registry.h"

#include <string.h>

#include "app/plan.h"
#include "config/config.h"
#include "runrec/runlist.h"
#include "util/clock.h"
#include "util/exitcodes.h"
#include "util/status.h"
#include "util/text.h"

static bool bad(bson_error_t *err, const char *option, const char *value, const char *why)
{
    char q[128];
    bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "runs %s '%s' %s", option,
                   nem_text_quote(value, q, sizeof q), why);
    return false;
}

static bool parse_time(const char *option, const char *text, bool until, int64_t *ms, bson_error_t *err)
{
    bool date_only = false;
    if (!nem_iso_parse(text, ms, &date_only))
        return bad(err, option, text, "is not an ISO 8601 date or date and time (2026-01-02, 2026-01-02T03:04:05Z, "
                                      "2026-01-02T03:04+01:00)");
    if (until && date_only)
        *ms += 86400000; /* --until a date: through that whole day */
    return true;
}

/* A regular expression matching text exactly, or as the last components of a path when it does not start at '/'. */
static char *path_regex(const char *path)
{
    bson_string_t *rx = bson_string_new(path[0] == '/' ? "^" : "(^|/)");
    for (const char *p = path; *p; p++) {
        if (strchr("\\^$.|?*+()[]{}", *p))
            bson_string_append_c(rx, '\\');
        bson_string_append_c(rx, *p);
    }
    bson_string_append_c(rx, '$');
    return bson_string_free(rx, false);
}

/* The runs whose stage ran with the script in its list: {$or: [{options.dl-learn: true, options.dl-learner: RX},
 * ...]}, each stage's switch and script list by their option names. */
static void append_script(bson_t *query, const char *script)
{
    bson_t or, alt;
    char *rx = path_regex(script);
    uint32_t n = 0;
    BSON_APPEND_ARRAY_BEGIN(query, "$or", &or);
    for (int s = 0; s < NEM_STAGE__COUNT; s++) {
        const nem_stage_options_t *so = nem_stage_options((nem_stage_t)s);
        char key[16], flag[128], list[128];
        const char *k;
        bson_uint32_to_string(n++, &k, key, sizeof key);
        snprintf(flag, sizeof flag, "options.%s", nem_options[so->flag].name);
        snprintf(list, sizeof list, "options.%s", nem_options[so->scripts].name);
        BSON_APPEND_DOCUMENT_BEGIN(&or, k, &alt);
        BSON_APPEND_BOOL(&alt, flag, true);
        BSON_APPEND_REGEX(&alt, list, rx, "");
        bson_append_document_end(&or, &alt);
    }
    bson_append_array_end(query, &or);
    bson_free(rx);
}

bool nem_reg_runs_filter(const nem_reg_runs_filter_t *f, bson_t *query, int *status, bson_error_t *err)
{
    char why[160];
    int want = -1;
    int64_t since = INT64_MIN, until = INT64_MIN;
    if (f->name && !nem_label_ok(f->name, NEM_LABEL_MAX, why, sizeof why))
        return bad(err, "--name", f->name, why);
    for (size_t i = 0; i < f->n_tags; i++) {
        char key[NEM_TAG_KEY_MAX + 1];
        const char *value;
        if (!nem_tag_split(f->tags[i], key, sizeof key, &value, why, sizeof why))
            return bad(err, "--tag", f->tags[i], why);
    }
    if (f->status) {
        nem_status_t st = nem_status_parse(f->status);
        if (st == NEM_STATUS_UNKNOWN)
            return bad(err, "--status", f->status, "is not a run status: one of succeeded, failed, interrupted, "
                                                   "running, lost");
        want = (int)st;
    }
    if (f->since && !parse_time("--since", f->since, false, &since, err))
        return false;
    if (f->until && !parse_time("--until", f->until, true, &until, err))
        return false;
    if (f->since && f->until && since >= until) {
        char q1[128], q2[128];
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                       "runs --since '%s' is not before --until '%s': no run can match", nem_text_quote(f->since, q1,
                       sizeof q1), nem_text_quote(f->until, q2, sizeof q2));
        return false;
    }
    if (f->script && !nem_label_ok(f->script, 4096, why, sizeof why))
        return bad(err, "--script", f->script, why);
    if (f->sweep && !nem_reg_check_sweep_name(f->sweep, err))
        return false;
    if (!query)
        return true;

    bson_init(query);
    if (f->name)
        BSON_APPEND_UTF8(query, "name", f->name);
    if (f->sweep)
        BSON_APPEND_UTF8(query, "sweep.name", f->sweep);
    for (size_t i = 0; i < f->n_tags; i++) {
        char key[NEM_TAG_KEY_MAX + 1], path[NEM_TAG_KEY_MAX + 8];
        const char *value;
        nem_tag_split(f->tags[i], key, sizeof key, &value, why, sizeof why);
        snprintf(path, sizeof path, "tags.%s", key); /* a key has no '.' and no leading '$': one field */
        BSON_APPEND_UTF8(query, path, value);
    }
    if (want >= 0)
        /* lost is shown, never stored: a lost run is recorded as running */
        BSON_APPEND_UTF8(query, "status",
                         nem_status_name(want == NEM_STATUS_LOST ? NEM_STATUS_RUNNING : (nem_status_t)want));
    if (f->since || f->until) {
        bson_t range;
        BSON_APPEND_DOCUMENT_BEGIN(query, "started", &range);
        if (f->since)
            BSON_APPEND_DATE_TIME(&range, "$gte", since);
        if (f->until)
            BSON_APPEND_DATE_TIME(&range, "$lt", until);
        bson_append_document_end(query, &range);
    }
    if (f->script)
        append_script(query, f->script);
    if (status)
        *status = want == NEM_STATUS_RUNNING || want == NEM_STATUS_LOST ? want : -1;
    return true;
}

bool nem_reg_check_sweep_name(const char *name, bson_error_t *err)
{
    char why[160], q[128];
    if (nem_label_ok(name, NEM_LABEL_MAX, why, sizeof why))
        return true;
    bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "--sweep '%s' %s: not a sweep's name",
                   nem_text_quote(name, q, sizeof q), why);
    return false;
}

int nem_reg_runs(nem_reg_t *r, const nem_reg_runs_filter_t *f)
{
    bson_t query;
    bson_error_t err;
    int status = -1;
    if (!nem_reg_runs_filter(f, &query, &status, &err))
        return nem_reg_fail(&err);
    /* streamed (runlist.h nem_runlist_stream): a run at a time, sorted by the server on its started index */
    bool ok = nem_runlist_stream(r->store, r->now_ms, &query, status, r->json, r->out, NULL, &err);
    bson_destroy(&query);
    return ok ? NEM_EXIT_OK : nem_reg_fail(&err);
}
