/* The resolved configuration: every option's values and where they came from.
 * Precedence: a --sweep's set > command line > environment (N_*) > config files > defaults (ConfigArgParse's rules). */
#ifndef NEM_CONFIG_H
#define NEM_CONFIG_H

#include <bson/bson.h>

#include "util/errors.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "options.h"

/* In order of precedence, least first: a --sweep's set (NEM_SRC_SWEEP) is above the command line. */
typedef enum { NEM_SRC_UNSET, NEM_SRC_DEFAULT, NEM_SRC_FILE, NEM_SRC_ENV, NEM_SRC_CLI, NEM_SRC_SWEEP } nem_source_t;

typedef struct {
    char **v;           /* values as text; NULL-terminated, n of them */
    size_t n;
    nem_source_t src;
    char *where;        /* "cli", "env N_DB_PORT", "FILE:LINE", "sweep FILE:LINE" or "default" */
} nem_value_t;

typedef struct nem_config {
    nem_value_t values[NEM_OPT__COUNT];
    char **files;       /* config files read, in order */
    size_t n_files;
    char *password;     /* resolved secret for --db-password; never printed */
    bool help, version;
    bool skip_sweep;    /* set before nem_config_resolve: a --sweep (from a shared config file, N_SWEEP) is not
                         * applied (nemesyst-registry: a sweep's set changes no connection option) */
} nem_config_t;

/* Limits on input: anything past them is refused with one line naming it (exit status 2, nothing started). */
#define NEM_CONFIG_FILE_MAX (1024 * 1024)        /* bytes of one config file */
#define NEM_CONFIG_DEPTH_MAX 32                  /* config files including config files (`config = other.conf`) */
#define NEM_PASSWORD_FILE_MAX 4096               /* bytes of a --db-password-file */
#define NEM_VALUE_MAX (64 * 1024)                /* bytes of one option value */
#define NEM_JSON_VALUE_MAX (4 * 1024 * 1024)     /* bytes of one pipeline, inline or in a file */
#define NEM_LIST_MAX 10000                       /* values of one list option */
#define NEM_DB_NAME_MAX 63                       /* bytes of a database name (MongoDB: fewer than 64) */
#define NEM_NAMESPACE_MAX 255                    /* bytes of "database.collection" (MongoDB 4.4 and later) */
#define NEM_SWEEP_FILE_MAX (4 * 1024 * 1024)     /* bytes of a --sweep file */

/* Errors: NEM_ERROR_CONFIG with NEM_CONFIG_E* codes (util/errors.h). */

nem_config_t *nem_config_new(void);
void nem_config_destroy(nem_config_t *cfg);

/* Resolves argv, the environment (environ) and config files into cfg. Returns false with a one-line message in
 * err (naming the option, value, FILE:LINE or path) on any bad input; nothing else is touched. --db-password
 * values on the command line are overwritten in argv so they leave the process list. */
bool nem_config_resolve(nem_config_t *cfg, int argc, char **argv, bson_error_t *err);

/* Overwrites the values of secret options in argv (every rank runs it: each has its own process list entry). */
void nem_config_scrub_argv(int argc, char **argv);

/* Layers, exposed for tests and for the resolver. */
bool nem_config_parse_cli(nem_config_t *layer, int argc, char **argv, bson_error_t *err);
bool nem_config_parse_env(nem_config_t *layer, char **envp, bson_error_t *err);
/* Parses one config file into layer (later lines and later files win). include_cb is called for `config` keys. */
bool nem_config_parse_file(nem_config_t *layer, const char *path, bson_error_t *err);
bool nem_config_parse_text(nem_config_t *layer, const char *text, const char *name, bson_error_t *err);

/* --sweep FILE (sweep.c): reads FILE, checks every option set in it (each line: one JSON object of option overrides)
 * against the configuration cfg resolved so far, and applies set --sweep-index (else SLURM_ARRAY_TASK_ID) as the
 * highest layer (NEM_SRC_SWEEP, where "sweep FILE:LINE"). Without --sweep, refuses --sweep-index, --sweep-name and
 * --sweep-resume given. False with one line naming FILE (and LINE) on any bad input. */
