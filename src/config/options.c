/* The option table and what is derived from it alone: names, environment names, suggestions, --help. */
#include "options.h"

#include <ctype.h>
#include <getopt.h>
#include <string.h>
#include <strings.h>

/* The rule column expands to designated initializers (NEM_RANGE, NEM_CHOICES, ...), or to nothing (NEM_ANY). */
const nem_option_t nem_options[NEM_OPT__COUNT] = {
#define NEM_OPTION(id, lname, sname, type_, flags_, defval_, group_, metavar_, rule, help_) \
    [NEM_OPT_##id] = {.name = lname, .short_name = sname, .type = type_, .flags = flags_, .defval = defval_, \
                      .group = group_, .metavar = metavar_, .help = help_, rule},
#include "options.def"
#undef NEM_OPTION
};

static const char *const group_titles[NEM_G__COUNT] = {
    [NEM_G_NEMESYST] = "Nemesyst options",
    [NEM_G_DATA] = "Data pre-processing options",
    [NEM_G_DL] = "Deep learning options",
    [NEM_G_INFER] = "Infering options",
    [NEM_G_REPLICA] = "MongoDb replica options",
    [NEM_G_TLS] = "MongoDb TLS options",
    [NEM_G_DB] = "MongoDb options",
};

const char *nem_group_title(nem_group_t group)
{
    return group < NEM_G__COUNT ? group_titles[group] : "?";
}

int nem_option_find(const char *name)
{
    if (strncmp(name, "--", 2) == 0)
        name += 2;
    for (int i = 0; i < NEM_OPT__COUNT; i++)
        if (strcmp(nem_options[i].name, name) == 0)
            return i;
    return -1;
}

void nem_option_env_name(nem_opt_id_t id, char *buf, size_t len)
{
    size_t o = 0;
    const char *s = nem_options[id].name;
    if (len < 3)
        return;
    buf[o++] = 'N';
    buf[o++] = '_';
    for (; *s && o + 1 < len; s++)
        buf[o++] = *s == '-' ? '_' : (char)toupper((unsigned char)*s);
    buf[o] = '\0';
}

int nem_option_choice(nem_opt_id_t id, const char *value)
{
    const nem_option_t *o = &nem_options[id];
    for (int i = 0; value && o->choices && o->choices[i]; i++)
        if ((o->choices_anycase ? strcasecmp(value, o->choices[i]) : strcmp(value, o->choices[i])) == 0)
            return i;
    return -1;
}

const char *nem_option_choices_text(nem_opt_id_t id, char *buf, size_t len)
{
    const nem_option_t *o = &nem_options[id];
    size_t used = 0;
    if (len)
        buf[0] = '\0';
    for (int i = 0; o->choices && o->choices[i] && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", o->choices[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[64];
    if (lb >= sizeof row / sizeof row[0])
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *nem_option_suggest(const char *name)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    while (*name == '-')
        name++;
    char key[128];
    size_t n = 0;
    for (; name[n] && name[n] != '=' && n + 1 < sizeof key; n++)
        key[n] = name[n] == '_' ? '-' : (char)tolower((unsigned char)name[n]);
    key[n] = '\0';
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        size_t d = edit_distance(key, nem_options[i].name);
        /* A prefix of an option is a likely abbreviation or truncation. */
        if (n >= 3 && strncmp(nem_options[i].name, key, n) == 0)
            d = d < 2 ? d : 2;
        if (d < best_d) {
            best_d = d;
            best = nem_options[i].name;
        }
    }
    return best_d <= 3 + n / 6 ? best : NULL;
}

static void print_default(FILE *out, const nem_option_t *o)
{
    if (o->flags & NEM_F_SECRET || !o->defval) {
        return;
    }
    if (o->flags & NEM_F_LIST)
        fprintf(out, " Default: [%s]", o->defval);
    else
        fprintf(out, " Default: %s", o->defval);
}

void nem_options_print_help(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [options]\n"
            "       mpirun -n N %s [options]\n\n"
            "Distributed deep learning with MongoDB as the data and model store.\n"
            "Values come from the command line, then N_* environment variables, then config files\n"
            "(-c files, ./nemesyst.d/*.conf, /etc/nemesyst/nemesyst.d/*.conf), then defaults.\n\n"
            "  -h, --help            show this help and exit\n"
            "  -V, --version         print the version and exit\n",
            prog, prog);
    for (int g = 0; g < NEM_G__COUNT; g++) {
        fprintf(out, "\n%s:\n", nem_group_title((nem_group_t)g));
        for (int i = 0; i < NEM_OPT__COUNT; i++) {
            const nem_option_t *o = &nem_options[i];
            char left[128];
            int w;
            if (o->group != (nem_group_t)g)
                continue;
            if (o->short_name)
                w = snprintf(left, sizeof left, "  -%c, --%s", o->short_name, o->name);
            else
                w = snprintf(left, sizeof left, "      --%s", o->name);
            if (o->type != NEM_T_BOOL && w > 0 && (size_t)w < sizeof left)
                snprintf(left + w, sizeof left - (size_t)w, " %s%s", o->metavar ? o->metavar : "VALUE",
                         (o->flags & NEM_F_LIST) ? " [...]" : "");
            char env[96];
            nem_option_env_name((nem_opt_id_t)i, env, sizeof env);
            fprintf(out, "%s\n        %s.", left, o->help);
            print_default(out, o);
            fprintf(out, " [env %s]\n", env);
        }
    }
}

void nem_options_getopt(struct option *longopts, int code_base, char *optstring, size_t *len)
{
    size_t os = *len;
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_option_t *o = &nem_options[i];
        bool optional = o->type == NEM_T_BOOL || (o->flags & NEM_F_PROMPT);
        longopts[i] = (struct option){o->name, optional ? optional_argument : required_argument, NULL, code_base + i};
        if (o->short_name) {
            optstring[os++] = o->short_name;
            if (o->type != NEM_T_BOOL)
                optstring[os++] = ':';
            if (optional && o->type != NEM_T_BOOL)
                optstring[os++] = ':'; /* "::": the value is optional */
        }
    }
    optstring[os] = '\0';
    *len = os;
}
