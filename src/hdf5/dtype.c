/* Element types shared by the HDF5 import plugin and nemesyst-export (dtype.h). */
#include "hdf5/dtype.h"

#include <string.h>

static const nem_h5_dtype_t dtypes[] = {
    {"int8", H5T_INTEGER, true, 1},    {"int16", H5T_INTEGER, true, 2},    {"int32", H5T_INTEGER, true, 4},
    {"int64", H5T_INTEGER, true, 8},   {"uint8", H5T_INTEGER, false, 1},   {"uint16", H5T_INTEGER, false, 2},
    {"uint32", H5T_INTEGER, false, 4}, {"uint64", H5T_INTEGER, false, 8},  {"float32", H5T_FLOAT, true, 4},
    {"float64", H5T_FLOAT, true, 8},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

const nem_h5_dtype_t *nem_h5_dtype_by_name(const char *name)
{
    for (size_t i = 0; name && i < N_DTYPES; i++)
        if (strcmp(dtypes[i].name, name) == 0)
            return &dtypes[i];
    return NULL;
}

const nem_h5_dtype_t *nem_h5_dtype_of(hid_t type)
{
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    bool is_signed = true;
    if (cls == H5T_INTEGER)
        is_signed = H5Tget_sign(type) == H5T_SGN_2;
    else if (cls != H5T_FLOAT)
        return NULL;
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtypes[i].cls == cls && dtypes[i].size == size && dtypes[i].is_signed == is_signed)
            return &dtypes[i];
    return NULL;
}

hid_t nem_h5_dtype_le(const nem_h5_dtype_t *d)
{
    hid_t base;
    if (d->cls == H5T_FLOAT)
        base = d->size == 4 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE;
    else if (d->is_signed)
        base = d->size == 1 ? H5T_STD_I8LE : d->size == 2 ? H5T_STD_I16LE : d->size == 4 ? H5T_STD_I32LE : H5T_STD_I64LE;
    else
        base = d->size == 1 ? H5T_STD_U8LE : d->size == 2 ? H5T_STD_U16LE : d->size == 4 ? H5T_STD_U32LE : H5T_STD_U64LE;
    return H5Tcopy(base);
}
