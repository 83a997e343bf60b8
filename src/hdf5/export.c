/* nemesyst-export's engine (export.h): documents in batches -> one extendible, chunked HDF5 dataset per field. */
#include "hdf5/export.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hdf5/dtype.h"

#define BUFFER_BUDGET ((size_t)64 << 20) /* bytes of rows buffered per field before an HDF5 write */
#define CHUNK_BYTES ((size_t)1 << 20)    /* target bytes per HDF5 chunk */
#define MAX_CHUNK_ROWS ((hsize_t)4096)
#define MAX_ROW_RANK (H5S_MAX_RANK - 1)

typedef enum { COL_INT64, COL_FLOAT64, COL_STRING, COL_TENSOR } col_kind_t;

/* A tensor field of one document: binary bytes with their dtype and shape. */
typedef struct {
    const nem_h5_dtype_t *dtype;
    int rank;
    hsize_t shape[MAX_ROW_RANK];
    const uint8_t *data;
    uint32_t len;
} tensor_t;

/* One exported field: its kind (fixed by the first document), its dataset and a buffer of rows. */
typedef struct {
    char *path, *dtype_path, *shape_path;
    col_kind_t kind;
    tensor_t shape;   /* COL_TENSOR: dtype, rank and shape of every row (data unused) */
    size_t row_bytes; /* bytes per row in buf */
    hid_t mem_type, dset;
    uint8_t *buf;
    size_t buf_rows;  /* rows buf holds */
    hsize_t rows;     /* rows written */
} column_t;

typedef struct {
    const nem_export_opts_t *opts;
    column_t *cols;
    size_t n_cols;
    hid_t file;
    char *tmp;
    uint64_t pos; /* documents before the current batch */
} export_t;

static bool fail(bson_error_t *err, int code, const char *fmt, ...) BSON_GNUC_PRINTF(3, 4);

static bool fail(bson_error_t *err, int code, const char *fmt, ...)
{
    char msg[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bson_set_error(err, NEM_ERROR_HDF5, code, "%s", msg);
    return false;
}

static const char *type_name(bson_type_t t)
{
    switch (t) {
    case BSON_TYPE_DOUBLE: return "double";
    case BSON_TYPE_UTF8: return "string";
    case BSON_TYPE_DOCUMENT: return "document";
    case BSON_TYPE_ARRAY: return "array";
    case BSON_TYPE_BINARY: return "binary";
    case BSON_TYPE_OID: return "ObjectId";
    case BSON_TYPE_BOOL: return "bool";
    case BSON_TYPE_DATE_TIME: return "date";
    case BSON_TYPE_NULL: return "null";
    case BSON_TYPE_INT32: return "int32";
    case BSON_TYPE_TIMESTAMP: return "timestamp";
    case BSON_TYPE_INT64: return "int64";
    case BSON_TYPE_DECIMAL128: return "decimal128";
    default: return "an unsupported type";
    }
}

static const char *kind_name(col_kind_t k)
{
    return k == COL_INT64 ? "integer" : k == COL_FLOAT64 ? "double" : k == COL_STRING ? "string" : "tensor";
}

/* "document 12 (_id 64f0c...)" for messages. */
static void doc_label(const bson_t *doc, uint64_t pos, char *out, size_t len)
{
    bson_iter_t it;
    char id[64] = "";
    if (bson_iter_init_find(&it, doc, "_id")) {
        if (BSON_ITER_HOLDS_OID(&it)) {
            char hex[25];
            bson_oid_to_string(bson_iter_oid(&it), hex);
            snprintf(id, sizeof id, " (_id %s)", hex);
        } else if (BSON_ITER_HOLDS_INT(&it)) {
            snprintf(id, sizeof id, " (_id %lld)", (long long)bson_iter_as_int64(&it));
        } else if (BSON_ITER_HOLDS_UTF8(&it)) {
            snprintf(id, sizeof id, " (_id \"%.40s\")", bson_iter_utf8(&it, NULL));
        }
    }
    snprintf(out, len, "document %llu%s", (unsigned long long)pos, id);
}

/* path's sibling field name: "a.b.x" + "dtype" -> "a.b.dtype". */
static char *sibling(const char *path, const char *name)
{
    const char *dot = strrchr(path, '.');
    return bson_strdup_printf("%.*s%s", dot ? (int)(dot - path + 1) : 0, path, name);
}

static bool find(const bson_t *doc, const char *path, bson_iter_t *out)
{
    bson_iter_t it;
    return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, out);
}

