/* The three stages of a run, in their documented order, and their names as run records and provenance store them.
 * Every layer names stages; only app/ knows which options configure each (app/plan.c). */
#ifndef NEM_UTIL_STAGES_H
#define NEM_UTIL_STAGES_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { NEM_STAGE_CLEAN, NEM_STAGE_LEARN, NEM_STAGE_PREDICT, NEM_STAGE__COUNT } nem_stage_t;

/* "clean", "learn", "predict". */
const char *nem_stage_name(nem_stage_t stage);
bool nem_stage_from_name(const char *name, nem_stage_t *out);

/* The key of a script in run records and provenance: "clean-0". */
void nem_script_key(nem_stage_t stage, size_t position, char *buf, size_t len);

#endif
