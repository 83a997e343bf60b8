/* hdf5_import: the built-in cleaner plugin that imports HDF5 files. For every dataset of every --data file (groups
 * walked recursively), each row along the first dimension becomes one document
 *
 *     {file: "in.h5", dataset: "/grp/x", row: 7, value: ...}
 *
 * where value is a number (int64 for integer types, double for floats) or a UTF-8 string when a row is a single
 * element, and a BSON binary (subtype 0, little-endian) with dtype ("float32", "int64", "uint8", ...) and shape
 * (the row's shape) beside it when a row is an array. A scalar dataset gives one row, row 0.
 *
 * Streamed: rows are read in hyperslabs of a bounded number of rows (about ROW_BUDGET bytes; the environment
 * variable NEMESYST_HDF5_IMPORT_ROWS=N caps it at N rows), so memory stays bounded whatever the file size. Every
 * file and dataset is checked before the first document is sent: a missing or non-HDF5 file and an unsupported
 * type fail the script with one line naming the file and dataset.
 *
 * Run: nemesyst --data-clean --data-cleaner $(pkglibdir)/plugins/hdf5_import.so --data a.h5 b.h5 \
 *          --data-collection C */
#include <nemesyst.h>

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hdf5/dtype.h"

#define ROW_BUDGET ((size_t)4 << 20)     /* bytes of rows read per hyperslab */
#define MAX_ROWS_PER_READ ((hsize_t)4096)
#define MAX_ROW_BYTES ((size_t)15 << 20) /* a row, with its fields, must fit a 16 MiB document */

typedef enum { KIND_INT, KIND_UINT, KIND_FLOAT, KIND_TENSOR, KIND_STR_FIXED, KIND_STR_VLEN } kind_t;

/* One open dataset and how its rows are read. */
typedef struct {
    const char *file, *name;
    hid_t dset, mem_type;
    kind_t kind;
    const nem_h5_dtype_t *dtype; /* KIND_TENSOR */
    size_t elem;                 /* bytes per element in memory */
    int rank;                    /* 0 for a scalar dataset */
    bool null_space;             /* H5S_NULL: no rows */
    hsize_t dims[H5S_MAX_RANK];
    size_t row_elems, row_bytes;
} dset_t;

/* Dataset paths of one file, found by H5Lvisit. */
typedef struct {
    char **v;
    size_t n, cap;
} names_t;

static bool fail(bson_error_t *error, int code, const char *file, const char *dset, const char *fmt, ...)
    BSON_GNUC_PRINTF(5, 6);

/* Sets "FILE: DATASET: message" (or "FILE: message"). Returns false. */
static bool fail(bson_error_t *error, int code, const char *file, const char *dset, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (dset)
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, code, "%s: %s: %s", file, dset, msg);
    else
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, code, "%s: %s", file, msg);
    return false;
}

static void names_free(names_t *names)
{
    for (size_t i = 0; i < names->n; i++)
        bson_free(names->v[i]);
    bson_free(names->v);
    memset(names, 0, sizeof *names);
}

static herr_t visit_link(hid_t group, const char *name, const H5L_info_t *info, void *data)
{
    names_t *names = data;
    (void)group;
    if (info->type != H5L_TYPE_HARD)
        return 0; /* soft and external links: the target is visited under its own name, or is elsewhere */
    if (names->n == names->cap) {
        names->cap = names->cap ? 2 * names->cap : 16;
        names->v = bson_realloc(names->v, names->cap * sizeof *names->v);
    }
    names->v[names->n++] = bson_strdup_printf("/%s", name);
    return 0;
}

static hid_t open_file(const char *path, bson_error_t *error)
{
    if (access(path, R_OK) != 0) {
        fail(error, NEMESYST_EIO, path, NULL, "cannot read: %s", strerror(errno));
        return H5I_INVALID_HID;
    }
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
        fail(error, NEMESYST_EARG, path, NULL, "not an HDF5 file");
        return H5I_INVALID_HID;
    }
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        fail(error, NEMESYST_EIO, path, NULL, "cannot open as HDF5");
    return file;
}

/* The memory type and kind for a numeric dataset: single-element rows are read as native int64/uint64/double,
 * array rows as the little-endian type of the file's element type. */
