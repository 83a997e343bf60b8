/* The status vocabulary (status.h). */
#include "util/status.h"

#include <string.h>

static const char *const names[NEM_STATUS__COUNT] = {
    [NEM_STATUS_RUNNING] = "running",         [NEM_STATUS_SUCCEEDED] = "succeeded", [NEM_STATUS_FAILED] = "failed",
    [NEM_STATUS_INTERRUPTED] = "interrupted", [NEM_STATUS_LOST] = "lost",           [NEM_STATUS_UNKNOWN] = "?",
};

const char *nem_status_name(nem_status_t s)
{
    return (unsigned)s < NEM_STATUS__COUNT ? names[s] : names[NEM_STATUS_UNKNOWN];
}

nem_status_t nem_status_parse(const char *word)
{
    for (int s = 0; word && s < NEM_STATUS_UNKNOWN; s++)
        if (strcmp(names[s], word) == 0)
            return (nem_status_t)s;
    return NEM_STATUS_UNKNOWN;
}

nem_status_t nem_status_of_script(bool ok)
{
    return ok ? NEM_STATUS_SUCCEEDED : NEM_STATUS_FAILED;
}
