/* The option table: one row per option, shared by the command line, the environment, config files, --help and
 * --print-config. Rows live in options.def. */
#ifndef NEM_OPTIONS_H
#define NEM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { NEM_T_BOOL, NEM_T_INT, NEM_T_STR, NEM_T_JSON } nem_type_t;

enum {
    NEM_F_LIST = 1u << 0,   /* one or more values; per-script lists repeat their last value */
    NEM_F_SECRET = 1u << 1, /* never printed, logged or stored */
    NEM_F_SCRIPT = 1u << 2, /* stage script paths: must exist when their stage runs */
    NEM_F_NEW = 1u << 3,    /* not in Nemesyst 2.0.6 */
    NEM_F_DB = 1u << 4,     /* names a database: MongoDB's database naming rules */
    NEM_F_COLLECTION = 1u << 5, /* names a collection of --db-name: MongoDB's collection naming rules */
    NEM_F_BUCKET = 1u << 6, /* names a GridFS bucket of --db-name: a collection whose longest namespace is .chunks */
    NEM_F_FILE = 1u << 7,   /* a file nemesyst reads: must be a regular, readable file before anything starts */
    NEM_F_PROMPT = 1u << 8, /* a secret that may come without a value: alone or true asks on the terminal; false or
                             * empty means none (shown as given by --print-config; every other value is masked) */
    NEM_F_EMPTY_NONE = 1u << 9, /* 2.0.6 tests these with "if value": an empty value means none. Without a default
                                 * the option is then unset; --db-authentication keeps '' (no authentication) */
    NEM_F_OUTPUT = 1u << 10,    /* a stage writes here: never one of nemesyst's own collections (NEM_OWN_PREFIX) nor
                                 * a GridFS bucket's BUCKET.files or BUCKET.chunks */
    NEM_F_REPEAT = 1u << 11,    /* a list option given again on the command line adds its values (--tag a=1 --tag
                                 * b=2) instead of replacing the earlier ones */
    NEM_F_LABEL = 1u << 12,     /* a label people give (--run-name): at most NEM_LABEL_MAX bytes, no control
                                 * characters (nem_label_ok) */
    NEM_F_TAG = 1u << 13,       /* KEY=VALUE tags (--tag): nem_tag_ok's rules, each KEY once */
};

/* Nemesyst's own collections and buckets (run records, metrics, lineage blobs, checkpoints) all start with this. */
#define NEM_OWN_PREFIX "nemesyst_"

/* The integers an option accepts (check.c refuses the rest, naming the bound; the man page prints it). */
typedef struct {
    bool set;         /* false: the option has no range */
    int64_t min, max;
    bool span;        /* refusals say "must be MIN-MAX" rather than "must be >= MIN" or "must be <= MAX" */
    bool has_off;     /* off, outside [min, max], turns the setting off: "must be OFF (none) or at least MIN UNIT" */
    int64_t off;
    const char *unit; /* the unit the off form's refusal and the man page name ("seconds"), or NULL */
} nem_range_t;

/* The rule column of options.def: what values an option accepts, beyond its type. Each expands to designated
 * initializers of nem_option_t. */
#define NEM_ANY /* no rule beyond the type and the flags */
#define NEM_RANGE(lo, hi) .range = {.set = true, .min = (lo), .max = (hi)}
#define NEM_SPAN(lo, hi) .range = {.set = true, .min = (lo), .max = (hi), .span = true}
#define NEM_RANGE_OR_OFF(off_, lo, hi, unit_) \
    .range = {.set = true, .min = (lo), .max = (hi), .has_off = true, .off = (off_), .unit = (unit_)}
/* One of these words, exactly (NEM_CHOICES) or in any case (NEM_CHOICES_ANYCASE). */
#define NEM_CHOICES(...) .choices = (const char *const[]){__VA_ARGS__, NULL}
#define NEM_CHOICES_ANYCASE(...) NEM_CHOICES(__VA_ARGS__), .choices_anycase = true
/* NEM_F_SCRIPT options: the boolean option that runs the stage whose scripts they name. */
#define NEM_SCRIPTS_OF(stage_id) .stage = NEM_OPT_##stage_id

typedef enum {
    NEM_G_NEMESYST,
    NEM_G_DATA,
    NEM_G_DL,
    NEM_G_INFER,
    NEM_G_REPLICA,
    NEM_G_TLS,
    NEM_G_DB,
    NEM_G__COUNT
} nem_group_t;

typedef enum {
#define NEM_OPTION(id, ...) NEM_OPT_##id,
#include "options.def"
#undef NEM_OPTION
    NEM_OPT__COUNT
} nem_opt_id_t;

typedef struct {
    const char *name;       /* long name without dashes: "db-port" */
    char short_name;        /* 0 when none */
    nem_type_t type;
    unsigned flags;
    const char *defval;     /* as config-file text; list defaults are space-separated; NULL = unset */
    nem_group_t group;
    const char *metavar;
    const char *help;
    nem_range_t range;           /* NEM_RANGE, NEM_SPAN, NEM_RANGE_OR_OFF; range.set is false for the others */
    const char *const *choices;  /* NEM_CHOICES: the accepted values, NULL-terminated; NULL for any value */
    bool choices_anycase;
    nem_opt_id_t stage;          /* NEM_SCRIPTS_OF: the stage switch of a NEM_F_SCRIPT option */
} nem_option_t;

extern const nem_option_t nem_options[NEM_OPT__COUNT];

const char *nem_group_title(nem_group_t group);

/* Finds an option by its long name; "--db-port" and "db-port" both match. Returns -1 when unknown. */
int nem_option_find(const char *name);

/* Writes the option's environment variable name (N_ + upper snake case: N_DB_PORT) into buf. */
void nem_option_env_name(nem_opt_id_t id, char *buf, size_t len);

/* Suggests the long option closest to name (edit distance), or NULL when nothing is close. */
const char *nem_option_suggest(const char *name);

/* getopt_long's view of the table: longopts[i] is option i (val code_base + i; booleans and prompting options take
 * an optional value), and their short names are appended to optstring at *len (with ':' or '::'), NUL-terminated.
 * longopts needs NEM_OPT__COUNT entries, optstring 3 * NEM_OPT__COUNT + 1 more bytes. */
struct option;
void nem_options_getopt(struct option *longopts, int code_base, char *optstring, size_t *len);

/* The index of value in the option's choices (ignoring case for NEM_CHOICES_ANYCASE), or -1 when it is not one
 * of them or the option has none. */
int nem_option_choice(nem_opt_id_t id, const char *value);

/* Writes the option's choices as "a, b, c" into buf (empty when it has none); returns buf. */
const char *nem_option_choices_text(nem_opt_id_t id, char *buf, size_t len);

/* Writes --help, generated from the table and grouped by 2.0.6's categories. */
void nem_options_print_help(FILE *out, const char *prog);

#endif