static bool classify_number(dset_t *d, hid_t ftype, bson_error_t *error)
{
    d->dtype = nem_h5_dtype_of(ftype);
    if (!d->dtype)
        return fail(error, NEMESYST_EARG, d->file, d->name, "unsupported %s type of %zu bytes",
                    H5Tget_class(ftype) == H5T_FLOAT ? "float" : "integer", H5Tget_size(ftype));
    if (d->rank >= 2) {
        d->kind = KIND_TENSOR;
        d->mem_type = nem_h5_dtype_le(d->dtype);
        d->elem = d->dtype->size;
    } else if (d->dtype->cls == H5T_FLOAT) {
        d->kind = KIND_FLOAT;
        d->mem_type = H5Tcopy(H5T_NATIVE_DOUBLE);
        d->elem = sizeof(double);
    } else {
        d->kind = d->dtype->is_signed ? KIND_INT : KIND_UINT;
        d->mem_type = H5Tcopy(d->dtype->is_signed ? H5T_NATIVE_INT64 : H5T_NATIVE_UINT64);
        d->elem = sizeof(int64_t);
    }
    return true;
}

static bool classify_string(dset_t *d, hid_t ftype, bson_error_t *error)
{
    if (d->rank >= 2)
        return fail(error, NEMESYST_EARG, d->file, d->name, "unsupported type: arrays of strings per row");
    htri_t vlen = H5Tis_variable_str(ftype);
    if (vlen < 0)
        return fail(error, NEMESYST_EIO, d->file, d->name, "cannot read the string type");
    d->mem_type = H5Tcopy(vlen ? H5T_C_S1 : ftype);
    if (vlen)
        H5Tset_size(d->mem_type, H5T_VARIABLE);
    H5Tset_cset(d->mem_type, H5Tget_cset(ftype));
    d->kind = vlen ? KIND_STR_VLEN : KIND_STR_FIXED;
    d->elem = vlen ? sizeof(char *) : H5Tget_size(ftype);
    return true;
}

static const char *class_name(H5T_class_t cls)
{
    switch (cls) {
    case H5T_TIME: return "time";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_COMPOUND: return "compound";
    case H5T_REFERENCE: return "reference";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "variable-length sequence";
    case H5T_ARRAY: return "array";
    default: return "unknown";
    }
}

static bool read_shape(dset_t *d, bson_error_t *error)
{
    hid_t space = H5Dget_space(d->dset);
    bool ok = false;
    if (space < 0) {
        fail(error, NEMESYST_EIO, d->file, d->name, "cannot read the dataspace");
        return false;
    }
    d->null_space = H5Sget_simple_extent_type(space) == H5S_NULL;
    d->rank = H5Sget_simple_extent_dims(space, d->dims, NULL);
    if (d->rank < 0 && !d->null_space) {
        fail(error, NEMESYST_EIO, d->file, d->name, "cannot read the dataspace");
        goto out;
    }
    if (d->rank < 0)
        d->rank = 0;
    ok = true;
out:
    H5Sclose(space);
    return ok;
}

/* Sizes one row and checks it fits a document. */
static bool size_rows(dset_t *d, bson_error_t *error)
{
    d->row_elems = 1;
    for (int i = 1; i < d->rank; i++) {
        if (d->dims[i] && d->row_elems > MAX_ROW_BYTES / d->dims[i])
            return fail(error, NEMESYST_ETOOBIG, d->file, d->name, "a row is too large for a document");
        d->row_elems *= (size_t)d->dims[i];
    }
    if (d->elem && d->row_elems > MAX_ROW_BYTES / d->elem)
        return fail(error, NEMESYST_ETOOBIG, d->file, d->name, "a row of %zu elements is too large for a document",
                    d->row_elems);
    d->row_bytes = d->row_elems * d->elem;
    return true;
}

/* Opens d->name in file. *is_dataset is false (and nothing is open) for groups and named types. */
static bool dset_open(dset_t *d, hid_t file, bool *is_dataset, bson_error_t *error)
{
    hid_t obj = H5Oopen(file, d->name, H5P_DEFAULT);
    if (obj < 0)
        return fail(error, NEMESYST_EIO, d->file, d->name, "cannot open");
    *is_dataset = H5Iget_type(obj) == H5I_DATASET;
    if (!*is_dataset) {
        H5Oclose(obj);
        return true;
    }
    d->dset = obj;
    hid_t ftype = H5Dget_type(obj);
    if (ftype < 0)
        return fail(error, NEMESYST_EIO, d->file, d->name, "cannot read the type");
    bool ok = read_shape(d, error);
    H5T_class_t cls = H5Tget_class(ftype);
    if (ok && (cls == H5T_INTEGER || cls == H5T_FLOAT))
        ok = classify_number(d, ftype, error);
    else if (ok && cls == H5T_STRING)
        ok = classify_string(d, ftype, error);
    else if (ok)
        ok = fail(error, NEMESYST_EARG, d->file, d->name, "unsupported type: %s", class_name(cls));
    H5Tclose(ftype);
    return ok && size_rows(d, error);
}

static void dset_close(dset_t *d)
{
    if (d->mem_type > 0)
        H5Tclose(d->mem_type);
    if (d->dset > 0)
        H5Dclose(d->dset);
}

