/* The wire between a C plugin's nemesyst_allreduce and the worker rank that runs it (a socketpair: the plugin's end
 * is NEMESYST_GROUP_FD). A request is a header (status 0) and count elements of dtype; the reply is a header with
 * status 0 and the reduced count elements, or status 1 and count bytes of a message saying why the group failed. */
#ifndef NEM_UTIL_GROUPWIRE_H
#define NEM_UTIL_GROUPWIRE_H

#include <stdint.h>

#define NEM_GROUP_MAGIC 0x4e4d4152u /* "NMAR" */
#define NEM_GROUP_MAX_COUNT 0x7fffffffu /* elements per call: what one MPI call takes */

typedef struct {
    uint32_t magic;
    uint32_t dtype;   /* nemesyst_dtype_t */
    uint32_t op;      /* nemesyst_op_t */
    uint32_t status;  /* reply: 0 done, 1 the group failed */
    uint64_t count;
} nem_group_wire_t;

/* The sizes of nemesyst_dtype_t's values, in their order (NEMESYST_FLOAT32, FLOAT64, INT32, INT64); 0 = unknown. */
static inline uint32_t nem_group_dtype_size(uint32_t dtype)
{
    return dtype == 0 ? 4 : dtype == 1 ? 8 : dtype == 2 ? 4 : dtype == 3 ? 8 : 0;
}
#define NEM_GROUP_NOPS 3 /* NEMESYST_SUM, NEMESYST_MAX, NEMESYST_MIN */

#endif
