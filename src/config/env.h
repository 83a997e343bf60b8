/* Environment hygiene for child processes (stage scripts, database servers, the MongoDB shell): which of nemesyst's
 * own variables no child may see. It lives with the options because the secret ones are the N_* names of the
 * options marked NEM_F_SECRET; the spawner (util/spawn.h) takes nem_env_withheld as its withhold predicate. */
#ifndef NEM_CONFIG_ENV_H
#define NEM_CONFIG_ENV_H

#include <stdbool.h>
#include <stddef.h>

/* True for a NAME=VALUE entry of nemesyst's own environment that no child may inherit: the N_* variables of
 * secret options (N_DB_PASSWORD, N_DB_TLS_CERTIFICATE_KEY_FILE_PASSWORD: NEM_F_SECRET in src/config/options.def),
 * the NEMESYST_* variables nemesyst sets per script (a user's value there would be stale; every other NEMESYST_*
 * variable passes through), and launcher copies of the command line (Open MPI's OMPI_ARGV). */
bool nem_env_withheld(const char *entry);

/* True when a launcher (mpirun, srun, any PMI/PMIx launcher) started this process: its own argv, visible to every
 * user of the host, then holds whatever was on the command line. */
bool nem_env_launched(void);

/* Overwrites, in place, the launcher variables that copy the command line (OMPI_ARGV) with argv as it is now
 * (after the secrets in it were overwritten), so the secret is in neither this process's environment nor any
 * child's. Returns how many variables were rewritten. */
size_t nem_env_scrub_launcher_argv(int argc, char **argv);

#endif
