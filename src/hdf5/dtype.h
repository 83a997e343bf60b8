/* Element types shared by the HDF5 import plugin and nemesyst-export: the numpy-style names stored in a tensor
 * document's dtype field ("float32", "int64", "uint8", ...) and their HDF5 counterparts. Tensor bytes are always
 * little-endian. */
#ifndef NEM_HDF5_DTYPE_H
#define NEM_HDF5_DTYPE_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *name; /* "float32" */
    H5T_class_t cls;  /* H5T_INTEGER or H5T_FLOAT */
    bool is_signed;
    size_t size;      /* bytes per element */
} nem_h5_dtype_t;

/* The entry named name, or NULL when it is not one of int8..int64, uint8..uint64, float32, float64. */
const nem_h5_dtype_t *nem_h5_dtype_by_name(const char *name);
/* The entry matching an HDF5 integer or float type (any byte order), or NULL. */
const nem_h5_dtype_t *nem_h5_dtype_of(hid_t type);
/* A new little-endian HDF5 type for the entry (H5Tclose it), or a negative id. */
hid_t nem_h5_dtype_le(const nem_h5_dtype_t *d);

#endif
