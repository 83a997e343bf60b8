/* `get MODEL_ID -o FILE|- [--force]`: a model's GridFS file, streamed (store.h nem_gridfs_download: one checked
 * chunk at a time, memory bounded whatever the file's size) and hashed on the way; checked against the sha256 its
 * metadata records (_nemesyst.sha256, stage/worker/writer.c) when it records one. FILE is written as a temporary
 * file in its directory, renamed to FILE once complete and checked, so FILE is never a part of a model nor a
 * damaged one; without --force an existing FILE is left alone. -o -: stdout, after a first read that checks the
 * sha256, so a damaged file is never sent. Nothing in the database changes. */
#include "registry/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "util/errors.h"
#include "util/exitcodes.h"
#include "util/sha256.h"

static bool is_stdout(const char *output)
{
    return strcmp(output, "-") == 0;
}

bool nem_reg_check_output(const char *verb, const char *output, bool force, bool dash, bson_error_t *err)
{
    struct stat st;
    if (dash && is_stdout(output))
        return true;
    if (!*output) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s -o: the file name is empty%s", verb,
                       dash ? " (- for stdout)" : "");
        return false;
    }
    if (stat(output, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s -o '%s': is a directory: name the file", verb, output);
        else if (!force)
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                           "%s -o '%s': the file exists: give --force to replace it", verb, output);
        if (S_ISDIR(st.st_mode) || !force)
            return false;
    } else if (errno != ENOENT) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s -o '%s': %s", verb, output, strerror(errno));
        return false;
    }
    char *copy = bson_strdup(output);
    const char *dir = dirname(copy);
    bool ok = true;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s -o '%s': its directory '%s' %s", verb, output, dir,
                       stat(dir, &st) != 0 ? "does not exist" : "is not a directory");
        ok = false;
    } else if (access(dir, W_OK | X_OK) != 0) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s -o '%s': its directory '%s' is not writable", verb, output, dir);
        ok = false;
    }
    bson_free(copy);
    return ok;
}

bool nem_reg_get_check_output(const char *output, bool force, bson_error_t *err)
{
    return nem_reg_check_output("get", output, force, true, err);
}

/* The download's sink: hashes every chunk, and writes it to fd unless fd < 0 (the checking read for stdout). */
typedef struct {
    EVP_MD_CTX *sha;
    int fd;
    const char *what; /* the file written, for messages */
    int64_t bytes;
} get_sink_t;

static bool sink_write(void *ctx, const uint8_t *data, size_t len, bson_error_t *err)
{
    get_sink_t *s = ctx;
    EVP_DigestUpdate(s->sha, data, len);
    s->bytes += (int64_t)len;
    while (s->fd >= 0 && len > 0) {
        ssize_t n = write(s->fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            bson_set_error(err, NEM_ERROR_STORE, NEM_STORE_EIO, "cannot write %s: %s", s->what, strerror(errno));
            return false;
        }
        data += n;
        len -= (size_t)n;
    }
    return true;
}

/* One read of the file through s (its digest reset first); hex receives the sha256. */
static bool read_once(nem_reg_t *r, const char *bucket, const bson_value_t *id, get_sink_t *s, char hex[65],
                      bson_error_t *err)
{
    nem_gridfs_sink_t sink = {NULL, sink_write, s};
    s->bytes = 0;
    EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL);
    if (!nem_gridfs_download(r->store, bucket, id, &sink, err))
        return false;
    nem_sha256_final_hex(s->sha, hex);
    return true;
}

static bool sha256_text_ok(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

/* A damaged or changed file is exit status 1, as a changed one is for verify. */
static int mismatch(const char *model_id, const char *got, const char *want, const char *what)
{
    fprintf(stderr, "nemesyst-registry: error: get %s: the file's sha256 is %s, its metadata records %s: the stored "
            "copy is damaged or changed; %s\n", model_id, got, want, what);
    return NEM_EXIT_FAILURE;
}

static int download_failed(const char *model_id, const bson_error_t *err)
{
    if (err->domain == NEM_ERROR_STORE && (err->code == NEM_STORE_ECORRUPT || err->code == NEM_STORE_EIO)) {
        fprintf(stderr, "nemesyst-registry: error: get %s: %s; nothing written\n", model_id, err->message);
        return NEM_EXIT_FAILURE;
    }
    return nem_reg_fail(err);
}

/* The temporary file is in FILE's directory, so the rename is atomic; with --force the rename replaces FILE, else
 * link() puts it there only while FILE does not exist (one that appeared meanwhile is kept). */
static bool commit(const char *tmp, const char *output, bool force, bson_error_t *err)
{
    if (!force) {
        if (link(tmp, output) == 0) {
            unlink(tmp);
            return true;
        }
        if (errno == EEXIST) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                           "get -o '%s': the file exists (it appeared while downloading): give --force to replace it",
                           output);
            return false;
        }
        /* a file system without hard links: it did not exist a moment ago */
        if (access(output, F_OK) == 0) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                           "get -o '%s': the file exists (it appeared while downloading): give --force to replace it",
                           output);
            return false;
        }
    }
    if (rename(tmp, output) != 0) {
        bson_set_error(err, NEM_ERROR_STORE, NEM_STORE_EIO, "cannot rename the downloaded file to '%s': %s", output,
                       strerror(errno));
        return false;
    }
    return true;
}

