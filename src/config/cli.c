/* The command line, parsed with getopt_long from the option table. List options take one or more values
 * ("--data-collection a b"), as argparse's nargs='+' does; getopt's "-" mode hands us those extra values in
 * order. No option is special here: secrets (NEM_F_SECRET) are overwritten in argv once read, and a NEM_F_PROMPT
 * secret given alone means "true" (ask on the terminal). */
#include "config-private.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum { CODE_POSITIONAL = 1, CODE_BASE = 256, CODE_HELP = 'h', CODE_VERSION = 'V' };

/* argparse's rule: a word that starts with '-' and is not a negative number is an option, never the value of the
 * option before it ("--db-name --data-clean" names no database). */
static bool looks_like_option(const char *s)
{
    if (s[0] != '-' || s[1] == '\0')
        return false;
    char *end;
    errno = 0;
    (void)strtod(s, &end);
    return *end != '\0';
}

/* A value taken from the next word (not "--opt=value", not "-cvalue") that is an option: refused as argparse does. */
static bool swallowed_option(char **argv, int prev, int optind_now, const nem_option_t *o, const char *value,
                             bson_error_t *err)
{
    if (optind_now != prev + 2 || argv[prev + 1] != value || !looks_like_option(value))
        return false;
    if (o->flags & NEM_F_SECRET)
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE,
                       "option --%s expected one argument, and the next word is an option (give a value that starts "
                       "with '-' as --%s=VALUE)", o->name, o->name);
    else
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE,
                       "option --%s expected one argument, got the option '%s' (give a value that starts with '-' as "
                       "--%s=%s)", o->name, value, o->name, value);
    return true;
}

static bool unknown_option(const char *arg, bson_error_t *err)
{
    const char *s = nem_option_suggest(arg);
    char name[128];
    bson_strncpy(name, arg, sizeof name);
    char *eq = strchr(name, '=');
    if (eq)
        *eq = '\0';
    if (s)
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE, "unknown or ambiguous option '%s' (did you mean --%s?)",
                       name, s);
    else
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE, "unknown option '%s' (see --help)", name);
    return false;
}

/* Overwrites a secret in argv so it does not stay visible in the process list. */
static void scrub(char *s)
{
    if (s)
        memset(s, 'x', strlen(s));
}

