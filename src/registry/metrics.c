/* `metrics RUN_ID [--script KEY] [--plot FILE.png]`: the metric history scripts reported while they ran
 * (nemesyst_log_metric, db.log_metric, the $nemesyst_metric JSON line; provenance.h NEM_METRICS_COLLECTION), as a
 * table, JSON, or a plot drawn by gnuplot (Debian: gnuplot-nox) from the small gnuplot program below. */
#include "registry/registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "provenance/provenance.h"
#include "util/exitcodes.h"

typedef struct {
    bson_t *rows;
    uint32_t n;
    const bson_t *record; /* the run record: each script's stored model (scripts.KEY.model) */
} metrics_t;

/* The model a metric references: the one its script stored (the run record's scripts.KEY.model: every metric of a
 * learner is about the model it trained, which exists only once the script ends, so the metrics written while it
 * trained are never rewritten to say so), else the one the script had loaded when it reported the metric (a
 * predictor's test accuracy: the metric document's own model). */
static bool metric_model(const metrics_t *m, const bson_t *doc, bson_iter_t *out)
{
    bson_t scripts, entry;
    if (nem_reg_sub(m->record, "scripts", &scripts) && nem_reg_sub(&scripts, nem_reg_str(doc, "script", ""), &entry) &&
        bson_iter_init_find(out, &entry, "model") && BSON_ITER_HOLDS_OID(out))
        return true;
    return bson_iter_init_find(out, doc, "model");
}

static bool add_metric(const bson_t *doc, void *ud, bson_error_t *err)
{
    metrics_t *m = ud;
    bson_t row;
    bson_iter_t it;
    (void)err;
    nem_reg_push_doc(m->rows, &m->n, &row);
    BSON_APPEND_UTF8(&row, "script", nem_reg_str(doc, "script", "?"));
    BSON_APPEND_UTF8(&row, "name", nem_reg_str(doc, "name", "?"));
    BSON_APPEND_INT64(&row, "step", nem_reg_int(doc, "step", 0));
    if (bson_iter_init_find(&it, doc, "value") && BSON_ITER_HOLDS_NUMBER(&it))
        BSON_APPEND_DOUBLE(&row, "value", bson_iter_as_double(&it));
    nem_reg_append_date(&row, "t", nem_reg_date(doc, "t"));
    if (metric_model(m, doc, &it))
        BSON_APPEND_VALUE(&row, "model", bson_iter_value(&it));
    bson_append_document_end(m->rows, &row);
    return true;
}

/* The report {run, metrics: [{script, name, step, value, t, model}, ...]} in script, name, step order. */
static bool metrics_report(nem_reg_t *r, const char *run_id, const char *script, bson_t *out, bson_error_t *err)
{
    bson_t record, rows;
    if (!nem_reg_check_run_id(run_id, err) || !nem_reg_load_run(r->store, run_id, &record, err))
        return false;
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "run", run_id);
    if (script && script[0] && strspn(script, "0123456789") == strlen(script))
        BSON_APPEND_INT64(&filter, "position", strtoll(script, NULL, 10)); /* POS: that position in any stage */
    else if (script)
        BSON_APPEND_UTF8(&filter, "script", script);                        /* KEY: "learn-0" */
    bson_t *opts = BCON_NEW("sort", "{", "script", BCON_INT32(1), "name", BCON_INT32(1), "step", BCON_INT32(1),
                            "t", BCON_INT32(1), "}");
    bson_init(out);
    BSON_APPEND_UTF8(out, "run", run_id);
    BSON_APPEND_ARRAY_BEGIN(out, "metrics", &rows);
    metrics_t m = {&rows, 0, &record};
    bool ok = nem_store_find(r->store, NEM_METRICS_COLLECTION, &filter, opts, add_metric, &m, err);
    bson_destroy(&record);
    bson_append_array_end(out, &rows);
    bson_destroy(&filter);
    bson_destroy(opts);
    if (!ok)
        bson_destroy(out);
    return ok;
}

static const nem_table_col_t metric_columns[] = {
    {"script", NEM_TABLE_LEFT, 0}, {"metric", NEM_TABLE_LEFT, 0}, {"step", NEM_TABLE_RIGHT, 0},
    {"value", NEM_TABLE_RIGHT, 0}, {"time", NEM_TABLE_LEFT, 0},
};

static void print_table(FILE *out, const bson_t *report)
{
    bson_t rows, row;
    bson_iter_t it, v;
    nem_table_t *t = nem_table_new(metric_columns, sizeof metric_columns / sizeof *metric_columns);
    if (nem_reg_sub(report, "metrics", &rows) && bson_iter_init(&it, &rows))
        while (bson_iter_next(&it)) {
            if (!nem_reg_sub(&rows, bson_iter_key(&it), &row))
                continue;
            nem_table_add(t, nem_reg_str(&row, "script", "?"));
            nem_table_add(t, nem_reg_str(&row, "name", "?"));
            nem_table_addf(t, "%" PRId64, nem_reg_int(&row, "step", 0));
            nem_table_addf(t, "%.6g", bson_iter_init_find(&v, &row, "value") ? bson_iter_as_double(&v) : 0);
            nem_table_add(t, nem_reg_str(&row, "t", "-"));
        }
    nem_table_print(t, out, NULL);
    nem_table_destroy(t);
}