/* Appends value (and dtype, shape for tensors) for the row at p. */
static bool append_value(bson_t *doc, const dset_t *d, const uint8_t *p, hsize_t row, bson_error_t *error)
{
    if (d->kind == KIND_INT) {
        int64_t v;
        memcpy(&v, p, sizeof v);
        return BSON_APPEND_INT64(doc, "value", v);
    }
    if (d->kind == KIND_UINT) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        if (v > INT64_MAX)
            return fail(error, NEMESYST_EARG, d->file, d->name, "row %llu: %llu does not fit a BSON int64",
                        (unsigned long long)row, (unsigned long long)v);
        return BSON_APPEND_INT64(doc, "value", (int64_t)v);
    }
    if (d->kind == KIND_FLOAT) {
        double v;
        memcpy(&v, p, sizeof v);
        return BSON_APPEND_DOUBLE(doc, "value", v);
    }
    if (d->kind == KIND_TENSOR) {
        bson_t shape;
        char key[16];
        const char *k;
        BSON_APPEND_BINARY(doc, "value", BSON_SUBTYPE_BINARY, p, (uint32_t)d->row_bytes);
        BSON_APPEND_UTF8(doc, "dtype", d->dtype->name);
        BSON_APPEND_ARRAY_BEGIN(doc, "shape", &shape);
        for (int i = 1; i < d->rank; i++) {
            bson_uint32_to_string((uint32_t)(i - 1), &k, key, sizeof key);
            if (d->dims[i] <= INT32_MAX)
                bson_append_int32(&shape, k, -1, (int32_t)d->dims[i]);
            else
                bson_append_int64(&shape, k, -1, (int64_t)d->dims[i]);
        }
        return bson_append_array_end(doc, &shape);
    }
    const char *s = (const char *)p;
    size_t len;
    if (d->kind == KIND_STR_VLEN) {
        memcpy(&s, p, sizeof s);
        len = s ? strlen(s) : 0;
    } else {
        len = strnlen(s, d->elem); /* NUL-terminated or NUL-padded; space padding is kept */
    }
    if (len && !bson_utf8_validate(s, len, false))
        return fail(error, NEMESYST_EARG, d->file, d->name, "row %llu: the string is not valid UTF-8",
                    (unsigned long long)row);
    return bson_append_utf8(doc, "value", 5, s ? s : "", (int)len);
}

static bool emit_rows(nemesyst_ctx_t *ctx, const dset_t *d, const uint8_t *buf, hsize_t first, hsize_t n,
                      bson_error_t *error)
{
    bson_t doc = BSON_INITIALIZER;
    bool ok = true;
    for (hsize_t i = 0; ok && i < n; i++) {
        bson_reinit(&doc);
        BSON_APPEND_UTF8(&doc, "file", d->file);
        BSON_APPEND_UTF8(&doc, "dataset", d->name);
        BSON_APPEND_INT64(&doc, "row", (int64_t)(first + i));
        ok = append_value(&doc, d, buf + i * d->row_bytes, first + i, error);
        if (ok && !nemesyst_emit(ctx, &doc, error))
            ok = fail(error, error->code, d->file, d->name, "row %llu: %s", (unsigned long long)(first + i),
                      error->message);
    }
    bson_destroy(&doc);
    return ok;
}

static hsize_t rows_per_read(const dset_t *d)
{
    hsize_t rows = d->row_bytes ? ROW_BUDGET / d->row_bytes : MAX_ROWS_PER_READ;
    const char *env = getenv("NEMESYST_HDF5_IMPORT_ROWS");
    if (rows > MAX_ROWS_PER_READ)
        rows = MAX_ROWS_PER_READ;
    if (env && *env) {
        char *end;
        unsigned long long cap = strtoull(env, &end, 10);
        if (!*end && cap > 0 && cap < rows)
            rows = cap;
    }
    return rows ? rows : 1;
}

/* Reads rows [first, first+n) into buf. */
static bool read_rows(const dset_t *d, hid_t fspace, void *buf, hsize_t first, hsize_t n, bson_error_t *error)
{
    hsize_t start[H5S_MAX_RANK] = {0}, count[H5S_MAX_RANK];
    hid_t mspace = H5I_INVALID_HID;
    bool ok = false;
    memcpy(count, d->dims, sizeof count);
    start[0] = first;
    count[0] = n;
    if (H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        (mspace = H5Screate_simple(d->rank, count, NULL)) < 0 ||
        H5Dread(d->dset, d->mem_type, mspace, fspace, H5P_DEFAULT, buf) < 0) {
        fail(error, NEMESYST_EIO, d->file, d->name, "cannot read rows %llu..%llu", (unsigned long long)first,
             (unsigned long long)(first + n - 1));
        goto out;
    }
    ok = true;
out:
    if (mspace >= 0)
        H5Sclose(mspace);
    return ok;
}

