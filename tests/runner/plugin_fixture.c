/* The test plugin, built once like a user's would be (against libnemesyst only: tests/runner.mk) and shared by the
 * runner tests (tests/runner/test_runner.c), the stage tests (tests/stage/lib.sh), tests/store/tls.sh and the
 * valgrind and pkg-config tests: one entry point per behaviour they read back.
 *   main (nemesyst_main)  documents, options through the getters, a model from a buffer and one from a file
 *   clean                 NEM_T_COUNT documents (default 13) {i, kind, pos}, after NEM_T_SLEEP_MS milliseconds
 *   learn                 batches of the learner's pipeline per epoch, a metric "seen" per epoch; a model saying
 *                         what it saw
 *   predict               the newest model of the output bucket, fetched by id; 3 predictions made with it
 *   fetch_copy            the same model fetched and written to the file NEM_T_COPY names; one document with its
 *                         length and the process's peak memory (stage-large-model.sh)
 *   refuse, crash         failures after some output: the plugin's own error, a segmentation fault
 *   exit_early, quit_early  clean's documents, then exit(0) or _exit(0) before the host has them all
 *   unstorable_array, unstorable_key  two documents, then one FerretDB cannot store (rows.1.grid.0 an array in an
 *                         array; meta.a.b a key with '.'), then one more (stage-unstorable.sh)
 *   daemonize             leaves a daemon behind (fork, setsid, fork), its pid in NEM_T_DAEMON_DIR/plugin-RANK-POS,
 *                         then clean's documents and the end NEM_T_DAEMON_END names: ok, fail, hang, kill, wait
 *                         (tests/stage/stage-daemon.sh)
 *   checkpoint            a deterministic learner of NEM_T_STEPS steps (x = x * c + k / 1000) that loads its newest
 *                         checkpoint, saves one every NEM_T_EVERY steps, logs "x" each step and fails at step
 *                         NEM_T_DIE_AT in the run's first attempt, or when asked to stop (after a checkpoint);
 *                         NEM_T_SLEEP_MS between steps; its model is x's 8 bytes (stage-checkpoint.sh)
 *   gd                    full-batch gradient descent (least squares, the weights and a bias from zeros, a fixed
 *                         rate) on every document of --dl-data-collection through --dl-data-pipeline, {x: [..], y},
 *                         read once per attempt: NEM_T_STEPS steps, "loss" each step, the weights checkpointed every
 *                         NEM_T_EVERY; NEM_T_DIE_AT, NEM_T_SLEEP_MS and a stop request as checkpoint's; its model is
 *                         the weights (stage-checkpoint-data.sh, tests/slurm/slurm.sh)
 * clean, learn and predict append "stage-position" to the file NEM_T_RUNLOG names, when set. The knobs come from
 * the environment, which the runner passes through. */
#include <nemesyst.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error);
bool clean(nemesyst_ctx_t *ctx, bson_error_t *error);
bool learn(nemesyst_ctx_t *ctx, bson_error_t *error);
bool predict(nemesyst_ctx_t *ctx, bson_error_t *error);
bool fetch_copy(nemesyst_ctx_t *ctx, bson_error_t *error);
bool refuse(nemesyst_ctx_t *ctx, bson_error_t *error);
bool crash(nemesyst_ctx_t *ctx, bson_error_t *error);
bool exit_early(nemesyst_ctx_t *ctx, bson_error_t *error);
bool quit_early(nemesyst_ctx_t *ctx, bson_error_t *error);
bool unstorable_array(nemesyst_ctx_t *ctx, bson_error_t *error);
bool unstorable_key(nemesyst_ctx_t *ctx, bson_error_t *error);
bool daemonize(nemesyst_ctx_t *ctx, bson_error_t *error);
bool checkpoint(nemesyst_ctx_t *ctx, bson_error_t *error);
bool gd(nemesyst_ctx_t *ctx, bson_error_t *error);

static void note_run(nemesyst_ctx_t *ctx)
{
    const char *log = getenv("NEM_T_RUNLOG");
    FILE *f;
    if (log && *log && (f = fopen(log, "a"))) {
        fprintf(f, "%s-%zu\n", nemesyst_stage(ctx), nemesyst_position(ctx));
        fclose(f);
    }
}

