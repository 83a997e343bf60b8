/* Fashion-MNIST cleaner as a C plugin: reads the gzip-compressed IDX files and emits one document per image,
 *
 *     {x: BinData(0, 784 bytes), dtype: "uint8", shape: [28, 28], y, img_num, split: "train"|"test",
 *      dataset: "fashion-mnist", utc_import_time}
 *
 * the pixels stored as BSON binary with their dtype and shape beside them (never as an array of numbers). The
 * files come from --data (train images, train labels, test images, test labels; or one directory holding the
 * four files under their usual names), by default the Debian package dataset-fashion-mnist's. The environment
 * variable FASHION_MNIST_LIMIT=N keeps the first N examples of each split.
 *
 * Build: cc -shared -fPIC -o fashion_mnist_cleaner.so fashion_mnist_cleaner.c \
 *            $(pkg-config --cflags --libs nemesyst zlib)
 * Run:   nemesyst --data-clean --data-cleaner ./fashion_mnist_cleaner.so --data-collection fashion_mnist */
#include <nemesyst.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define IDX_IMAGES 0x803u
#define IDX_LABELS 0x801u
#define MAX_PIXELS 4096u

static const char *const default_files[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};

typedef struct {
    gzFile f;
    const char *path;
    uint32_t count, rows, cols;
} idx_t;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static bool read_exact(idx_t *idx, void *buf, unsigned len, bson_error_t *error)
{
    int got = gzread(idx->f, buf, len);
    if (got == (int)len)
        return true;
    int zerr = Z_OK;
    const char *msg = got < 0 ? gzerror(idx->f, &zerr) : "unexpected end of file";
    bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "%s: %s", idx->path, msg);
    return false;
}

/* Opens an IDX file and reads its header; want is IDX_IMAGES or IDX_LABELS. */
static bool idx_open(idx_t *idx, const char *path, uint32_t want, bson_error_t *error)
{
    unsigned char hdr[16];
    memset(idx, 0, sizeof *idx);
    idx->path = path;
    if (!(idx->f = gzopen(path, "rb"))) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "cannot open %s: %s", path,
                       errno ? strerror(errno) : "out of memory");
        return false;
    }
    gzbuffer(idx->f, 1u << 17);
    if (!read_exact(idx, hdr, 8, error))
        return false;
    uint32_t magic = be32(hdr);
    idx->count = be32(hdr + 4);
    idx->rows = idx->cols = 1;
    if (magic != want) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "%s: not an IDX %s file (magic 0x%x)", path,
                       want == IDX_IMAGES ? "image" : "label", magic);
        return false;
    }
    if (magic == IDX_IMAGES) {
        if (!read_exact(idx, hdr + 8, 8, error))
            return false;
        idx->rows = be32(hdr + 8);
        idx->cols = be32(hdr + 12);
        if (idx->rows == 0 || idx->cols == 0 || idx->rows > MAX_PIXELS / idx->cols) {
            bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "%s: unsupported image size %ux%u", path,
                           idx->rows, idx->cols);
            return false;
        }
    }
    return true;
}

static void idx_close(idx_t *idx)
{
    if (idx->f)
        gzclose(idx->f);
    idx->f = NULL;
}

/* The four paths: --data's four files, or its one directory, or the Debian dataset's. */
static bool data_files(nemesyst_ctx_t *ctx, char *paths[4], bson_error_t *error)
{
    const char *given[4];
    size_t n = 0;
    bson_iter_t it, sub;
    if (bson_iter_init_find(&it, nemesyst_options(ctx), "data")) {
        if (BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &sub)) {
            while (bson_iter_next(&sub))
                if (BSON_ITER_HOLDS_UTF8(&sub) && n < 4)
                    given[n++] = bson_iter_utf8(&sub, NULL);
        } else if (BSON_ITER_HOLDS_UTF8(&it)) {
            given[n++] = bson_iter_utf8(&it, NULL);
        }
    }
    struct stat st;
    if (n == 4) {
        for (int i = 0; i < 4; i++)
            paths[i] = bson_strdup(given[i]);
        return true;
    }
    if (n > 1 || (n == 1 && (stat(given[0], &st) != 0 || !S_ISDIR(st.st_mode)))) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                       "--data: give the four IDX files (train images, train labels, test images, test labels) or "
                       "the directory holding them");
        return false;
    }
    for (int i = 0; i < 4; i++)
        paths[i] = bson_strdup_printf("%s/%s", n == 1 ? given[0] : DEFAULT_DIR, default_files[i]);
    return true;
}