static void report(nem_reg_t *r, const char *model_id, const char *bucket, const char *output, int64_t bytes,
                   const char *hex, bool checked)
{
    if (is_stdout(output))
        return; /* stdout is the file */
    if (r->json) {
        bson_t doc = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&doc, "id", model_id);
        BSON_APPEND_UTF8(&doc, "bucket", bucket);
        BSON_APPEND_UTF8(&doc, "file", output);
        BSON_APPEND_INT64(&doc, "length", bytes);
        BSON_APPEND_UTF8(&doc, "sha256", hex);
        BSON_APPEND_BOOL(&doc, "checked", checked);
        nem_reg_print_json(r->out, &doc);
        bson_destroy(&doc);
    } else {
        fprintf(r->out, "%s: %" PRId64 " bytes, sha256 %s (%s)\n", output, bytes, hex,
                checked ? "matches the recorded one" : "none recorded: not checked");
    }
}

int nem_reg_get(nem_reg_t *r, const char *model_id, const char *output, bool force)
{
    bson_t file;
    bson_error_t err = {0};
    bson_iter_t it;
    char *bucket = NULL, hex[65] = "", *tmp = NULL;
    int status = NEM_EXIT_OK, fd = -1;
    get_sink_t s = {EVP_MD_CTX_new(), -1, output, 0};

    if (!nem_reg_model_arg(r, model_id, &file, &bucket, &err)) {
        EVP_MD_CTX_free(s.sha);
        return nem_reg_fail(&err);
    }
    const char *want = nem_reg_str(&file, "metadata._nemesyst.sha256", NULL);
    if (want && !sha256_text_ok(want)) {
        fprintf(stderr, "nemesyst-registry: error: get %s: its metadata records a malformed sha256 ('%.80s'): "
                "nothing written\n", model_id, want);
        status = NEM_EXIT_FAILURE;
        goto out;
    }
    bson_iter_init_find(&it, &file, "_id");
    const bson_value_t *id = bson_iter_value(&it);

    if (is_stdout(output)) {
        if (want) { /* first the check, writing nothing */
            if (!read_once(r, bucket, id, &s, hex, &err)) {
                status = download_failed(model_id, &err);
                goto out;
            }
            if (strcmp(hex, want) != 0) {
                status = mismatch(model_id, hex, want, "nothing written");
                goto out;
            }
        }
        s.fd = STDOUT_FILENO;
        s.what = "stdout";
        fflush(r->out);
        if (!read_once(r, bucket, id, &s, hex, &err))
            status = download_failed(model_id, &err);
        else if (want && strcmp(hex, want) != 0) /* it changed between the two reads */
            status = mismatch(model_id, hex, want, "it changed while being sent: discard what stdout received");
        goto out;
    }

    char *copy = bson_strdup(output), *base = bson_strdup(output);
    tmp = bson_strdup_printf("%s/.%s.nemesyst-get-XXXXXX", dirname(copy), basename(base));
    bson_free(copy);
    bson_free(base);
    if ((fd = mkstemp(tmp)) < 0) {
        fprintf(stderr, "nemesyst-registry: error: get %s: cannot create a temporary file next to '%s': %s\n",
                model_id, output, strerror(errno));
        bson_free(tmp);
        tmp = NULL;
        status = NEM_EXIT_FAILURE;
        goto out;
    }
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask); /* as a file the user creates, not mkstemp's 0600 */
    s.fd = fd;
    s.what = tmp;
    if (!read_once(r, bucket, id, &s, hex, &err)) {
        status = download_failed(model_id, &err);
    } else if (want && strcmp(hex, want) != 0) {
        status = mismatch(model_id, hex, want, "nothing written");
    } else if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        fprintf(stderr, "nemesyst-registry: error: get %s: cannot write '%s': %s; nothing written\n", model_id, tmp,
                strerror(errno));
        status = NEM_EXIT_FAILURE;
    } else {
        fd = -1;
        if (!commit(tmp, output, force, &err))
            status = err.domain == NEM_ERROR_CONFIG ? nem_reg_fail(&err) : download_failed(model_id, &err);
        else
            report(r, model_id, bucket, output, s.bytes, hex, want != NULL);
    }
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        if (status != NEM_EXIT_OK)
            unlink(tmp);
        bson_free(tmp);
    }
    EVP_MD_CTX_free(s.sha);
    bson_destroy(&file);
    bson_free(bucket);
    return status;
}