/* Documents, options through the getters, a model from a buffer and one from a file, a log line; a document with
 * a $ key must be refused. */
bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    int64_t batch = 0;
    const char *coll = NULL;
    bool ok;
    if (!nemesyst_opt_int(ctx, "dl-batch-size", &batch, error) || !nemesyst_opt_str(ctx, "data_collection", &coll, error))
        return false;
    nemesyst_log(ctx, NEMESYST_LOG_WARN, "plugin at position %zu", nemesyst_position(ctx));
    bson_t *doc = BCON_NEW("stage", BCON_UTF8(nemesyst_stage(ctx)), "position", BCON_INT64((int64_t)nemesyst_position(ctx)),
                           "run", BCON_UTF8(nemesyst_run_id(ctx)), "batch", BCON_INT64(batch), "coll", BCON_UTF8(coll));
    ok = nemesyst_emit(ctx, doc, error);
    bson_destroy(doc);
    bson_t *bad = BCON_NEW("$set", "{", "a", BCON_INT32(1), "}");
    bson_error_t expect;
    if (ok && nemesyst_emit(ctx, bad, &expect)) {
        bson_set_error(error, 1, 1, "a $ key was accepted");
        ok = false;
    }
    bson_destroy(bad);
    bson_t *meta = BCON_NEW("kind", BCON_UTF8("buffer"));
    ok = ok && nemesyst_emit_model(ctx, meta, (const uint8_t *)"weights!", 8, error);
    bson_destroy(meta);
    char path[4096];
    snprintf(path, sizeof path, "%s/from-file.bin", nemesyst_workdir(ctx));
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    fputs("file-model", f);
    fclose(f);
    meta = BCON_NEW("kind", BCON_UTF8("file"));
    ok = ok && nemesyst_emit_model_file(ctx, meta, path, false, error);
    bson_destroy(meta);
    return ok;
}

/* NEM_T_COUNT (default 13) documents {i, kind, pos}. */
bool clean(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *env = getenv("NEM_T_COUNT");
    int64_t n = env && *env ? atoll(env) : 13;
    const char *pause = getenv("NEM_T_SLEEP_MS");
    note_run(ctx);
    if (pause && *pause)
        usleep((useconds_t)atoi(pause) * 1000);
    for (int64_t i = 0; i < n; i++) {
        bson_t *doc = BCON_NEW("i", BCON_INT64(i), "kind", BCON_UTF8("plugin"),
                               "pos", BCON_INT64((int64_t)nemesyst_position(ctx)));
        bool ok = nemesyst_emit(ctx, doc, error);
        bson_destroy(doc);
        if (!ok)
            return false;
    }
    return true;
}

/* Reads --dl-data-collection through --dl-data-pipeline in batches of --dl-batch-size, --dl-epochs times. The
 * model's metadata: kind "plugin", seen (documents per epoch), batch_sizes (every batch of every epoch), digest
 * (the batches' lineage digest), retrained (an input model came); its bytes say how many documents an epoch saw,
 * after the parent's bytes when retraining. */
