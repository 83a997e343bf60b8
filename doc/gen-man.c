/* Writes nemesyst(1) from the option table, so the man page and --help never disagree; with --table, the table
 * itself as tab-separated text (name, type, list, default, min, max, off, choices) for tests/cli/docs.sh, which
 * checks every default, range and choice README.md states against it. */
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "config/options.h"

static void roff(const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", stdout); /* a leading . or ' would be read as a request */
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

/* True when the option's help already names every one of its choices as a word ("error, warn, info or debug"):
 * the man page then does not list them a second time. */
static bool help_names_choices(const nem_option_t *o)
{
    for (const char *const *c = o->choices; *c; c++) {
        size_t n = strlen(*c);
        bool found = false;
        for (const char *p = strstr(o->help, *c); p && !found; p = strstr(p + 1, *c)) {
            bool starts = p == o->help || !(isalnum((unsigned char)p[-1]) || p[-1] == '-' || p[-1] == '_');
            bool ends = !(isalnum((unsigned char)p[n]) || p[n] == '-' || p[n] == '_');
            found = starts && ends;
        }
        if (!found)
            return false;
    }
    return true;
}

/* The range of an integer option, as the man page and its DIAGNOSTICS say it ("1 to 65535"). */
static const char *range_text(const nem_range_t *r, char *buf, size_t len)
{
    if (r->set && r->has_off)
        snprintf(buf, len, "%" PRId64 " (none), or %" PRId64 " to %" PRId64 "%s%s", r->off, r->min, r->max,
                 r->unit ? " " : "", r->unit ? r->unit : "");
    else if (r->set && r->max == INT64_MAX)
        snprintf(buf, len, "at least %" PRId64, r->min);
    else if (r->set)
        snprintf(buf, len, "%" PRId64 " to %" PRId64, r->min, r->max);
    else
        snprintf(buf, len, "any");
    return buf;
}

/* What values the option's row accepts beyond its type (options.def's rule column), as a sentence. */
static void rule(const nem_option_t *o, nem_opt_id_t id)
{
    char text[320], range[128];
    if (o->range.set)
        snprintf(text, sizeof text, " Range: %s.", range_text(&o->range, range, sizeof range));
    else if (o->choices && !help_names_choices(o)) {
        char list[256];
        snprintf(text, sizeof text, " One of: %s%s.", nem_option_choices_text(id, list, sizeof list),
                 o->choices_anycase ? " (in any case)" : "");
    } else if (o->choices && o->choices_anycase)
        snprintf(text, sizeof text, " In any case.");
    else if (o->flags & NEM_F_SCRIPT)
        snprintf(text, sizeof text, " With --%s, at least one is needed and each must be an existing, readable regular"
                 " file.", nem_options[o->stage].name);
    else
        return;
    roff(text);
}

static void diagnostics(void)
{
    char buf[768], port[64];
    puts(".SH DIAGNOSTICS\nBad input is refused before anything starts (no server, no script, no password prompt) with"
         " exit status 2 and one line on standard error that starts with \\fBnemesyst: error:\\fR and names where the"
         " value came from (\\fBcli\\fR, \\fBenv N_X\\fR, \\fIFILE\\fR:\\fILINE\\fR, \\fBdefault\\fR), the option, and"
         " the rule it breaks. No input makes nemesyst hang or crash. The classes:");
    snprintf(buf, sizeof buf, "an unknown option (with a \"did you mean\" suggestion), a missing value, a stray"
             " argument, a value of the wrong type (integer, boolean, one of a set: each option above gives its"
             " choices), an integer out of the range each option above gives (--db-port %s, say), and conflicting"
             " options (--db-password with --db-password-file, --resume with --provenance false).",
             range_text(&nem_options[NEM_OPT_DB_PORT].range, port, sizeof port));
    item("Options", buf);
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
    puts(".PP\n\\fBnemesyst\\-errors\\fR(7) lists every bad input the test suite runs, each with its exit status and"
         " the whole line nemesyst prints, and every kind of bad script output with what its run record says.");
}

/* A variable of the ENVIRONMENT section: its name in bold, then what it does. */
static void env_item(const char *name, const char *body)
{
    printf(".TP\n.B %s\n", name);
    roff(body);
    putchar('\n');
}

/* The variables stage scripts receive (src/stage/runner/runner.h, runner-spawn.c) and the ones nemesyst reads; every
 * NEMESYST_* variable the sources set or read is here, and tests/cli/docs.sh keeps it so. */
static void environment(void)
{
    puts(".SH ENVIRONMENT\n.TP\n.B N_*\nEach option's value, named with the option above: N_ and the long option in"
         " upper snake case (N_DB_PORT for \\-\\-db\\-port). Below the command line, above config files.");
    puts(".SS Given to every stage script\nA script gets nemesyst's own environment (so CUDA_VISIBLE_DEVICES,"
         " OMP_NUM_THREADS, SLURM_* and the rest reach it as the rank has them) less the N_* variables of secret"
         " options and Open MPI's copy of the command line (OMPI_ARGV), and with these set for it:");
    env_item("NEMESYST_STAGE, NEMESYST_POSITION", "The script's stage (clean, learn or predict) and its position in"
             " the stage's script list (0, 1, ...).");
    env_item("NEMESYST_SCRIPT, NEMESYST_ENTRY_POINT", "The script's path, and its entry point (--*-entry-point,"
             " default main).");
    env_item("NEMESYST_RANK, NEMESYST_HOST", "The MPI rank and the host that run it.");
    env_item("NEMESYST_RUN_ID, NEMESYST_ATTEMPT", "The run's id, and which attempt of the run this is (1, then one"
             " more for each --resume or requeued job).");
    env_item("NEMESYST_DB_URI, NEMESYST_DB_NAME", "Where the store is (a MongoDB URI without the password) and"
             " --db-name.");
    env_item("NEMESYST_PASSWORD_FD, NEMESYST_TLS_KEY_PASSWORD_FD", "Only when there is one: an inherited descriptor"
             " to read the database password (or the TLS key's password) from, to its end. Neither is ever in the"
             " environment or argv.");
    env_item("NEMESYST_ARGS_FILE", "A file holding the resolved options as extended JSON, secrets removed.");
    env_item("NEMESYST_WORKDIR", "A private work directory, removed when the script ends (under TMPDIR).");
    env_item("NEMESYST_TIMEOUT", "--script-timeout in seconds (0: none).");
    env_item("NEMESYST_ITEM_FD", "Python scripts and C plugins (the adapter and the plugin host use it): the"
             " descriptor their items go to as BSON; executables print theirs on standard output.");
    env_item("NEMESYST_INPUT_MODEL, NEMESYST_INPUT_MODEL_ID", "A retraining learner: the file its input model was"
             " downloaded to, and that model's GridFS id.");
    env_item("NEMESYST_CHECKPOINT, NEMESYST_STOP_FILE", "A learner: the file its newest checkpoint was downloaded to"
             " (executables, when there is one), and a file that exists once a stop is coming (save a checkpoint and"
             " end).");
    env_item("NEMESYST_GROUP_RANK, NEMESYST_GROUP_SIZE", "The member's index and the group's size under"
             " --dl-data-parallel (0 and 1 for a script alone).");
    env_item("NEMESYST_SHARD, NEMESYST_SHARD_COLLECTION, NEMESYST_GROUP_FD", "A learner group's member: the filter"
             " that picks its part of the collection (canonical extended JSON), that collection, and (C plugins) the"
             " socket of nemesyst_allreduce.");
    env_item("MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE", "A learner group's member:"
             " torch.distributed's rendezvous and ranks, so init_process_group works unchanged.");
    puts(".SS Read by nemesyst");
    env_item("NEMESYST_FERRETDB", "The FerretDB binary --db-engine ferretdb runs; else ferretdb on PATH, then the"
             " one installed in nemesyst's libexec directory, then the build cache.");
    env_item("NEMESYST_PYTHON3", "The Python 3 interpreter that runs *.py stage scripts when --python is not given"
             " (before python3 on PATH and the one nemesyst was built with).");
    env_item("NEMESYST_PYTHON_ADAPTER, NEMESYST_PLUGIN_HOST", "The Python adapter and the plugin host to run instead"
             " of the installed ones (a relocated install).");
    env_item("NEMESYST_SYSCONFDIR", "Read NEMESYST_SYSCONFDIR/nemesyst/nemesyst.d/*.conf instead of"
             " /etc/nemesyst/nemesyst.d/*.conf.");
    env_item("NEMESYST_HDF5_IMPORT_ROWS", "The HDF5 import plugin reads at most this many rows at once.");
    env_item("TMPDIR", "Where the scripts' work directories are made (default /tmp), and where a model whose upload"
             " failed is kept.");
    env_item("SLURM_JOB_ID, SLURM_RESTART_COUNT", "Under Slurm: recorded with each attempt of a run; with --requeue, a"
             " requeued job (SLURM_RESTART_COUNT above 0) resumes the run its job started.");
    env_item("PATH, XDG_CACHE_HOME, HOME", "mongod, mongosh (or mongo) and ferretdb are looked up on PATH; the FerretDB"
             " build cache is XDG_CACHE_HOME/nemesyst, else ~/.cache/nemesyst.");
    env_item("MPIRUN", "nemesyst-mpirun: the mpirun command to run, with any options of its own (default mpirun).");
}

/* --table: one line an option, for tests: name, type, list, default, min, max, off, choices (comma separated). */
static void table(void)
{
    static const char *const types[] = {"bool", "int", "str", "json"};
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_option_t *o = &nem_options[i];
        const nem_range_t *r = &o->range;
        printf("%s\t%s\t%s\t%s\t", o->name, types[o->type], (o->flags & NEM_F_LIST) ? "list" : "one",
               o->defval && !(o->flags & NEM_F_SECRET) ? o->defval : "-");
        if (r->set)
            printf("%" PRId64 "\t%" PRId64 "\t", r->min, r->max);
        else
            printf("-\t-\t");
        if (r->set && r->has_off)
            printf("%" PRId64 "\t", r->off);
        else
            printf("-\t");
        for (const char *const *c = o->choices; c && *c; c++)
            printf("%s%s", c == o->choices ? "" : ",", *c);
        printf("%s\n", o->choices ? "" : "-");
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--table") == 0) {
        table();
        return 0;
    }
    puts(".TH NEMESYST 1 \"\" \"nemesyst " PACKAGE_VERSION "\" \"User Commands\"");
    puts(".SH NAME\nnemesyst \\- distributed deep learning with MongoDB as the data and model store");
    puts(".SH SYNOPSIS\n.B nemesyst\n[\\fIoptions\\fR]\n.br\n.B mpirun \\-n\n\\fIN\\fR\n.B nemesyst\n[\\fIoptions\\fR]"
         "\n.br\n.B nemesyst\\-mpirun \\-n\n\\fIN\\fR\n.B nemesyst\n[\\fIoptions\\fR]\n.br\n.B srun\n.B nemesyst\n"
         "[\\fIoptions\\fR]");
    puts(".SH DESCRIPTION\nRank 0 resolves the options, owns the database server's life (\\-\\-db\\-init,"
         " \\-\\-db\\-start, \\-\\-db\\-stop, \\-\\-db\\-login) and coordinates the stages; the other ranks run"
         " cleaning, learning and predicting scripts in lockstep rounds. Data and models live in MongoDB; MPI carries"
         " control only.");
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
    environment();
    diagnostics();
    puts(".SH EXIT STATUS\n0 success; 1 runtime failure; 2 bad option, config file, value or path (nothing started);"
         " 3 the database server could not be started, stopped or reached; 4 one or more stage scripts failed;"
         " 130/143 interrupted by SIGINT/SIGTERM.");
    puts(".SH SEE ALSO\n\\fBnemesyst\\-registry\\fR(1): runs, models, lineage and verify, read from the store;"
         " \\fBnemesyst\\-errors\\fR(7): every bad input and its message;"
         " \\fBnemesyst\\-export\\fR (\\fBnemesyst\\-export \\-\\-help\\fR): a collection or a pipeline's result to"
         " HDF5;"
         " \\fBnemesyst\\-mpirun\\fR: mpirun with the same arguments, that lets SIGINT and SIGTERM wind a run down in"
         " order (exit 130/143);"
         " the Slurm scripts in the source tree's slurm/ directory; README.md.\n.PP\n"
         "\\fBmpirun\\fR(1), \\fBsrun\\fR(1), \\fBsbatch\\fR(1), \\fBmongod\\fR(1), \\fBmongosh\\fR(1)");
    return 0;
}