/* Reads the tensor at it (binary subtype 0) with the dtype and shape fields of col. Returns false with the reason
 * in why. */
static bool read_tensor(const bson_t *doc, const column_t *col, bson_iter_t *it, tensor_t *t, char *why, size_t len)
{
    bson_subtype_t sub;
    bson_iter_t f, s;
    uint64_t elems = 1;
    memset(t, 0, sizeof *t);
    bson_iter_binary(it, &sub, &t->len, &t->data);
    if (sub != BSON_SUBTYPE_BINARY)
        return snprintf(why, len, "is binary of subtype %d, not 0", (int)sub), false;
    if (!find(doc, col->dtype_path, &f) || !BSON_ITER_HOLDS_UTF8(&f))
        return snprintf(why, len, "is binary without a string field '%s' beside it", col->dtype_path), false;
    if (!(t->dtype = nem_h5_dtype_by_name(bson_iter_utf8(&f, NULL))))
        return snprintf(why, len, "has unsupported %s \"%s\"", col->dtype_path, bson_iter_utf8(&f, NULL)), false;
    if (!find(doc, col->shape_path, &f) || !BSON_ITER_HOLDS_ARRAY(&f) || !bson_iter_recurse(&f, &s))
        return snprintf(why, len, "is binary without an array field '%s' beside it", col->shape_path), false;
    while (bson_iter_next(&s)) {
        int64_t d = BSON_ITER_HOLDS_INT(&s) ? bson_iter_as_int64(&s) : -1;
        if (d <= 0 || t->rank == MAX_ROW_RANK || (uint64_t)d > UINT32_MAX)
            return snprintf(why, len, "has a bad '%s' (positive integers, at most %d)", col->shape_path,
                            MAX_ROW_RANK), false;
        t->shape[t->rank++] = (hsize_t)d;
        elems *= (uint64_t)d;
        if (elems > UINT32_MAX)
            return snprintf(why, len, "has a '%s' too large", col->shape_path), false;
    }
    if (elems * t->dtype->size != t->len)
        return snprintf(why, len, "holds %u bytes, but %s %s of that shape takes %llu", t->len,
                        t->dtype->name, col->shape_path, (unsigned long long)(elems * t->dtype->size)), false;
    return true;
}

/* Fixes col's kind (and tensor dtype, shape) from the first document. */
static bool column_kind(column_t *col, const bson_t *doc, bson_error_t *err)
{
    bson_iter_t it;
    char why[256], label[128];
    doc_label(doc, 0, label, sizeof label);
    if (!find(doc, col->path, &it))
        return fail(err, NEM_HDF5_EFIELD, "%s: field '%s' is missing", label, col->path);
    switch (bson_iter_type(&it)) {
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64: col->kind = COL_INT64; return true;
    case BSON_TYPE_DOUBLE: col->kind = COL_FLOAT64; return true;
    case BSON_TYPE_UTF8: col->kind = COL_STRING; return true;
    case BSON_TYPE_BINARY:
        col->kind = COL_TENSOR;
        if (read_tensor(doc, col, &it, &col->shape, why, sizeof why))
            return true;
        return fail(err, NEM_HDF5_ETYPE, "%s: field '%s' %s", label, col->path, why);
    default:
        return fail(err, NEM_HDF5_ETYPE, "%s: field '%s' has type %s, which cannot be exported", label, col->path,
                    type_name(bson_iter_type(&it)));
    }
}

static bool column_init(column_t *col, const bson_t *doc, const char *path, size_t batch_size, bson_error_t *err)
{
    col->path = bson_strdup(path);
    col->dtype_path = sibling(path, "dtype");
    col->shape_path = sibling(path, "shape");
    col->mem_type = col->dset = H5I_INVALID_HID;
    if (!column_kind(col, doc, err))
        return false;
    if (col->kind == COL_TENSOR) {
        col->mem_type = nem_h5_dtype_le(col->shape.dtype);
        col->row_bytes = col->shape.len;
    } else if (col->kind == COL_STRING) {
        col->mem_type = H5Tcopy(H5T_C_S1);
        H5Tset_size(col->mem_type, H5T_VARIABLE);
        H5Tset_cset(col->mem_type, H5T_CSET_UTF8);
        col->row_bytes = sizeof(const char *);
    } else {
        col->mem_type = H5Tcopy(col->kind == COL_INT64 ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE);
        col->row_bytes = 8;
    }
    col->buf_rows = col->row_bytes ? BUFFER_BUDGET / col->row_bytes : batch_size;
    col->buf_rows = col->buf_rows < 1 ? 1 : col->buf_rows > batch_size ? batch_size : col->buf_rows;
    col->buf = bson_malloc0(col->buf_rows * (col->row_bytes ? col->row_bytes : 1));
    return col->mem_type >= 0 || fail(err, NEM_HDF5_EIO, "field '%s': cannot make its HDF5 type", path);
}