bool nem_config_parse_cli(nem_config_t *layer, int argc, char **argv, bson_error_t *err)
{
    struct option longopts[NEM_OPT__COUNT + 3];
    char optstring[3 + 3 * NEM_OPT__COUNT + 4] = "-:hV";
    size_t os = strlen(optstring);
    int current = -1;          /* option that takes the following positional values */
    bool current_optional = false;

    nem_options_getopt(longopts, CODE_BASE, optstring, &os);
    longopts[NEM_OPT__COUNT] = (struct option){"help", no_argument, NULL, CODE_HELP};
    longopts[NEM_OPT__COUNT + 1] = (struct option){"version", no_argument, NULL, CODE_VERSION};
    longopts[NEM_OPT__COUNT + 2] = (struct option){0};

    opterr = 0;
    optind = 0; /* GNU: 0 reinitialises, so tests may parse many times */
    for (;;) {
        int prev = optind ? optind : 1;
        int c = getopt_long(argc, argv, optstring, longopts, NULL);
        if (c == -1)
            break;
        if (c == CODE_HELP) {
            layer->help = true;
            continue;
        }
        if (c == CODE_VERSION) {
            layer->version = true;
            continue;
        }
        if (c == '?') {
            const char *arg = prev < argc ? argv[prev] : "?";
            if (optopt && optopt < CODE_BASE && arg[0] == '-' && arg[1] != '-')
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE, "unknown option '-%c' (see --help)", optopt);
            else if (optopt >= CODE_BASE)
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE, "option --%s takes no value ('%s')",
                               nem_options[optopt - CODE_BASE].name, arg);
            else
                return unknown_option(arg, err);
            return false;
        }
        if (c == ':') {
            const char *name = optopt >= CODE_BASE ? nem_options[optopt - CODE_BASE].name : NULL;
            if (name)
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE, "option --%s needs a value", name);
            else
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE, "option -%c needs a value", optopt);
            return false;
        }
        if (c == CODE_POSITIONAL) {
            if (current < 0) {
                bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE,
                               "unexpected argument '%s' (values follow the option they belong to)", optarg);
                return false;
            }
            nem_value_t *v = &layer->values[current];
            bool ignored;
            /* "--provenance maybe": the word is the boolean's value, refused as "--provenance=maybe" is. */
            if (current_optional && nem_options[current].type == NEM_T_BOOL && !nem_parse_bool(optarg, &ignored))
                return nem_config_set_text(layer, (nem_opt_id_t)current, optarg, NEM_SRC_CLI, "cli", err);
            if (current_optional) {
                nem_value_set(v, &optarg, 1, NEM_SRC_CLI, "cli");
                current = -1;
            } else {
                nem_value_append(v, optarg);
            }
            if (current == -1 || nem_options[current].flags & NEM_F_SECRET)
                scrub(optarg);
            if (current_optional)
                current_optional = false;
            continue;
        }
        int id = -1;
        if (c >= CODE_BASE) {
            id = c - CODE_BASE;
        } else {
            for (int i = 0; i < NEM_OPT__COUNT; i++)
                if (nem_options[i].short_name == c)
                    id = i;
        }
        if (id < 0)
            return unknown_option(argv[prev], err);
        const nem_option_t *o = &nem_options[id];
        current = -1;
        current_optional = false;
        if (optarg && o->type != NEM_T_BOOL && swallowed_option(argv, prev, optind, o, optarg, err))
            return false;
        if (o->type == NEM_T_BOOL) {
            if (!nem_config_set_text(layer, (nem_opt_id_t)id, optarg ? optarg : "true", NEM_SRC_CLI, "cli", err))
                return false;
            /* "--provenance false" as well as "--provenance=false": a following boolean word is the value. */
            if (!optarg) {
                current = id;
                current_optional = true;
            }
        } else if ((o->flags & NEM_F_PROMPT) && !optarg) {
            /* "--db-password" alone prompts; a following plain word is taken as the password (2.0.6 form). */
            char *t = "true";
            nem_value_set(&layer->values[id], &t, 1, NEM_SRC_CLI, "cli");
            current = id;
            current_optional = true;
        } else {
            if ((o->flags & NEM_F_REPEAT) && layer->values[id].n > 0)
                nem_value_append(&layer->values[id], optarg); /* --tag a=1 --tag b=2: both */
            else
                nem_value_set(&layer->values[id], &optarg, 1, NEM_SRC_CLI, "cli");
            if (o->flags & NEM_F_SECRET)
                scrub(optarg);
            if (o->flags & NEM_F_LIST)
                current = id;
        }
    }
    if (optind < argc) {
        /* Only "--" leaves arguments behind in "-" mode. */
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EUSAGE, "unexpected argument '%s'", argv[optind]);
        return false;
    }
    return true;
}

/* The secret option an argument names: exactly, or as the unambiguous abbreviation getopt_long would accept. */
static int secret_named(const char *arg)
{
    size_t len = strcspn(arg, "=");
    int match = -1, matches = 0;
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        if (strncmp(nem_options[i].name, arg, len) != 0)
            continue;
        if (strlen(nem_options[i].name) == len)
            return (nem_options[i].flags & NEM_F_SECRET) ? i : -1;
        match = i;
        matches++;
    }
    return matches == 1 && (nem_options[match].flags & NEM_F_SECRET) ? match : -1;
}

void nem_config_scrub_argv(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return;
        if (strncmp(argv[i], "--", 2) != 0 || secret_named(argv[i] + 2) < 0)
            continue;
        char *eq = strchr(argv[i], '=');
        if (eq)
            scrub(eq + 1);
        else if (i + 1 < argc && argv[i + 1][0] != '-')
            scrub(argv[++i]);
    }
}