bool learn(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *coll;
    int64_t size, epochs;
    bson_t pipeline, sizes = BSON_INITIALIZER;
    uint64_t seen = 0;
    uint32_t k = 0;
    char digest[65] = "";
    bool ok = false;
    note_run(ctx);
    if (!nemesyst_opt_str(ctx, "dl-data-collection", &coll, error) || !nemesyst_opt_int(ctx, "dl-batch-size", &size, error) ||
        !nemesyst_opt_int(ctx, "dl-epochs", &epochs, error)) {
        bson_destroy(&sizes);
        return false;
    }
    if (!nemesyst_opt_json(ctx, "dl-data-pipeline", &pipeline, error))
        goto out;
    for (int64_t e = 0; e < epochs; e++) {
        nemesyst_batches_t *b = nemesyst_batches_new(ctx, coll, &pipeline, (size_t)size, error);
        const bson_t *const *docs;
        size_t n;
        if (!b)
            goto out;
        seen = 0;
        while (nemesyst_batches_next(b, &docs, &n, error)) {
            char key[16];
            const char *kp;
            bson_uint32_to_string(k++, &kp, key, sizeof key);
            BSON_APPEND_INT64(&sizes, kp, (int64_t)n);
            seen += n;
        }
        nemesyst_batches_digest(b, digest);
        nemesyst_batches_destroy(b);
        if (error->code != 0)
            goto out;
        /* a metric an epoch: the documents it saw */
        if (!nemesyst_log_metric(ctx, "seen", e, (double)seen, error))
            goto out;
    }
    uint8_t *parent = NULL;
    size_t plen = 0;
    bson_error_t none;
    bool retrain = nemesyst_input_model(ctx, &parent, &plen, &none);
    char *bytes = bson_strdup_printf("%.*splugin-model:%llu;", (int)plen, retrain ? (const char *)parent : "",
                                     (unsigned long long)seen);
    bson_t *meta = BCON_NEW("kind", BCON_UTF8("plugin"), "seen", BCON_INT64((int64_t)seen),
                            "retrained", BCON_BOOL(retrain), "digest", BCON_UTF8(digest));
    BSON_APPEND_ARRAY(meta, "batch_sizes", &sizes);
    ok = nemesyst_emit_model(ctx, meta, (const uint8_t *)bytes, strlen(bytes), error);
    bson_destroy(meta);
    bson_free(bytes);
    bson_free(parent);
out:
    bson_destroy(&pipeline);
    bson_destroy(&sizes);
    return ok;
}

/* The newest model of --dl-output-model-collection, fetched by its id with nemesyst_model_fetch. */
static bool newest_model(nemesyst_ctx_t *ctx, uint8_t **data, size_t *len, bson_error_t *error)
{
    const char *bucket;
    mongoc_database_t *db;
    if (!nemesyst_opt_str(ctx, "dl-output-model-collection", &bucket, error) || !(db = nemesyst_database(ctx, error)))
        return false;
    char *files = bson_strdup_printf("%s.files", bucket);
    mongoc_collection_t *c = mongoc_database_get_collection(db, files);
    bson_t *opts = BCON_NEW("sort", "{", "uploadDate", BCON_INT32(-1), "}", "limit", BCON_INT64(1));
    bson_t filter = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &filter, opts, NULL);
    const bson_t *doc;
    bson_iter_t it;
    bool ok = false;
    if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, "_id"))
        ok = nemesyst_model_fetch(ctx, bucket, bson_iter_value(&it), data, len, error);
    else if (!mongoc_cursor_error(cur, error))
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_ENOMODEL, "no model in %s", bucket);
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    bson_destroy(opts);
    mongoc_collection_destroy(c);
    bson_free(files);
    return ok;
}

/* Loads the newest model of --dl-output-model-collection by its id and emits 3 predictions {k, kind, model_len,
 * input_model} made with it; input_model says whether the host also handed an input model. */
bool predict(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    uint8_t *data, *input = NULL;
    size_t len, ilen;
    bson_error_t none;
    note_run(ctx);
    if (!newest_model(ctx, &data, &len, error))
        return false;
    bool have_input = nemesyst_input_model(ctx, &input, &ilen, &none), ok = true;
    for (int k = 0; ok && k < 3; k++) {
        bson_t *pred = BCON_NEW("k", BCON_INT32(k), "kind", BCON_UTF8("plugin"), "model_len", BCON_INT64((int64_t)len),
                                "input_model", BCON_BOOL(have_input));
        ok = nemesyst_emit(ctx, pred, error);
        bson_destroy(pred);
    }
    bson_free(input);
    bson_free(data);
    return ok;
}

/* Fetches the newest model of --dl-output-model-collection with nemesyst_model_fetch and writes its bytes to the
 * file NEM_T_COPY names (the test hashes it); emits {kind, len, maxrss_kb}, the peak memory after the fetch. */
bool fetch_copy(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *copy = getenv("NEM_T_COPY");
    uint8_t *data = NULL;
    size_t len = 0;
    if (!copy || !*copy) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "NEM_T_COPY is not set");
        return false;
    }
    if (!newest_model(ctx, &data, &len, error))
        return false;
    struct rusage ru;
    FILE *f = fopen(copy, "wb");
    getrusage(RUSAGE_SELF, &ru);
    bool ok = f && fwrite(data, 1, len, f) == len;
    ok = (f && fclose(f) == 0) && ok;
    if (!ok)
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "cannot write %s", copy);
    bson_t *out = BCON_NEW("kind", BCON_UTF8("plugin"), "len", BCON_INT64((int64_t)len), "maxrss_kb",
                           BCON_INT64((int64_t)ru.ru_maxrss));
    ok = ok && nemesyst_emit(ctx, out, error);
    bson_destroy(out);
    bson_free(data);
    return ok;
}

