/* nemesyst-export's engine: a collection or an aggregation pipeline's result, streamed in batches, written to an
 * HDF5 file with one extendible, chunked dataset per exported field (row i of every dataset = document i):
 *   integers (int32, int64)               -> 1-D int64
 *   doubles (and integers after a double) -> 1-D float64
 *   strings                               -> 1-D variable-length UTF-8 strings
 *   binary (subtype 0) with dtype, shape  -> (1 + len(shape))-D of dtype (the HDF5 import's and the Fashion-MNIST
 *                                            example's tensor format: dtype and shape are the binary's siblings)
 * A field missing from a document, or of another type, kind, dtype or shape than in the first document, fails the
 * export with a message naming the document's position and the field; the output is written to OUTPUT.tmp and
 * renamed over OUTPUT only when everything succeeded, so a failed export leaves no output file. */
#ifndef NEM_HDF5_EXPORT_H
#define NEM_HDF5_EXPORT_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define NEM_ERROR_HDF5 1009
enum {
    NEM_HDF5_EARG = 1,   /* bad argument */
    NEM_HDF5_EIO = 2,    /* HDF5 or file-system failure */
    NEM_HDF5_ETYPE = 3,  /* a field of an unsupported or conflicting type */
    NEM_HDF5_EFIELD = 4, /* a field missing from a document */
    NEM_HDF5_EEMPTY = 5, /* no documents to export */
};

typedef struct {
    const char *collection;
    const bson_t *pipeline;     /* aggregation pipeline {"0": {...}, ...}; NULL = every document */
    const char *output;         /* the HDF5 file to write */
    char *const *fields;        /* dotted field paths; NULL = the first document's top-level fields */
    size_t n_fields;
    size_t batch_size;          /* documents per batch (and per HDF5 write) */
} nem_export_opts_t;

/* Exports; *n_docs receives the number of documents written. */
bool nem_export_run(nem_store_t *store, const nem_export_opts_t *opts, uint64_t *n_docs, bson_error_t *err);

#endif