bool nem_config_apply_sweep(nem_config_t *cfg, bson_error_t *err);
/* Why option id may not be set by a sweep's set (a phrase), or NULL when it may. */
const char *nem_sweep_refuses(nem_opt_id_t id);
/* The sweep's name: --sweep-name, else the sweep file's name without directory and extension; NULL without
 * --sweep. Caller frees. */
char *nem_cfg_sweep_name(const nem_config_t *cfg);
/* The values the sweep's set gave ({"dl-batch-size": 64, "dl-epochs": [2]}: typed, lists as arrays). */
void nem_cfg_sweep_overrides(const nem_config_t *cfg, bson_t *out);

/* Sets option id from text as a file or environment would give it (lists split, booleans parsed). */
bool nem_config_set_text(nem_config_t *layer, nem_opt_id_t id, const char *text, nem_source_t src,
                         const char *where, bson_error_t *err);

/* Checks every value against its option's type. */
bool nem_config_validate(const nem_config_t *cfg, bson_error_t *err);

/* The checks nem_config_validate runs, one at a time (check.c). Each fails with one line naming the option, the
 * source of its value (FILE:LINE, env N_X, cli) and the rule it breaks. */
/* Every value: valid UTF-8, at most NEM_VALUE_MAX bytes (NEM_JSON_VALUE_MAX for pipelines), not empty, lists of at
 * most NEM_LIST_MAX values, a list's [ closed by its ]. */
bool nem_config_check_values(const nem_config_t *cfg, bson_error_t *err);
/* Integer options within the range of their row in options.def (NEM_RANGE, NEM_SPAN, NEM_RANGE_OR_OFF: ports
 * 1-65535, timeouts >= 0, pools and batches >= 1, ...). */
bool nem_config_check_ranges(const nem_config_t *cfg, bson_error_t *err);
/* Options with a fixed set of values (NEM_CHOICES in options.def: --log-level, --db-engine, ...) hold one of them. */
bool nem_config_check_choices(const nem_config_t *cfg, bson_error_t *err);
/* Database, collection and GridFS bucket names (NEM_F_DB, NEM_F_COLLECTION, NEM_F_BUCKET) against MongoDB's
 * naming rules, and every namespace "db.collection" (a bucket's longest: "db.bucket.chunks") within 255 bytes. */
bool nem_config_check_names(const nem_config_t *cfg, bson_error_t *err);
/* Files the options name that nemesyst reads (NEM_F_FILE: TLS files): regular, readable, not empty. Touches the
 * file system, so it is not part of nem_config_validate; rank 0 runs it before anything starts. */
bool nem_config_check_files(const nem_config_t *cfg, bson_error_t *err);
/* Stage scripts (NEM_F_SCRIPT) of every stage that runs (its NEM_SCRIPTS_OF switch is true): at least one given,
 * each an existing, regular, readable file. Touches the file system, so it is not part of nem_config_validate;
 * rank 0 runs it before anything starts. */
bool nem_config_check_scripts(const nem_config_t *cfg, bson_error_t *err);

/* MongoDB's naming rules for one name: true when it is fine, else false with the rule it breaks in why (a phrase
 * such as "contains '$'"). A database name may be "$external" when allow_external (authentication databases). */
bool nem_db_name_ok(const char *name, bool allow_external, char *why, size_t why_len);
bool nem_collection_name_ok(const char *name, char *why, size_t why_len);

/* Labels people give runs (NEM_F_LABEL, NEM_F_TAG; nemesyst-registry's filters take the same): a label (a run's
 * name, a tag's value) is 1 to max bytes of UTF-8 without control characters; a tag's key is 1 to NEM_TAG_KEY_MAX
 * bytes of the same, without '.' and not starting with '$' (a key of the stored document "tags"). True when fine,
 * else false with the rule broken in why ("is empty", "contains '.'"). nem_tag_split splits "KEY=VALUE" at its first
 * '=' (false when it has none) and checks both: why names the part at fault. */
#define NEM_LABEL_MAX 128
#define NEM_TAG_KEY_MAX 64
#define NEM_TAG_VALUE_MAX 256
bool nem_label_ok(const char *s, size_t max, char *why, size_t why_len);
bool nem_tag_key_ok(const char *key, char *why, size_t why_len);
bool nem_tag_split(const char *tag, char *key, size_t key_len, const char **value, char *why, size_t why_len);
/* Run names and tags (NEM_F_LABEL, NEM_F_TAG) by those rules, and each tag's key once. */
bool nem_config_check_labels(const nem_config_t *cfg, bson_error_t *err);