/* Connects to the database and emits a document, then fails with an error of its own. */
bool refuse(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    if (!nemesyst_database(ctx, error))
        return false;
    bson_t *doc = BCON_NEW("before", BCON_INT32(1));
    bool ok = nemesyst_emit(ctx, doc, error);
    bson_destroy(doc);
    if (ok)
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "plugin says no");
    return false;
}

/* Two documents, then a segmentation fault. */
bool crash(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    bson_t *doc = BCON_NEW("before", BCON_INT32(1));
    nemesyst_emit(ctx, doc, error);
    nemesyst_emit(ctx, doc, error);
    bson_destroy(doc);
    raise(SIGSEGV);
    return true;
}

/* clean's documents, then the plugin ends its own process with exit(0): the items the library still buffers never
 * reach the host, and the run must not call that a success. */
bool exit_early(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    if (!clean(ctx, error))
        return false;
    exit(0);
}

/* The same with _exit(0): no atexit handlers, no stdio flush. */
bool quit_early(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    if (!clean(ctx, error))
        return false;
    _exit(0);
}

/* A daemon: fork, setsid, fork again, the middle process exits; the daemon (stdio on /dev/null) reports its pid
 * through a pipe and sleeps. The pid goes to NEM_T_DAEMON_DIR/plugin-RANK-POSITION (written whole, by rename). */
static bool leave_daemon(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *dir = getenv("NEM_T_DAEMON_DIR"), *rank = getenv("NEMESYST_RANK");
    char path[4096], tmp[4200];
    pid_t mid, daemon = 0;
    int p[2], null;
    FILE *f;
    if (!dir || !rank || pipe(p) != 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "daemonize: no NEM_T_DAEMON_DIR or pipe");
        return false;
    }
    if ((mid = fork()) == 0) {
        close(p[0]);
        if (setsid() < 0)
            _exit(1);
        if (fork() == 0) {
            if ((null = open("/dev/null", O_RDWR)) >= 0)
                dup2(null, 0), dup2(null, 1), dup2(null, 2);
            daemon = getpid();
            if (write(p[1], &daemon, sizeof daemon) == (ssize_t)sizeof daemon)
                close(p[1]);
            sleep(300);
        }
        _exit(0);
    }
    close(p[1]);
    if (mid < 0 || read(p[0], &daemon, sizeof daemon) != (ssize_t)sizeof daemon)
        daemon = 0;
    close(p[0]);
    if (mid > 0)
        waitpid(mid, NULL, 0);
    snprintf(path, sizeof path, "%s/plugin-%s-%zu", dir, rank, nemesyst_position(ctx));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (daemon <= 0 || !(f = fopen(tmp, "w"))) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "daemonize: no daemon");
        return false;
    }
    fprintf(f, "%d\n", (int)daemon);
    return fclose(f) == 0 && rename(tmp, path) == 0;
}

bool daemonize(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *end = getenv("NEM_T_DAEMON_END");
    end = end && *end ? end : "ok";
    if (!leave_daemon(ctx, error))
        return false;
    if (strcmp(end, "hang") == 0 || strcmp(end, "wait") == 0)
        sleep(300);
    if (strcmp(end, "kill") == 0)
        raise(SIGKILL);
    if (!clean(ctx, error))
        return false;
    if (strcmp(end, "fail") == 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "daemonize: failing on purpose");
        return false;
    }
    return true;
}

/* Documents 1, 2 and 4 are {i}; document 3 is bad. */
static bool emit_with_bad_third(nemesyst_ctx_t *ctx, bson_t *bad, bson_error_t *error)
{
    bool ok = true;
    for (int32_t i = 1; ok && i <= 4; i++) {
        bson_t *doc = i == 3 ? bad : BCON_NEW("i", BCON_INT32(i));
        ok = nemesyst_emit(ctx, doc, error);
        if (doc != bad)
            bson_destroy(doc);
    }
    bson_destroy(bad);
    return ok;
}