static void column_free(column_t *col)
{
    if (col->dset > 0)
        H5Dclose(col->dset);
    if (col->mem_type > 0)
        H5Tclose(col->mem_type);
    bson_free(col->buf);
    bson_free(col->path);
    bson_free(col->dtype_path);
    bson_free(col->shape_path);
}

/* The file type of col's dataset (a copy; close it). */
static hid_t column_file_type(const column_t *col)
{
    if (col->kind == COL_INT64)
        return H5Tcopy(H5T_STD_I64LE);
    if (col->kind == COL_FLOAT64)
        return H5Tcopy(H5T_IEEE_F64LE);
    return H5Tcopy(col->mem_type); /* little-endian tensor elements, UTF-8 strings */
}

static bool column_create(column_t *col, hid_t file, bson_error_t *err)
{
    hsize_t dims[H5S_MAX_RANK] = {0}, maxdims[H5S_MAX_RANK], chunk[H5S_MAX_RANK];
    int rank = 1 + (col->kind == COL_TENSOR ? col->shape.rank : 0);
    hsize_t chunk_rows = col->kind == COL_STRING || !col->row_bytes ? 1024 : CHUNK_BYTES / col->row_bytes;
    chunk_rows = chunk_rows < 1 ? 1 : chunk_rows > MAX_CHUNK_ROWS ? MAX_CHUNK_ROWS : chunk_rows;
    maxdims[0] = H5S_UNLIMITED;
    chunk[0] = chunk_rows;
    for (int i = 1; i < rank; i++)
        dims[i] = maxdims[i] = chunk[i] = col->shape.shape[i - 1];
    hid_t space = H5Screate_simple(rank, dims, maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE),
          lcpl = H5Pcreate(H5P_LINK_CREATE), ftype = column_file_type(col);
    if (space >= 0 && dcpl >= 0 && lcpl >= 0 && ftype >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0 &&
        H5Pset_create_intermediate_group(lcpl, 1) >= 0)
        col->dset = H5Dcreate2(file, col->path, ftype, space, lcpl, dcpl, H5P_DEFAULT);
    H5Tclose(ftype);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(space);
    return col->dset >= 0 || fail(err, NEM_HDF5_EIO, "field '%s': cannot create its HDF5 dataset", col->path);
}

/* Appends the n rows in col->buf to its dataset. */
static bool column_write(column_t *col, size_t n, bson_error_t *err)
{
    hsize_t dims[H5S_MAX_RANK], start[H5S_MAX_RANK] = {0}, count[H5S_MAX_RANK];
    int rank = 1 + (col->kind == COL_TENSOR ? col->shape.rank : 0);
    hid_t fspace = H5I_INVALID_HID, mspace = H5I_INVALID_HID;
    bool ok = false;
    dims[0] = col->rows + n;
    start[0] = col->rows;
    count[0] = n;
    for (int i = 1; i < rank; i++)
        dims[i] = count[i] = col->shape.shape[i - 1];
    if (H5Dset_extent(col->dset, dims) < 0 || (fspace = H5Dget_space(col->dset)) < 0 ||
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        (mspace = H5Screate_simple(rank, count, NULL)) < 0 ||
        H5Dwrite(col->dset, col->mem_type, mspace, fspace, H5P_DEFAULT, col->buf) < 0) {
        fail(err, NEM_HDF5_EIO, "field '%s': cannot write rows %llu..%llu", col->path,
             (unsigned long long)col->rows, (unsigned long long)(col->rows + n - 1));
        goto out;
    }
    col->rows += n;
    ok = true;
out:
    if (mspace >= 0)
        H5Sclose(mspace);
    if (fspace >= 0)
        H5Sclose(fspace);
    return ok;
}

