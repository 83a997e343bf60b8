/* Writes nemesyst(1) from the option table, so the man page and --help never disagree. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "config/options.h"

static void roff(const char *s)
{
    for (; *s; s++) {
        if (*s == '-' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
}

/* A tagged paragraph: tag in bold, then body, both escaped. */
static void item(const char *tag, const char *body)
{
    fputs(".TP\n.B ", stdout);
    roff(tag);
    putchar('\n');
    roff(body);
    putchar('\n');
}

/* What values the option's row accepts beyond its type (options.def's rule column), as a sentence. */
static void rule(const nem_option_t *o, nem_opt_id_t id)
{
    const nem_range_t *r = &o->range;
    char text[320];
    if (r->set && r->has_off)
        snprintf(text, sizeof text, " Range: %" PRId64 " (none), or %" PRId64 " to %" PRId64 "%s%s.", r->off, r->min,
                 r->max, r->unit ? " " : "", r->unit ? r->unit : "");
    else if (r->set && r->max == INT64_MAX)
        snprintf(text, sizeof text, " Range: at least %" PRId64 ".", r->min);
    else if (r->set)
        snprintf(text, sizeof text, " Range: %" PRId64 " to %" PRId64 ".", r->min, r->max);
    else if (o->choices) {
        char list[256];
        snprintf(text, sizeof text, " One of: %s%s.", nem_option_choices_text(id, list, sizeof list),
                 o->choices_anycase ? " (in any case)" : "");
    } else if (o->flags & NEM_F_SCRIPT)
        snprintf(text, sizeof text, " With --%s, at least one is needed and each must be an existing, readable regular"
                 " file.", nem_options[o->stage].name);
    else
        return;
    roff(text);
}

static void diagnostics(void)
{
    char buf[768];
    puts(".SH DIAGNOSTICS\nBad input is refused before anything starts (no server, no script, no password prompt) with"
         " exit status 2 and one line on standard error that starts with \\fBnemesyst: error:\\fR and names where the"
         " value came from (\\fBcli\\fR, \\fBenv N_X\\fR, \\fIFILE\\fR:\\fILINE\\fR, \\fBdefault\\fR), the option, and"
         " the rule it breaks. No input makes nemesyst hang or crash. The classes:");
    item("Options", "an unknown option (with a \"did you mean\" suggestion), a missing value, a stray argument, a value"
         " of the wrong type (integer, boolean, one of a set: each option above gives its choices), an integer out of"
         " the range each option above gives (--db-port 1 to 65535, say), and conflicting options (--db-password"
         " with --db-password-file, --resume with --provenance false).");
    snprintf(buf, sizeof buf, "not valid UTF-8, empty, longer than %d KiB (a pipeline: %d MiB), a list of more than %d"
             " values, or a list's [ without its ].", NEM_VALUE_MAX / 1024, NEM_JSON_VALUE_MAX / (1024 * 1024),
             NEM_LIST_MAX);
    item("Values", buf);
    snprintf(buf, sizeof buf, "not a regular file (a directory, a FIFO, a device), a symbolic link loop, larger than %d"
             " MiB, a NUL byte or invalid UTF-8 (as FILE:LINE), an unknown key, a malformed line, or includes nested"
             " deeper than %d (a file reached twice is read once, so loops end). A UTF-8 byte order mark and CRLF line"
             " ends are accepted.", NEM_CONFIG_FILE_MAX / (1024 * 1024), NEM_CONFIG_DEPTH_MAX);
    item("Config files", buf);
    item("Pipelines", "invalid JSON, JSON that is not an array or an object, nesting deeper than the JSON parser takes,"
         " or a pipeline file that is not a regular file, is empty, or is larger than the pipeline limit.");
    snprintf(buf, sizeof buf, "a database name that is empty, %d bytes or longer, or holds any of"
             " / \\ . space \" $ * < > : | ?; a collection or GridFS bucket name that is empty, holds $, starts"
             " with system., starts or ends with a dot or has an empty segment (..); a namespace"
             " (database.collection, for a bucket database.bucket.chunks) longer than %d bytes.",
             NEM_DB_NAME_MAX + 1, NEM_NAMESPACE_MAX);
    item("Names", buf);
    snprintf(buf, sizeof buf, "a stage script that does not exist or is not a regular file; a --db-password-file that"
             " group or others may read, or that is empty, larger than %d KiB or not a regular file; a TLS file that"
             " is not a regular file or is empty; a --log-file or --summary-json that is a FIFO or a directory.",
             NEM_PASSWORD_FILE_MAX / 1024);
    item("Files", buf);
    puts(".PP\nBAD INPUT CATALOGUE, at the end of this page, lists every bad input the test suite runs, each with its"
         " exit status and message.");
}