bool unstorable_array(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    return emit_with_bad_third(ctx, BCON_NEW("rows", "[", "{", "i", BCON_INT32(1), "}", "{", "grid", "[", "[",
                                             BCON_INT32(1), BCON_INT32(2), "]", "]", "}", "]"), error);
}

bool unstorable_key(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    return emit_with_bad_third(ctx, BCON_NEW("meta", "{", "a.b", BCON_INT32(1), "}"), error);
}

static int64_t env_int(const char *name, int64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoll(v, NULL, 10) : dflt;
}

bool checkpoint(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    int64_t steps = env_int("NEM_T_STEPS", 100), every = env_int("NEM_T_EVERY", 25), die = env_int("NEM_T_DIE_AT", -1);
    bool first = env_int("NEMESYST_ATTEMPT", 1) == 1;
    double x = 0.5;
    int64_t start = 0;
    uint8_t *data = NULL;
    size_t len = 0;
    bson_error_t e;
    if (nemesyst_checkpoint_load(ctx, &data, &len, &start, NULL, &e)) {
        bool whole = len == sizeof x;
        if (whole)
            memcpy(&x, data, sizeof x);
        bson_free(data);
        if (!whole) {
            bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "checkpoint of %zu bytes, not 8", len);
            return false;
        }
    } else if (e.code != NEMESYST_ENOCHECKPOINT) {
        bson_set_error(error, e.domain, e.code, "%s", e.message);
        return false;
    }
    for (int64_t k = start + 1; k <= steps; k++) {
        x = x * 0.9990234375 + (double)k / 1000.0;
        if (!nemesyst_log_metric(ctx, "x", k, x, error))
            return false;
        if (k % every == 0 && !nemesyst_checkpoint_save(ctx, (const uint8_t *)&x, sizeof x, k, NULL, error))
            return false;
        if (k == die && first) {
            bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "stopped at step %" PRId64 " (test)", k);
            return false;
        }
        if (nemesyst_checkpoint_requested(ctx)) {
            if (!nemesyst_checkpoint_save(ctx, (const uint8_t *)&x, sizeof x, k, NULL, error))
                return false;
            bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "asked to stop: checkpoint at step %" PRId64,
                           k);
            return false;
        }
        usleep((useconds_t)env_int("NEM_T_SLEEP_MS", 0) * 1000);
    }
    bson_t *meta = BCON_NEW("model", BCON_UTF8("checkpoint"), "started_at", BCON_INT64(start));
    bool ok = nemesyst_emit_model(ctx, meta, (const uint8_t *)&x, sizeof x, error);
    bson_destroy(meta);
    return ok;
}

#define GD_MAX_DIM 16
#define GD_RATE 0.05

/* The documents of the learner's pipeline as rows x (dim numbers) and targets y; false with error set. */
static bool gd_read(nemesyst_ctx_t *ctx, double **xs, double **ys, size_t *n, size_t *dim, bson_error_t *error)
{
    const char *coll;
    bson_t pipeline;
    const bson_t *const *docs;
    size_t got, cap = 0;
    bool ok = true;
    *xs = *ys = NULL;
    *n = *dim = 0;
    if (!nemesyst_opt_str(ctx, "dl-data-collection", &coll, error) ||
        !nemesyst_opt_json(ctx, "dl-data-pipeline", &pipeline, error))
        return false;
    nemesyst_batches_t *b = nemesyst_batches_new(ctx, coll, &pipeline, 64, error);
    bson_destroy(&pipeline);
    if (!b)
        return false;
    while (ok && nemesyst_batches_next(b, &docs, &got, error))
        for (size_t i = 0; ok && i < got; i++) {
            bson_iter_t it, x;
            size_t d = 0;
            if (*n == cap) {
                cap = cap ? 2 * cap : 256;
                *xs = bson_realloc(*xs, cap * GD_MAX_DIM * sizeof **xs);
                *ys = bson_realloc(*ys, cap * sizeof **ys);
            }
            ok = bson_iter_init_find(&it, docs[i], "x") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &x);
            while (ok && bson_iter_next(&x) && (ok = BSON_ITER_HOLDS_NUMBER(&x) && d < GD_MAX_DIM))
                (*xs)[*n * GD_MAX_DIM + d++] = bson_iter_as_double(&x);
            ok = ok && (*n == 0 || d == *dim) && d > 0 && bson_iter_init_find(&it, docs[i], "y") &&
                 BSON_ITER_HOLDS_NUMBER(&it);
            if (!ok) {
                bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                               "document %zu is not {x: [1-%d numbers, as many as the first's], y: a number}", *n,
                               GD_MAX_DIM);
                break;
            }
            *dim = d;
            (*ys)[(*n)++] = bson_iter_as_double(&it);
        }
    if (ok && error->code != 0)
        ok = false;
    nemesyst_batches_destroy(b);
    if (ok && *n == 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "no documents to train on in %s", coll);
        ok = false;
    }
    return ok;
}

