/* Stage names (stages.h). */
#include "util/stages.h"

#include <stdio.h>
#include <string.h>

static const char *const names[NEM_STAGE__COUNT] = {"clean", "learn", "predict"};

const char *nem_stage_name(nem_stage_t stage)
{
    return (unsigned)stage < NEM_STAGE__COUNT ? names[stage] : "?";
}

bool nem_stage_from_name(const char *name, nem_stage_t *out)
{
    for (int s = 0; s < NEM_STAGE__COUNT; s++)
        if (strcmp(names[s], name) == 0) {
            *out = (nem_stage_t)s;
            return true;
        }
    return false;
}

void nem_script_key(nem_stage_t stage, size_t position, char *buf, size_t len)
{
    snprintf(buf, len, "%s-%zu", nem_stage_name(stage), position);
}
