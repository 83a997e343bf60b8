/* Test helper for the tests/hdf5 scripts (h5py and h5dump are not assumed):
 *   h5check make FILE                     writes the sample file (see make_sample)
 *   h5check make-bad FILE                 writes a file with a compound dataset (unsupported by the import)
 *   h5check compare FILE1 DS1 FILE2 DS2   same shape, same element type, same values; exit 1 otherwise
 *   h5check dump FILE DS                  prints the dataset's type, shape and every element, one per line */
#include <hdf5.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 25

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "h5check: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 1;
}

static bool write_ds(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank, const hsize_t *dims,
                     const void *data)
{
    hid_t space = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = ds >= 0 && H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(space);
    return ok;
}

static bool write_strings(hid_t loc)
{
    const char *names[3] = {"alpha", "\xce\xb2\xce\xb5ta", ""};
    char fixed[2][8] = {"ab", "cdefgh"};
    hsize_t n3 = 3, n2 = 2;
    hid_t vl = H5Tcopy(H5T_C_S1), fx = H5Tcopy(H5T_C_S1);
    H5Tset_size(vl, H5T_VARIABLE);
    H5Tset_cset(vl, H5T_CSET_UTF8);
    H5Tset_size(fx, 8);
    H5Tset_strpad(fx, H5T_STR_NULLPAD);
    bool ok = write_ds(loc, "names", vl, vl, 1, &n3, names) && write_ds(loc, "fixed", fx, fx, 1, &n2, fixed);
    H5Tclose(vl);
    H5Tclose(fx);
    return ok;
}

/* /images float32 [25,3]; /cube uint8 [4,2,3]; /answer int32 scalar; /grp/names UTF-8 strings [3];
 * /grp/fixed fixed-length strings [2]; /grp/inner/labels int64 [25]; /grp/inner/temps big-endian float64 [25]. */