/* Full-batch gradient descent on the mean squared error of y ~ w.x + w[dim], from w = 0 or the newest checkpoint;
 * the order of every sum is fixed, so a resumed run repeats an uninterrupted one's arithmetic exactly. */
bool gd(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    int64_t steps = env_int("NEM_T_STEPS", 100), every = env_int("NEM_T_EVERY", 25), die = env_int("NEM_T_DIE_AT", -1);
    int64_t sleep_ms = env_int("NEM_T_SLEEP_MS", 0);
    bool first = env_int("NEMESYST_ATTEMPT", 1) == 1, ok = false;
    double *xs, *ys, w[GD_MAX_DIM + 1] = {0}, g[GD_MAX_DIM + 1];
    size_t n, dim;
    int64_t start = 0;
    uint8_t *data = NULL;
    size_t len = 0;
    bson_error_t e;
    if (!gd_read(ctx, &xs, &ys, &n, &dim, error))
        goto out;
    const size_t wlen = (dim + 1) * sizeof *w;
    if (nemesyst_checkpoint_load(ctx, &data, &len, &start, NULL, &e)) {
        bool whole = len == wlen;
        if (whole)
            memcpy(w, data, wlen);
        bson_free(data);
        if (!whole) {
            bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "checkpoint of %zu bytes, not %zu", len, wlen);
            goto out;
        }
    } else if (e.code != NEMESYST_ENOCHECKPOINT) {
        bson_set_error(error, e.domain, e.code, "%s", e.message);
        goto out;
    }
    for (int64_t k = start + 1; k <= steps; k++) {
        double loss = 0;
        memset(g, 0, sizeof g);
        for (size_t i = 0; i < n; i++) {
            const double *x = xs + i * GD_MAX_DIM;
            double r = w[dim];
            for (size_t j = 0; j < dim; j++)
                r += w[j] * x[j];
            r -= ys[i];
            loss += r * r;
            for (size_t j = 0; j < dim; j++)
                g[j] += r * x[j];
            g[dim] += r;
        }
        for (size_t j = 0; j <= dim; j++)
            w[j] -= GD_RATE * 2.0 * g[j] / (double)n;
        if (!nemesyst_log_metric(ctx, "loss", k, loss / (double)n, error))
            goto out;
        if (k % every == 0 && !nemesyst_checkpoint_save(ctx, (const uint8_t *)w, wlen, k, NULL, error))
            goto out;
        if (k == die && first) {
            bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "stopped at step %" PRId64 " (test)", k);
            goto out;
        }
        if (nemesyst_checkpoint_requested(ctx)) {
            if (nemesyst_checkpoint_save(ctx, (const uint8_t *)w, wlen, k, NULL, error))
                bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                               "asked to stop: checkpoint at step %" PRId64, k);
            goto out;
        }
        if (sleep_ms > 0)
            usleep((useconds_t)sleep_ms * 1000);
    }
    bson_t *meta = BCON_NEW("model", BCON_UTF8("gd"), "started_at", BCON_INT64(start), "examples",
                            BCON_INT64((int64_t)n));
    ok = nemesyst_emit_model(ctx, meta, (const uint8_t *)w, wlen, error);
    bson_destroy(meta);
out:
    bson_free(xs);
    bson_free(ys);
    return ok;
}
