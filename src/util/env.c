/* Environment hygiene for child processes. */
#include "util/env.h"

#include <string.h>

#include "config/options.h"

bool nem_env_withheld(const char *entry)
{
    if (strncmp(entry, "NEMESYST_", 9) == 0)
        return true;
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        char name[128];
        size_t n;
        if (!(nem_options[i].flags & NEM_F_SECRET))
            continue;
        nem_option_env_name((nem_opt_id_t)i, name, sizeof name);
        n = strlen(name);
        if (strncmp(entry, name, n) == 0 && entry[n] == '=')
            return true;
    }
    return false;
}