static int make_sample(const char *path)
{
    float images[ROWS][3];
    uint8_t cube[4][2][3];
    int64_t labels[ROWS];
    double temps[ROWS];
    int32_t answer = 42;
    hsize_t d2[2] = {ROWS, 3}, d3[3] = {4, 2, 3}, d1 = ROWS;
    for (int r = 0; r < ROWS; r++) {
        for (int c = 0; c < 3; c++)
            images[r][c] = (float)r * 0.5f + (float)c * 0.25f - 3.0f;
        labels[r] = (int64_t)r * 100000000007LL - 5;
        temps[r] = r / 3.0;
    }
    for (int i = 0; i < 24; i++)
        (&cube[0][0][0])[i] = (uint8_t)(i * 10);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g = f >= 0 ? H5Gcreate2(f, "grp", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    hid_t inner = g >= 0 ? H5Gcreate2(g, "inner", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    bool ok = inner >= 0 && write_ds(f, "images", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d2, images) &&
              write_ds(f, "cube", H5T_STD_U8LE, H5T_NATIVE_UINT8, 3, d3, cube) &&
              write_ds(f, "answer", H5T_STD_I32LE, H5T_NATIVE_INT32, 0, NULL, &answer) && write_strings(g) &&
              write_ds(inner, "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &d1, labels) &&
              write_ds(inner, "temps", H5T_IEEE_F64BE, H5T_NATIVE_DOUBLE, 1, &d1, temps);
    if (inner >= 0)
        H5Gclose(inner);
    if (g >= 0)
        H5Gclose(g);
    if (f >= 0)
        H5Fclose(f);
    return ok ? 0 : fail("cannot write %s%s", path, "");
}

static int make_bad(const char *path)
{
    struct { int32_t a; double b; } rows[2] = {{1, 1.5}, {2, 2.5}};
    hsize_t n = 2;
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof rows[0]);
    H5Tinsert(t, "a", 0, H5T_NATIVE_INT32);
    H5Tinsert(t, "b", sizeof(double), H5T_NATIVE_DOUBLE);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    bool ok = f >= 0 && write_ds(f, "table", t, t, 1, &n, rows);
    if (f >= 0)
        H5Fclose(f);
    H5Tclose(t);
    return ok ? 0 : fail("cannot write %s%s", path, "");
}

/* An open dataset read whole: as int64, double or strings by its class. */
typedef struct {
    hid_t f, ds, ftype;
    H5T_class_t cls;
    int rank;
    hsize_t dims[H5S_MAX_RANK];
    size_t n;
    int64_t *i;
    double *d;
    char **s;
} data_t;

static bool read_strings(data_t *x)
{
    hid_t mt = H5Tcopy(H5T_C_S1);
    bool vlen = H5Tis_variable_str(x->ftype) > 0, ok;
    size_t size = H5Tget_size(x->ftype);
    x->s = calloc(x->n ? x->n : 1, sizeof *x->s);
    H5Tset_cset(mt, H5Tget_cset(x->ftype)); /* HDF5 does not convert between ASCII and UTF-8 */
    if (vlen) {
        H5Tset_size(mt, H5T_VARIABLE);
        ok = H5Dread(x->ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, x->s) >= 0; /* leaked: a short-lived helper */
    } else {
        char *buf = calloc(x->n ? x->n : 1, size);
        H5Tset_size(mt, size);
        ok = H5Dread(x->ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
        for (size_t k = 0; ok && k < x->n; k++)
            x->s[k] = strndup(buf + k * size, size);
        free(buf);
    }
    H5Tclose(mt);
    return ok;
}

static bool data_read(data_t *x, const char *path, const char *name)
{
    memset(x, 0, sizeof *x);
    if ((x->f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0 || (x->ds = H5Dopen2(x->f, name, H5P_DEFAULT)) < 0)
        return fail("cannot open %s:%s", path, name), false;
    x->ftype = H5Dget_type(x->ds);
    x->cls = H5Tget_class(x->ftype);
    hid_t space = H5Dget_space(x->ds);
    x->rank = H5Sget_simple_extent_dims(space, x->dims, NULL);
    x->n = (size_t)H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    if (x->cls == H5T_STRING)
        return read_strings(x);
    if (x->cls == H5T_INTEGER) {
        x->i = calloc(x->n ? x->n : 1, sizeof *x->i);
        return H5Dread(x->ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, x->i) >= 0;
    }
    x->d = calloc(x->n ? x->n : 1, sizeof *x->d);
    return H5Dread(x->ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x->d) >= 0;
}

static void type_text(const data_t *x, char *out, size_t len)
{
    const char *k = x->cls == H5T_STRING ? "string" : x->cls == H5T_FLOAT ? "float" : "int";
    if (x->cls == H5T_INTEGER && H5Tget_sign(x->ftype) == H5T_SGN_NONE)
        k = "uint";
    if (x->cls == H5T_STRING)
        snprintf(out, len, "string");
    else
        snprintf(out, len, "%s%zu", k, 8 * H5Tget_size(x->ftype));
}

static int compare(char **argv)
{
    data_t a, b;
    char ta[32], tb[32];
    if (!data_read(&a, argv[2], argv[3]) || !data_read(&b, argv[4], argv[5]))
        return 1;
    type_text(&a, ta, sizeof ta);
    type_text(&b, tb, sizeof tb);
    if (strcmp(ta, tb) != 0)
        return fail("element types differ: %s vs %s", ta, tb);
    if (a.rank != b.rank || memcmp(a.dims, b.dims, sizeof(hsize_t) * (size_t)a.rank) != 0)
        return fail("shapes differ (%s vs %s)", argv[3], argv[5]);
    for (size_t k = 0; k < a.n; k++) {
        bool same = a.cls == H5T_STRING  ? strcmp(a.s[k] ? a.s[k] : "", b.s[k] ? b.s[k] : "") == 0
                    : a.cls == H5T_FLOAT ? a.d[k] == b.d[k]
                                         : a.i[k] == b.i[k];
        if (!same) {
            char at[32];
            snprintf(at, sizeof at, "%zu", k);
            return fail("values differ at element %s of %s", at, argv[3]);
        }
    }
    printf("h5check: %s:%s and %s:%s hold the same %zu %s values\n", argv[2], argv[3], argv[4], argv[5], a.n, ta);
    return 0;
}

static int dump(char **argv)
{
    data_t x;
    char t[32];
    if (!data_read(&x, argv[2], argv[3]))
        return 1;
    type_text(&x, t, sizeof t);
    printf("%s [", t);
    for (int i = 0; i < x.rank; i++)
        printf("%s%llu", i ? ", " : "", (unsigned long long)x.dims[i]);
    printf("]\n");
    for (size_t k = 0; k < x.n; k++) {
        if (x.cls == H5T_STRING)
            printf("%s\n", x.s[k] ? x.s[k] : "");
        else if (x.cls == H5T_FLOAT)
            printf("%.17g\n", x.d[k]);
        else
            printf("%" PRId64 "\n", x.i[k]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (argc == 3 && !strcmp(argv[1], "make"))
        return make_sample(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "make-bad"))
        return make_bad(argv[2]);
    if (argc == 6 && !strcmp(argv[1], "compare"))
        return compare(argv);
    if (argc == 4 && !strcmp(argv[1], "dump"))
        return dump(argv);
    fprintf(stderr, "usage: h5check make FILE | make-bad FILE | compare FILE1 DS1 FILE2 DS2 | dump FILE DS\n");
    return 2;
}
