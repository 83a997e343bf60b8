/* --db-login: the MongoDB shell as an interactive child. Private to src/serve. */
#ifndef NEM_SERVE_LOGIN_H
#define NEM_SERVE_LOGIN_H

#include "serve/engine.h"
#include "store/store.h"

/* The shell's command line: [shell, --nodb, --shell, script]. Never holds the password. */
void nem_login_argv(const char *shell, const char *script, nem_strv_t *argv);

/* The script the shell runs first: connect, then authenticate (the password lives only here). Caller frees. */
char *nem_login_script(const nem_store_opts_t *client, const nem_server_spec_t *spec);

/* Finds mongosh, else mongo, runs it on the terminal and waits. */
bool nem_serve_login(const nem_store_opts_t *client, const nem_server_spec_t *spec, bson_error_t *err);

#endif