/* Emits one split: the images and labels files read in step. */
static bool emit_split(nemesyst_ctx_t *ctx, const char *split, const char *images_path, const char *labels_path,
                       uint64_t limit, int64_t import_ms, int64_t *img_num, bson_error_t *error)
{
    idx_t images, labels;
    bool ok = false;
    bson_t doc, shape;
    unsigned char pixels[MAX_PIXELS], label;
    bson_init(&doc);
    if (!idx_open(&images, images_path, IDX_IMAGES, error) || !idx_open(&labels, labels_path, IDX_LABELS, error))
        goto out;
    if (images.count != labels.count) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "%s has %u images but %s has %u labels",
                       images_path, images.count, labels_path, labels.count);
        goto out;
    }
    uint64_t count = images.count;
    if (limit && limit < count)
        count = limit;
    uint32_t size = images.rows * images.cols;
    nemesyst_log(ctx, NEMESYST_LOG_INFO, "importing %llu of %u %s examples (%ux%u) from %s",
                 (unsigned long long)count, images.count, split, images.rows, images.cols, images_path);
    for (uint64_t i = 0; i < count; i++) {
        if (!read_exact(&images, pixels, size, error) || !read_exact(&labels, &label, 1, error))
            goto out;
        bson_reinit(&doc);
        BSON_APPEND_BINARY(&doc, "x", BSON_SUBTYPE_BINARY, pixels, size);
        BSON_APPEND_UTF8(&doc, "dtype", "uint8");
        BSON_APPEND_ARRAY_BEGIN(&doc, "shape", &shape);
        BSON_APPEND_INT32(&shape, "0", (int32_t)images.rows);
        BSON_APPEND_INT32(&shape, "1", (int32_t)images.cols);
        bson_append_array_end(&doc, &shape);
        BSON_APPEND_INT32(&doc, "y", label);
        BSON_APPEND_INT32(&doc, "img_num", (int32_t)(*img_num)++);
        BSON_APPEND_UTF8(&doc, "split", split);
        BSON_APPEND_UTF8(&doc, "dataset", "fashion-mnist");
        BSON_APPEND_DATE_TIME(&doc, "utc_import_time", import_ms);
        if (!nemesyst_emit(ctx, &doc, error))
            goto out;
    }
    ok = true;
out:
    bson_destroy(&doc);
    idx_close(&images);
    idx_close(&labels);
    return ok;
}

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error);

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    char *paths[4] = {NULL, NULL, NULL, NULL};
    const char *env = getenv("FASHION_MNIST_LIMIT");
    uint64_t limit = 0;
    if (env && *env) {
        char *end;
        errno = 0;
        limit = strtoull(env, &end, 10);
        if (errno || *end || env[0] == '-') {
            bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "FASHION_MNIST_LIMIT=%s is not a count", env);
            return false;
        }
    }
    if (!data_files(ctx, paths, error))
        return false;
    struct timeval tv;
    bson_gettimeofday(&tv);
    int64_t import_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    int64_t img_num = 0;
    bool ok = emit_split(ctx, "train", paths[0], paths[1], limit, import_ms, &img_num, error) &&
              emit_split(ctx, "test", paths[2], paths[3], limit, import_ms, &img_num, error);
    if (ok)
        nemesyst_log(ctx, NEMESYST_LOG_INFO, "emitted %lld documents", (long long)img_num);
    for (int i = 0; i < 4; i++)
        bson_free(paths[i]);
    return ok;
}