static bool same_shape(const tensor_t *a, const tensor_t *b)
{
    return a->dtype == b->dtype && a->rank == b->rank && memcmp(a->shape, b->shape, sizeof(hsize_t) * (size_t)a->rank) == 0;
}

static void shape_text(const tensor_t *t, char *out, size_t len)
{
    size_t used = (size_t)snprintf(out, len, "%s [", t->dtype->name);
    for (int i = 0; i < t->rank && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%llu", i ? ", " : "", (unsigned long long)t->shape[i]);
    if (used < len)
        snprintf(out + used, len - used, "]");
}

/* Copies doc's value of col into row slot of col->buf; why says what is wrong otherwise. */
static bool column_take(column_t *col, const bson_t *doc, size_t slot, char *why, size_t len)
{
    bson_iter_t it;
    uint8_t *p = col->buf + slot * col->row_bytes;
    if (!find(doc, col->path, &it))
        return snprintf(why, len, "is missing"), false;
    bson_type_t t = bson_iter_type(&it);
    if (col->kind == COL_INT64 && (t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64)) {
        int64_t v = bson_iter_as_int64(&it);
        memcpy(p, &v, sizeof v);
    } else if (col->kind == COL_FLOAT64 && (t == BSON_TYPE_DOUBLE || t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64)) {
        double v = t == BSON_TYPE_DOUBLE ? bson_iter_double(&it) : (double)bson_iter_as_int64(&it);
        memcpy(p, &v, sizeof v);
    } else if (col->kind == COL_STRING && t == BSON_TYPE_UTF8) {
        const char *s = bson_iter_utf8(&it, NULL);
        memcpy(p, &s, sizeof s);
    } else if (col->kind == COL_TENSOR && t == BSON_TYPE_BINARY) {
        tensor_t tensor;
        char a[100], b[100];
        if (!read_tensor(doc, col, &it, &tensor, why, len))
            return false;
        if (!same_shape(&tensor, &col->shape)) {
            shape_text(&tensor, a, sizeof a);
            shape_text(&col->shape, b, sizeof b);
            return snprintf(why, len, "is %s, but earlier documents made it %s", a, b), false;
        }
        memcpy(p, tensor.data, tensor.len);
    } else {
        return snprintf(why, len, "has type %s, but earlier documents made it %s", type_name(t),
                        kind_name(col->kind)), false;
    }
    return true;
}

/* Copies one batch into every field's dataset, buf_rows rows per HDF5 write. */
static bool export_batch(export_t *x, const bson_t *const *docs, size_t n, bson_error_t *err)
{
    char why[256], label[128];
    for (size_t c = 0; c < x->n_cols; c++) {
        column_t *col = &x->cols[c];
        for (size_t first = 0; first < n; first += col->buf_rows) {
            size_t k = n - first < col->buf_rows ? n - first : col->buf_rows;
            for (size_t i = 0; i < k; i++) {
                if (column_take(col, docs[first + i], i, why, sizeof why))
                    continue;
                doc_label(docs[first + i], x->pos + first + i, label, sizeof label);
                return fail(err, strcmp(why, "is missing") == 0 ? NEM_HDF5_EFIELD : NEM_HDF5_ETYPE,
                            "%s: field '%s' %s", label, col->path, why);
            }
            if (!column_write(col, k, err))
                return false;
        }
    }
    return true;
}

/* The fields to export when none were named: the first document's top-level fields but _id and _nemesyst, and
 * dtype and shape when they describe a binary field; fields of unsupported types are skipped with a note. */
static char **default_fields(const bson_t *doc, size_t *n)
{
    bson_iter_t it;
    bool has_tensor = false;
    char **v = bson_malloc0((bson_count_keys(doc) + 1) * sizeof *v);
    *n = 0;
    if (bson_iter_init(&it, doc))
        while (bson_iter_next(&it))
            has_tensor |= BSON_ITER_HOLDS_BINARY(&it);
    if (!bson_iter_init(&it, doc))
        return v;
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        bson_type_t t = bson_iter_type(&it);
        if (!strcmp(key, "_id") || !strcmp(key, "_nemesyst") ||
            (has_tensor && (!strcmp(key, "dtype") || !strcmp(key, "shape"))))
            continue;
        if (t != BSON_TYPE_INT32 && t != BSON_TYPE_INT64 && t != BSON_TYPE_DOUBLE && t != BSON_TYPE_UTF8 &&
            t != BSON_TYPE_BINARY) {
            fprintf(stderr, "nemesyst-export: note: skipping field '%s' (%s)\n", key, type_name(t));
            continue;
        }
        v[(*n)++] = bson_strdup(key);
    }
    return v;
}

