/* Environment hygiene for child processes (stage scripts, database servers, the MongoDB shell). */
#ifndef NEM_UTIL_ENV_H
#define NEM_UTIL_ENV_H

#include <stdbool.h>

/* True for a NAME=VALUE entry of nemesyst's own environment that no child may inherit: the N_* variables of
 * secret options (N_DB_PASSWORD, N_DB_TLS_CERTIFICATE_KEY_FILE_PASSWORD: NEM_F_SECRET in src/config/options.def),
 * and NEMESYST_* values, which are set per child and would otherwise leak stale ones from an outer run. */
bool nem_env_withheld(const char *entry);

#endif