/* One data block per (script, metric) series: "step value" lines, blocks two blank lines apart (gnuplot's index),
 * and the series' titles in order. */
static size_t write_series(FILE *f, const bson_t *report, nem_strv_t *titles)
{
    bson_t rows;
    bson_iter_t it;
    char last[300] = "";
    if (!nem_reg_sub(report, "metrics", &rows) || !bson_iter_init(&it, &rows))
        return 0;
    while (bson_iter_next(&it)) {
        bson_t row;
        bson_iter_t v;
        const uint8_t *data;
        uint32_t len;
        char title[300];
        bson_iter_document(&it, &len, &data);
        if (!bson_init_static(&row, data, len) || !bson_iter_init_find(&v, &row, "value"))
            continue;
        snprintf(title, sizeof title, "%s %s", nem_reg_str(&row, "script", "?"), nem_reg_str(&row, "name", "?"));
        /* a title goes into gnuplot's program: a script's metric name must not be able to end the quotes */
        for (char *c = title; *c; c++)
            if (*c == '\'' || *c == '\\' || *c == '"' || (unsigned char)*c < 0x20)
                *c = '_';
        if (strcmp(title, last) != 0) {
            if (titles->n)
                fputs("\n\n", f);
            nem_strv_push(titles, title);
            snprintf(last, sizeof last, "%s", title);
        }
        fprintf(f, "%" PRId64 " %.17g\n", nem_reg_int(&row, "step", 0), bson_iter_as_double(&v));
    }
    return titles->n;
}

/* The plot: gnuplot reads the program on stdin; the data is in a private temporary file. */
static int plot(const bson_t *report, const char *run_id, const char *png)
{
    char data[] = "/tmp/nemesyst-metrics.XXXXXX";
    nem_strv_t titles = {0};
    int fd = mkstemp(data), status = NEM_EXIT_FAILURE;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "nemesyst-registry: error: --plot: cannot make a temporary file: %s\n", strerror(errno));
        return NEM_EXIT_FAILURE;
    }
    size_t n = write_series(f, report, &titles);
    fclose(f);
    if (n == 0) {
        fprintf(stderr, "nemesyst-registry: error: --plot: run %s reported no metrics\n", run_id);
        goto out;
    }
    FILE *gp = popen("gnuplot 2>&1", "w");
    if (!gp) {
        fprintf(stderr, "nemesyst-registry: error: --plot: cannot run gnuplot: %s\n", strerror(errno));
        goto out;
    }
    fprintf(gp, "set terminal png size 900,520 noenhanced\nset output '%s'\nset title 'metrics of run %s'\n"
                "set xlabel 'step'\nset ylabel 'value'\nset key outside right\nplot ",
            png, run_id);
    for (size_t i = 0; i < n; i++)
        fprintf(gp, "%s'%s' index %zu using 1:2 with linespoints title '%s'", i ? ", " : "", data, i,
                titles.v[i]);
    fputc('\n', gp);
    int rc = pclose(gp);
    if (rc != 0)
        fprintf(stderr, "nemesyst-registry: error: --plot: gnuplot failed (exit %d) drawing %s\n",
                WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, png);
    else
        status = NEM_EXIT_OK;
out:
    unlink(data);
    nem_strv_free(&titles);
    return status;
}

static bool on_path(const char *program)
{
    const char *path = getenv("PATH");
    char *copy = bson_strdup(path ? path : "/usr/bin:/bin"), *save = NULL;
    bool found = false;
    for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        char *p = bson_strdup_printf("%s/%s", *dir ? dir : ".", program);
        found = access(p, X_OK) == 0;
        bson_free(p);
    }
    bson_free(copy);
    return found;
}

int nem_reg_metric_history(nem_reg_t *r, const char *run_id)
{
    bson_t report;
    bson_error_t err;
    /* before any query: a missing tool is known now, not after reading every metric */
    if (r->plot && (!r->plot[0] || strpbrk(r->plot, "'\n\r\\"))) {
        fprintf(stderr, "nemesyst-registry: error: --plot: the file name '%s' may not hold quotes, backslashes or "
                        "line breaks\n", r->plot);
        return NEM_EXIT_USAGE;
    }
    if (r->plot && !on_path("gnuplot")) {
        fprintf(stderr, "nemesyst-registry: error: --plot needs gnuplot, which is not installed (Debian: "
                        "apt-get install gnuplot-nox)\n");
        return NEM_EXIT_USAGE;
    }
    if (!metrics_report(r, run_id, r->script, &report, &err))
        return nem_reg_fail(&err);
    int status = NEM_EXIT_OK;
    if (r->plot)
        status = plot(&report, run_id, r->plot);
    else if (r->json)
        nem_reg_print_json(r->out, &report);
    else
        print_table(r->out, &report);
    bson_destroy(&report);
    return status;
}