/* Sets up the fields from the first document and creates the output file and its datasets. */
static bool export_setup(export_t *x, const bson_t *first, bson_error_t *err)
{
    size_t n = x->opts->n_fields;
    char **own = x->opts->fields ? NULL : default_fields(first, &n);
    char *const *fields = own ? own : x->opts->fields;
    bool ok = false;
    if (n == 0) {
        fail(err, NEM_HDF5_EARG, "document 0 has no field to export");
        goto out;
    }
    x->cols = bson_malloc0(n * sizeof *x->cols);
    for (size_t i = 0; i < n; i++, x->n_cols++)
        if (!column_init(&x->cols[i], first, fields[i], x->opts->batch_size, err)) {
            x->n_cols++;
            goto out;
        }
    errno = 0;
    if ((x->file = H5Fcreate(x->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        fail(err, NEM_HDF5_EIO, "cannot create %s: %s", x->tmp, errno ? strerror(errno) : "HDF5 error");
        goto out;
    }
    for (size_t i = 0; i < x->n_cols; i++)
        if (!column_create(&x->cols[i], x->file, err))
            goto out;
    ok = true;
out:
    for (size_t i = 0; own && own[i]; i++)
        bson_free(own[i]);
    bson_free(own);
    return ok;
}

/* Closes the datasets and the file; returns false when HDF5 could not flush them. */
static bool export_close(export_t *x)
{
    bool ok = true;
    for (size_t i = 0; i < x->n_cols; i++) {
        if (x->cols[i].dset > 0 && H5Dclose(x->cols[i].dset) < 0)
            ok = false;
        x->cols[i].dset = H5I_INVALID_HID;
    }
    if (x->file > 0 && H5Fclose(x->file) < 0)
        ok = false;
    x->file = H5I_INVALID_HID;
    return ok;
}

static bool export_stream(export_t *x, nem_store_t *store, bson_error_t *err)
{
    const bson_t *const *docs;
    size_t n;
    bson_error_t berr = {0};
    nem_batches_t *b = nem_batches_new(store, x->opts->collection, x->opts->pipeline, x->opts->batch_size, err);
    bool ok = b != NULL;
    while (ok && nem_batches_next(b, &docs, &n, &berr)) {
        ok = (x->pos > 0 || export_setup(x, docs[0], err)) && export_batch(x, docs, n, err);
        x->pos += n;
    }
    if (ok && berr.code != 0) {
        memcpy(err, &berr, sizeof berr);
        ok = false;
    } else if (ok && x->pos == 0) {
        ok = fail(err, NEM_HDF5_EEMPTY, "collection '%s'%s gave no documents: nothing to export",
                  x->opts->collection, x->opts->pipeline ? " with this pipeline" : "");
    }
    if (b)
        nem_batches_destroy(b);
    return ok;
}

bool nem_export_run(nem_store_t *store, const nem_export_opts_t *opts, uint64_t *n_docs, bson_error_t *err)
{
    export_t x = {.opts = opts, .file = H5I_INVALID_HID};
    bool ok;
    *n_docs = 0;
    if (!opts->collection || !opts->output || opts->batch_size == 0)
        return fail(err, NEM_HDF5_EARG, "export: a collection, an output file and a batch size are needed");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors are reported once, as one line */
    x.tmp = bson_strdup_printf("%s.tmp", opts->output);
    ok = export_stream(&x, store, err);
    if (!export_close(&x) && ok)
        ok = fail(err, NEM_HDF5_EIO, "cannot finish writing %s", x.tmp);
    if (ok && rename(x.tmp, opts->output) != 0)
        ok = fail(err, NEM_HDF5_EIO, "cannot rename %s to %s: %s", x.tmp, opts->output, strerror(errno));
    if (!ok)
        unlink(x.tmp);
    for (size_t i = 0; i < x.n_cols; i++)
        column_free(&x.cols[i]);
    bson_free(x.cols);
    bson_free(x.tmp);
    if (ok)
        *n_docs = x.pos;
    return ok;
}