/* Reads the password: --db-password literal (cli, N_DB_PASSWORD, file), else --db-password-file (refused when
 * group/other can read it), else a no-echo prompt on the TTY when --db-password is true. */
bool nem_config_resolve_password(nem_config_t *cfg, bson_error_t *err);
/* A secret kept in a file (a password, an API key): a regular file of at most max bytes that only its owner may
 * read, whose first line (UTF-8, no NUL, not empty) is the secret; into *out (bson_zero_free it). option names the
 * file in messages ("--db-password-file"), where (may be NULL) prefixes them. */
bool nem_secret_file_read(const char *path, const char *option, size_t max, const char *where, char **out,
                          bson_error_t *err);
/* SCRAM prepares a password with SASLprep (RFC 4013) before hashing it: one holding a code point that profile
 * prohibits (controls, private use, non-characters, ...), leaves unassigned, or whose right-to-left text breaks its
 * rule has no SCRAM form, and a server refuses it late (or logs it). False with an error naming the password's source
 * and the character's position, never the password. */
bool nem_config_check_password_saslprep(const nem_config_t *cfg, bson_error_t *err);

/* True for an environ entry "N_NAME=VALUE" whose N_NAME is no option's variable (N_DB_PROT): nemesyst ignores it,
 * and warns (app/configure.c). suggest (len bytes) gets the closest option's variable ("N_DB_PORT"), or "" when none
 * is close. */
bool nem_config_env_unknown(const char *entry, char *suggest, size_t len);

/* Accessors. Lists index with repeat-last semantics; an index past a short list gets its last value. */
size_t nem_cfg_count(const nem_config_t *cfg, nem_opt_id_t id);
const char *nem_cfg_str(const nem_config_t *cfg, nem_opt_id_t id, size_t idx);
int64_t nem_cfg_int(const nem_config_t *cfg, nem_opt_id_t id, size_t idx);
bool nem_cfg_bool(const nem_config_t *cfg, nem_opt_id_t id);
bool nem_cfg_is_set(const nem_config_t *cfg, nem_opt_id_t id);
/* --db-authentication '' (2.0.6's way to reach a server without authentication): no client authenticates, whatever
 * --db-user-name says. */
bool nem_cfg_auth_off(const nem_config_t *cfg);
/* A JSON option as BSON: inline JSON, or the path of a file holding it. An array becomes {"0":..,"1":..}. */
bool nem_cfg_json(const nem_config_t *cfg, nem_opt_id_t id, size_t idx, bson_t *out, bson_error_t *err);
/* Expands a leading ~ in a path option into $HOME; caller frees. */
char *nem_cfg_path(const nem_config_t *cfg, nem_opt_id_t id, size_t idx);

/* Parses text as a boolean (true/false/yes/no/1/0/on/off, any case). */
bool nem_parse_bool(const char *text, bool *out);
bool nem_parse_int(const char *text, int64_t *out);

/* Prints the resolved configuration, secrets masked, with each value's source. */
void nem_config_print(const nem_config_t *cfg, FILE *out);

/* The resolved options as a BSON document {"db-port": 65535, "data-collection": ["a"], ...}; secrets are left
 * out unless with_secrets (MPI broadcast only; never stored). Includes "_password" when with_secrets. */
void nem_config_to_bson(const nem_config_t *cfg, bool with_secrets, bson_t *out);
bool nem_config_from_bson(nem_config_t *cfg, const bson_t *doc, bson_error_t *err);

/* The options a stage script sees: secrets removed, and every per-script list padded to n_scripts entries by
 * repeating its last value, so args["dl_epochs"][position] works for every script (2.0.6 raised IndexError). */
void nem_config_to_bson_for_scripts(const nem_config_t *cfg, size_t n_scripts, bson_t *out);
/* True for list options indexed by a script's position (not -d/--data, -c/--config or --db-bind-ip). */
bool nem_option_is_per_script(nem_opt_id_t id);

#endif