static void reclaim_strings(const dset_t *d, void *buf, hsize_t n)
{
    hid_t mspace = H5Screate_simple(1, &n, NULL);
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(d->mem_type, mspace, H5P_DEFAULT, buf);
#else
    H5Dvlen_reclaim(d->mem_type, mspace, H5P_DEFAULT, buf);
#endif
    H5Sclose(mspace);
}

/* Streams the dataset's rows to the host, a bounded hyperslab at a time. */
static bool dset_emit(nemesyst_ctx_t *ctx, const dset_t *d, uint64_t *emitted, bson_error_t *error)
{
    hsize_t total = d->null_space ? 0 : d->rank == 0 ? 1 : d->dims[0];
    hsize_t step = rows_per_read(d);
    uint8_t *buf = bson_malloc0((size_t)step * (d->row_bytes ? d->row_bytes : 1));
    hid_t fspace = H5Dget_space(d->dset);
    bool ok = fspace >= 0;
    if (!ok)
        fail(error, NEMESYST_EIO, d->file, d->name, "cannot read the dataspace");
    for (hsize_t first = 0; ok && first < total; first += step) {
        hsize_t n = total - first < step ? total - first : step;
        if (d->rank == 0)
            ok = H5Dread(d->dset, d->mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0 ||
                 fail(error, NEMESYST_EIO, d->file, d->name, "cannot read the value");
        else if (d->row_bytes)
            ok = read_rows(d, fspace, buf, first, n, error);
        if (!ok)
            break;
        ok = emit_rows(ctx, d, buf, first, n, error);
        if (d->kind == KIND_STR_VLEN && d->row_bytes)
            reclaim_strings(d, buf, d->rank == 0 ? 1 : n);
        *emitted += n;
    }
    if (fspace >= 0)
        H5Sclose(fspace);
    bson_free(buf);
    return ok;
}

/* Checks every dataset of path (emit == false) or sends their rows (emit == true). */
static bool import_file(nemesyst_ctx_t *ctx, const char *path, bool emit, bson_error_t *error)
{
    names_t names = {0};
    uint64_t rows = 0;
    size_t n_dsets = 0;
    bool ok = false;
    hid_t file = open_file(path, error);
    if (file < 0)
        return false;
    if (H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, visit_link, &names) < 0) {
        fail(error, NEMESYST_EIO, path, NULL, "cannot list the groups");
        goto out;
    }
    for (size_t i = 0; i < names.n; i++) {
        dset_t d = {.file = path, .name = names.v[i], .dset = H5I_INVALID_HID, .mem_type = H5I_INVALID_HID};
        bool is_dataset = false;
        bool good = dset_open(&d, file, &is_dataset, error) && (!is_dataset || !emit || dset_emit(ctx, &d, &rows, error));
        n_dsets += is_dataset;
        dset_close(&d);
        if (!good)
            goto out;
    }
    if (emit)
        nemesyst_log(ctx, NEMESYST_LOG_INFO, "%s: %zu datasets, %llu rows imported", path, n_dsets,
                     (unsigned long long)rows);
    ok = true;
out:
    names_free(&names);
    H5Fclose(file);
    return ok;
}

/* The --data paths (borrowed from the options) into a new array; returns how many. */
static size_t data_files(nemesyst_ctx_t *ctx, const char ***out)
{
    bson_iter_t it, sub;
    size_t n = 0, cap = 0;
    *out = NULL;
    if (!bson_iter_init_find(&it, nemesyst_options(ctx), "data"))
        return 0;
    if (BSON_ITER_HOLDS_UTF8(&it)) {
        *out = bson_malloc(sizeof **out);
        (*out)[n++] = bson_iter_utf8(&it, NULL);
        return n;
    }
    if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &sub))
        return 0;
    while (bson_iter_next(&sub)) {
        if (!BSON_ITER_HOLDS_UTF8(&sub))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            *out = bson_realloc(*out, cap * sizeof **out);
        }
        (*out)[n++] = bson_iter_utf8(&sub, NULL);
    }
    return n;
}

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error);

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char **files = NULL;
    size_t n = data_files(ctx, &files);
    bool ok = true;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors are reported once, as one line, by this plugin */
    if (n == 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "--data: give one or more HDF5 files to import");
        return false;
    }
    for (size_t i = 0; ok && i < n; i++)
        ok = import_file(ctx, files[i], false, error);
    for (size_t i = 0; ok && i < n; i++)
        ok = import_file(ctx, files[i], true, error);
    bson_free(files);
    return ok;
}