int main(void)
{
    puts(".TH NEMESYST 1 \"\" \"nemesyst " PACKAGE_VERSION "\" \"User Commands\"");
    puts(".SH NAME\nnemesyst \\- distributed deep learning with MongoDB as the data and model store");
    puts(".SH SYNOPSIS\n.B nemesyst\n[\\fIoptions\\fR]\n.br\n.B mpirun \\-n\n\\fIN\\fR\n.B nemesyst\n[\\fIoptions\\fR]");
    puts(".SH DESCRIPTION\nRank 0 resolves the options, owns the database server's life (\\-\\-db\\-init, \\-\\-db\\-start,"
         " \\-\\-db\\-stop, \\-\\-db\\-login) and coordinates the stages; the other ranks run cleaning, learning and"
         " predicting scripts in lockstep rounds. Data and models live in MongoDB; MPI carries control only.");
    puts(".PP\nValues come from, highest priority first: the command line, N_* environment variables, config files"
         " (\\-c files in order, ./nemesyst.d/*.conf, /etc/nemesyst/nemesyst.d/*.conf), defaults."
         " Config lines are \\fB\\-\\-key=value\\fR, \\fBkey = value\\fR, \\fBkey: value\\fR or \\fBkey value\\fR;"
         " lists are \\fB[a, b]\\fR or space separated; # and ; start comments.");
    puts(".SH OPTIONS\n.TP\n.BR \\-h \", \" \\-\\-help\nShow the help and exit.\n.TP\n.BR \\-V \", \" \\-\\-version\n"
         "Print the version and exit.");
    for (int g = 0; g < NEM_G__COUNT; g++) {
        printf(".SS %s\n", nem_group_title((nem_group_t)g));
        for (int i = 0; i < NEM_OPT__COUNT; i++) {
            const nem_option_t *o = &nem_options[i];
            char env[96];
            if (o->group != (nem_group_t)g)
                continue;
            puts(".TP");
            if (o->short_name)
                printf(".BR \\-%c \", \" ", o->short_name);
            else
                printf(".B ");
            fputs("\\-\\-", stdout);
            roff(o->name);
            if (o->type != NEM_T_BOOL) {
                printf(" \" \\fI");
                roff(o->metavar ? o->metavar : "VALUE");
                printf("%s\\fR\"", (o->flags & NEM_F_LIST) ? " ..." : "");
            }
            putchar('\n');
            roff(o->help);
            printf(".");
            rule(o, (nem_opt_id_t)i);
            if (o->defval && !(o->flags & NEM_F_SECRET)) {
                printf(" Default: ");
                roff(o->defval);
                printf(".");
            }
            nem_option_env_name((nem_opt_id_t)i, env, sizeof env);
            printf(" Environment: \\fB");
            roff(env);
            puts("\\fR.");
        }
    }
    diagnostics();
    puts(".SH EXIT STATUS\n0 success; 1 runtime failure; 2 bad option, config file, value or path (nothing started);"
         " 3 the database server could not be started, stopped or reached; 4 one or more stage scripts failed;"
         " 130/143 interrupted by SIGINT/SIGTERM.");
    puts(".SH SEE ALSO\nmpirun(1), sbatch(1), mongod(1)");
    return 0;
}
