/* nemesyst-registry: asks the store what nemesyst recorded (README "Asking the store: nemesyst-registry").
 *
 * Arguments are of two kinds, told apart by one getopt_long pass over both option tables: the registry's own
 * (--json, --bucket, --best, --min, --max, --help, --version) and a verb with its id; and nemesyst's options
 * (options.def), which go to nemesyst's own resolver, so the connection is configured exactly as nemesyst's:
 * --db-* options, N_* environment variables, -c files, ./nemesyst.d/ and /etc/nemesyst/nemesyst.d/, the password
 * from --db-password(-file) or a prompt. Knowing which of nemesyst's options take a value is what splits
 * `--db-port 27017 runs` right. Options of nemesyst that do not concern the connection are accepted and ignored. */
#include <bson/bson.h>
#include <getopt.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/plan.h"
#include "config/config.h"
#include "log/log.h"
#include "registry/registry.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/exitcodes.h"

static const char usage[] =
    "NAME\n"
    "    nemesyst-registry - ask the store what nemesyst recorded: runs, models, lineage\n"
    "\n"
    "SYNOPSIS\n"
    "    nemesyst-registry [--json] runs [--name NAME] [--tag KEY=VALUE ...] [--status WORD] [--since TIME]\n"
    "                                    [--until TIME] [--script PATH] [--sweep NAME]\n"
    "    nemesyst-registry [--json] run RUN_ID\n"
    "    nemesyst-registry [--json] models [--bucket B] [--best METRIC --min|--max] [--sweep NAME]\n"
    "    nemesyst-registry [--json] [--bucket B] lineage MODEL_ID\n"
    "    nemesyst-registry [--bucket B] lineage MODEL_ID --dot\n"
    "    nemesyst-registry [--json] [--bucket B] verify MODEL_ID\n"
    "    nemesyst-registry [--json] [--bucket B] verify --all\n"
    "    nemesyst-registry [--json] [--bucket B] diff RUN_ID RUN_ID | MODEL_ID MODEL_ID\n"
    "    nemesyst-registry export RUN_ID [--format nemesyst|prov-json]\n"
    "    nemesyst-registry [--bucket B] get MODEL_ID -o FILE|- [--force]\n"
    "    nemesyst-registry [--json] metrics RUN_ID [--script KEY|POS] [--plot FILE.png]\n"
    "    nemesyst-registry [--json] affected --collection C [--filter JSON]\n"
    "    nemesyst-registry [--json] affected [--collection C] --id ID [--id ID ...] | --ids-file FILE\n"
    "    nemesyst-registry [--json] affected --run RUN_ID [--script KEY]\n"
    "    nemesyst-registry [--json] bundle RUN_ID [RUN_ID ...] -o FILE [--force] [--with-data]\n"
    "    nemesyst-registry [--json] import FILE\n"
    "    ... with nemesyst's connection options: -c CONFIG, --db-ip, --db-port, --db-name, --db-user-name,\n"
    "    --db-password[-file], --db-authentication[-database], --db-replica-*, --db-tls*\n"
    "\n"
    "DESCRIPTION\n"
    "    Reads the run records (nemesyst_runs), the models' GridFS metadata (_nemesyst) and the provenance stamps\n"
    "    of stored documents in --db-name, and answers in a table, or with --json in one JSON document (relaxed\n"
    "    extended JSON: ids as hex text, dates as ISO 8601 UTC). Read-only but for import: no other verb writes,\n"
    "    changes or deletes anything in the database (get and bundle write the file they are asked for, nothing\n"
    "    else); import adds a bundle's documents to it, all of them or none, and never changes one that is there.\n"
    "    Long listings stream: runs and verify --all print a run or a model at a time (a table a block of 1000\n"
    "    rows at a time, its columns sized by the first block; --json item by item), and affected and lineage\n"
    "    read the models and run records one at a time, keeping only what they report; memory does not grow\n"
    "    with the store. An error half-way ends a --json listing as valid JSON, with the error on stderr. The\n"
    "    queries use the indexes nemesyst makes where it writes (nemesyst_runs: started, status, name, sweep,\n"
    "    attempts.job; model buckets: metadata._nemesyst run and parent.id; data: _nemesyst.s, _nemesyst.model).\n"
    "\n"
    "VERBS\n"
    "    runs              every run, newest first, as nemesyst --list-runs lists them: id, name (--run-name),\n"
    "                      status (succeeded, failed, interrupted, running, or lost: still \"running\" but its\n"
    "                      rank 0 ran on this host and has ended, or its heartbeat is over 3 --heartbeat\n"
    "                      intervals old), start, duration, heartbeat age, scripts ok and failed, hosts, tags\n"
    "                      (--tag); the filters below keep fewer, all of them together\n"
    "    run RUN_ID        one run: its scripts as the end-of-run summary shows them (status: succeeded or failed,\n"
    "                      rank, host, seconds, documents, models, file, error), its attempts, errors, the models\n"
    "                      and the predictions it made, and its options (secrets removed)\n"
    "    models            the models of every bucket (or --bucket B) with their metrics: the numbers of the\n"
    "                      learner's metadata, the final value of a list (a history); --best METRIC --min|--max\n"
    "                      keeps the one with the least or greatest METRIC\n"
    "    lineage MODEL_ID  the model's run and host, script and sha256, options, data collection and pipeline,\n"
    "                      each cursor it consumed (count, sha256 digest), its parents to the first, and the\n"
    "                      predictions made with it; --dot: the same as a Graphviz graph (DOT) from the data\n"
    "                      sets through the models to the predictions (dot -Tsvg draws it)\n"
    "    diff A B          two runs (RUN_ID RUN_ID) or two models (MODEL_ID MODEL_ID): only what differs, as\n"
    "                      field, A, B: options, scripts (path, status, host, rank, duration_ms, documents), each\n"
    "                      model's script sha256 and code (git, interpreter, modules), data collection and\n"
    "                      pipeline, consumed count and digest, parent, and the final value of each metric; ids,\n"
    "                      start times and stamps are not compared; exit 0 when they are the same, 1 when not\n"
    "    verify MODEL_ID   re-reads each consumed cursor through its recorded pipeline and recomputes count and\n"
    "                      digest as the learner did; prints `unchanged` or `changed: N documents then, M now`;\n"
    "                      checks the script's sha256 against the file when it is still there, and the code it\n"
    "                      ran (imported modules, interpreter)\n"
    "    verify --all      every model of --db-name (or --bucket B): a table of unchanged, changed and unverifiable\n"
    "                      models with the cause of each; each distinct cursor is re-read once\n"
    "    export RUN_ID     one JSON document: the run as `run` shows it, and the lineage of each of its models;\n"
    "                      --format prov-json: the run as W3C PROV-JSON instead: entities (the documents each\n"
    "                      script wrote, by stamp; the data each learner read, with count and digest; models;\n"
    "                      predictions; the options), activities (the run and its scripts, with start and end),\n"
    "                      agents (the user, the hosts, the ranks) and used, wasGeneratedBy, wasDerivedFrom,\n"
    "                      wasAssociatedWith, actedOnBehalfOf\n"
    "    get MODEL_ID      downloads the model's file, streamed: -o FILE writes FILE (through a temporary file\n"
    "                      renamed once complete, so never a part of one; an existing FILE only with --force),\n"
    "                      -o - writes to stdout; checks it against the sha256 its metadata records (models of\n"
    "                      nemesyst 3.1 on): on a mismatch nothing is written (to stdout, the sha256 is checked\n"
    "                      in a first read of the file, then it is sent in a second) and the exit status is 1\n"
    "    metrics RUN_ID    the metrics its scripts reported while they ran (name, step, value, time), by script;\n"
    "                      --script KEY|POS keeps one script (\"learn-0\") or position; --plot FILE.png draws them\n"
    "                      with gnuplot (Debian: gnuplot-nox)\n"
    "    affected          from data to everything made from it: the models whose training data included any of\n"
    "                      the given documents (how many of theirs), the models retrained from those, to the last,\n"
    "                      and the predictions made with any of them (collection, count, run, script). Each model's\n"
    "                      consumed cursors are re-run on the server restricted to the documents, each distinct\n"
    "                      collection, pipeline and shard once: a pipeline of per-document stages ($match,\n"
    "                      $project, $addFields, $set, $unset, $unwind, $replaceRoot, $replaceWith, $redact,\n"
    "                      $lookup, $graphLookup, $sort) with the documents' $match first; one that also has $limit\n"
    "                      or $skip (or a learner that stopped early) whole, tracing its output by _id, which no\n"
    "                      stage may change; anything else ($group, $sample, ...) cannot be checked\n"
    "    bundle RUN_ID...  one file (-o FILE, through a temporary file renamed once complete) with everything the runs\n"
    "                      made and recorded: run records, metrics, lineage blobs, models with their GridFS files,\n"
    "                      the predictions their predictors wrote (by stamp); --with-data: the documents their\n"
    "                      models consumed too (each consumed collection's documents that its recorded pipelines'\n"
    "                      leading $match selects, all of them for a learner group or another first stage), with\n"
    "                      their stamps. A tar archive (tar tvf lists it): a member per part, each a BSON stream,\n"
    "                      and a manifest (manifest.json) with the format version and every part's sha256; streamed,\n"
    "                      memory bounded at any size\n"
    "    import FILE       loads a bundle into --db-name, the one verb that writes: every part's sha256 is checked\n"
    "                      first (before connecting), then every document against the store by _id; one there with\n"
    "                      other content refuses the whole bundle, naming it; one there the same is skipped, so a\n"
    "                      second import adds nothing. All or nothing: the run records go last, and a write that\n"
    "                      fails midway removes what this import wrote. lineage, affected and models answer as on\n"
    "                      the source; verify says unchanged when the data came (--with-data), unverifiable if not\n"
    "\n"
    "OPTIONS\n"
    "    --json            JSON instead of a table (export always writes JSON)\n"
    "    --name NAME       runs: the runs named NAME (--run-name), exactly\n"
    "    --tag KEY=VALUE   runs: the runs tagged KEY=VALUE (--tag), exactly; repeatable, all must match\n"
    "    --status WORD     runs: the runs of that status: succeeded, failed, interrupted, running (alive) or lost\n"
    "    --since TIME      runs: the runs started at TIME or later; --until TIME: started before TIME. TIME is\n"
    "                      ISO 8601, UTC unless it has an offset: a date (2026-01-02: its midnight; --until takes\n"
    "                      the whole day) or a date and time (2026-01-02T03:04[:05[.678]][Z|+01:00])\n"
    "    --script PATH     runs: the runs that ran that script (a stage that ran with it in its list): PATH as\n"
    "                      the run was given it, or its last components (learn.py, examples/learn.py)\n"
    "    --sweep NAME      runs: the runs of sweep NAME (nemesyst --sweep: --sweep-name, or the sweep file's name\n"
    "                      without its extension); models: the models those runs stored (--json gives each one's\n"
    "                      sweep_index), so --best picks the best set of the sweep\n"
    "    -o, --output FILE get: where the model's file goes, - for stdout; bundle: where the bundle goes\n"
    "    --force           get, bundle: replace FILE when it exists\n"
    "    --with-data       bundle: the documents the runs' models consumed too, so verify can check them there\n"
    "    --format F        export: nemesyst (the default: nemesyst-registry-export/1) or prov-json (W3C PROV-JSON)\n"
    "    --dot             lineage: the lineage graph in Graphviz's DOT language instead of a table\n"
    "    --bucket B        look for models in the GridFS bucket B only (default: every bucket of --db-name)\n"
    "    --best METRIC     models: the model whose metadata number METRIC (dotted for nested) is least (--min)\n"
    "                      or greatest (--max)\n"
    "    --collection C    affected: the documents of collection C (all of them, or those --filter matches)\n"
    "    --filter JSON     affected: a query filter on C's stored documents ('{\"split\": \"train\"}')\n"
    "    --id ID           affected: a document's _id, repeatable: 24 hex digits for an ObjectId, else an\n"
    "                      extended-JSON value (5, \"a\", {\"$oid\": ...}), else the text itself; in C, or in any\n"
    "                      collection\n"
    "    --ids-file FILE   affected: one ID a line (empty lines and lines starting with # are skipped)\n"
    "    --run RUN_ID      affected: the documents the run's scripts wrote (their provenance stamps) and the models\n"
    "                      its learners stored; --script KEY (\"clean-0\") keeps one script\n"
    "    -h, --help        this text; -V, --version: the version\n"
    "    Connection options, their N_* variables and config files are nemesyst's (nemesyst --help, nemesyst(1)).\n"
    "    As for nemesyst, -c takes one or more files (up to the verb), and --db-password alone takes the next\n"
    "    word as the password, or asks for it when it comes last (--db-password=true asks anywhere).\n"
    "\n"
    "EXIT STATUS\n"
    "    0   done; verify: unchanged; affected: nothing is; diff: the same\n"
    "    1   verify: changed (the data or the script); affected: something is; diff: they differ; get: the file\n"
    "        does not match its recorded sha256, or a chunk of it is damaged or missing (nothing written); any\n"
    "        other failure not listed here\n"
    "    2   bad arguments: an unknown option or verb, a malformed id, filter or time, get's FILE exists without\n"
    "        --force (refused before connecting), an unknown run, model, bucket or metric; import: a bundle that is\n"
    "        corrupt, truncated or of a newer format (naming the part or both versions, before connecting), or that\n"
    "        holds an id the store has with other content (naming it): nothing written\n"
    "    3   the server cannot be reached, refused the credentials or failed a query\n"
    "    5   verify: the recorded lineage cannot be checked (its data collection was dropped, its stored\n"
    "        pipeline is gone, or no consumed data was recorded); affected: whether some model is cannot be checked\n"
    "        (each named, with why, on one line of stderr; the models found affected are listed all the same)\n"
    "\n"
    "EXAMPLES\n"
    "    nemesyst-registry --db-name fashion runs\n"
    "    nemesyst-registry --db-name fashion runs --tag dataset=fashion --status succeeded --since 2026-01-01\n"
    "    nemesyst-registry --db-name fashion get 6b104332f2c648003c0d9edc -o model.bin\n"
    "    nemesyst-registry -c nemesyst.conf models --bucket fashion_models --best train_accuracy --max --json\n"
    "    nemesyst-registry --db-name fashion verify 6b104332f2c648003c0d9edc || echo \"the data moved\"\n"
    "    nemesyst-registry --db-name fashion affected --collection fashion_mnist --filter '{\"label\": 3}'\n"
    "    nemesyst-registry --db-name fashion diff 20260102T030405Z-0123abcd 20260103T101010Z-4567cdef\n"
    "    nemesyst-registry --db-name fashion export 20260102T030405Z-0123abcd --format prov-json > run.prov.json\n"
    "    nemesyst-registry --db-name fashion lineage 6b104332f2c648003c0d9edc --dot | dot -Tsvg > lineage.svg\n"
    "    nemesyst-registry --db-name fashion bundle 20260102T030405Z-0123abcd --with-data -o runs.nemb\n"
    "    nemesyst-registry --db-ip archive.example --db-name fashion import runs.nemb\n"
    "\n"
    "SEE ALSO\n"
    "    nemesyst(1), nemesyst-errors(7), nemesyst-export (nemesyst-export --help); README.md, \"Asking the store:\n"
    "    nemesyst-registry\" and \"Provenance: from a model back to its data\"\n";

/* The verbs: each one's name, what runs it, the id it takes and the options it accepts besides --json and the
 * connection; the parser (is_verb, check_verb, check_ids) and the dispatch (run_verb) read this table only. */
typedef enum { ID_NONE, ID_RUN, ID_MODEL, ID_PAIR /* two runs or two models */, ID_RUNS /* one or more runs */,
               ID_FILE /* a bundle */ } id_kind_t;
enum {
    V_BUCKET = 1 << 0,    /* --bucket B */
    V_BEST = 1 << 1,      /* --best METRIC --min|--max */
    V_ALL = 1 << 2,       /* --all instead of the id (verify) */
    V_PLOT = 1 << 3,      /* --plot FILE.png */
    V_SCRIPT = 1 << 4,    /* --script KEY */
    V_DOCUMENTS = 1 << 5, /* --collection, --filter, --id, --ids-file, --run */
    V_FILTER = 1 << 6,    /* --name, --tag, --status, --since, --until, --script PATH (runs) */
    V_OUTPUT = 1 << 7,    /* -o FILE, --force (get) */
    V_FORMAT = 1 << 8,    /* --format F (export) */
    V_DOT = 1 << 9,       /* --dot (lineage) */
    V_WITH_DATA = 1 << 10, /* --with-data (bundle) */
    V_SWEEP = 1 << 11,    /* --sweep NAME (runs, models) */
};

typedef struct args args_t;
typedef struct {
    const char *name;
    int (*fn)(nem_reg_t *r, const args_t *a);
    id_kind_t id;
    unsigned flags;
} verb_t;

static int do_runs(nem_reg_t *r, const args_t *a);
static int do_run(nem_reg_t *r, const args_t *a);
static int do_models(nem_reg_t *r, const args_t *a);
static int do_lineage(nem_reg_t *r, const args_t *a);
static int do_verify(nem_reg_t *r, const args_t *a);
static int do_export(nem_reg_t *r, const args_t *a);
static int do_metrics(nem_reg_t *r, const args_t *a);
static int do_affected(nem_reg_t *r, const args_t *a);
static int do_get(nem_reg_t *r, const args_t *a);
static int do_diff(nem_reg_t *r, const args_t *a);
static int do_bundle(nem_reg_t *r, const args_t *a);
static int do_import(nem_reg_t *r, const args_t *a);

static const verb_t verbs[] = {
    {"runs", do_runs, ID_NONE, V_FILTER | V_SCRIPT | V_SWEEP},
    {"run", do_run, ID_RUN, V_BUCKET},
    {"models", do_models, ID_NONE, V_BUCKET | V_BEST | V_SWEEP},
    {"lineage", do_lineage, ID_MODEL, V_BUCKET | V_DOT},
    {"verify", do_verify, ID_MODEL, V_BUCKET | V_ALL},
    {"export", do_export, ID_RUN, V_FORMAT},
    {"get", do_get, ID_MODEL, V_BUCKET | V_OUTPUT},
    {"metrics", do_metrics, ID_RUN, V_PLOT | V_SCRIPT},
    {"affected", do_affected, ID_NONE, V_SCRIPT | V_DOCUMENTS},
    {"diff", do_diff, ID_PAIR, V_BUCKET},
    {"bundle", do_bundle, ID_RUNS, V_OUTPUT | V_WITH_DATA},
    {"import", do_import, ID_FILE, 0},
};
#define N_VERBS (sizeof verbs / sizeof *verbs)

/* getopt_long codes: nemesyst's options at CODE_BASE + their id (as config/cli.c numbers them), ours after. */
enum { CODE_POSITIONAL = 1, CODE_BASE = 256 };
enum { OWN_JSON = CODE_BASE + NEM_OPT__COUNT, OWN_BUCKET, OWN_BEST, OWN_MIN, OWN_MAX, OWN_SCRIPT, OWN_PLOT,
       OWN_COLLECTION, OWN_FILTER, OWN_ID, OWN_IDS_FILE, OWN_RUN, OWN_ALL, OWN_NAME, OWN_STATUS, OWN_SINCE,
       OWN_UNTIL, OWN_FORCE, OWN_FORMAT, OWN_DOT, OWN_WITH_DATA, OWN_HELP = 'h', OWN_VERSION = 'V', OWN_OUTPUT = 'o' };

struct args {
    bool json, help, version, all, dot, with_data;
    const char *bucket, *best, *script, *plot, *format;
    const char *collection, *filter, *ids_file, *run; /* affected */
    const char **ids;     /* affected --id, each (argc slots) */
    size_t n_ids;
    const char *name, *status, *since, *until; /* runs' filters, with tags and script */
    const char *sweep;    /* runs and models: --sweep NAME */
    const char **tags;    /* runs --tag KEY=VALUE, each (argc slots) */
    size_t n_tags;
    const char *output;   /* get -o FILE */
    bool force;
    int order;
    const char **words;   /* verb, its ids (argc slots) */
    bson_t manifest;      /* import: the bundle's manifest, checked before connecting */
    bool has_manifest;
    int n_words;
    char **rest;          /* argv[0] and nemesyst's options, for nem_config_resolve */
    int n_rest;
    const char *verb_taken_by; /* a verb's name was read as this option's value ("--db-password runs") */
};

static const verb_t *find_verb(const char *word)
{
    for (size_t v = 0; v < N_VERBS; v++)
        if (strcmp(verbs[v].name, word) == 0)
            return &verbs[v];
    return NULL;
}

static bool is_verb(const char *word)
{
    return find_verb(word) != NULL;
}

/* "runs, run, ..., metrics, affected": the verbs' names, for messages. */
static const char *verb_names(void)
{
    static char names[256];
    if (!names[0])
        for (size_t v = 0; v < N_VERBS; v++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", v ? ", " : "", verbs[v].name);
    return names;
}

static int usage_error(const char *fmt, const char *a, const char *b)
{
    fputs("nemesyst-registry: error: ", stderr);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return NEM_EXIT_USAGE;
}

/* The arguments of one option (the tokens getopt consumed), passed on to nemesyst's resolver once each. */
static void forward(args_t *a, char **argv, int from, int to, int *done)
{
    for (int i = from > *done ? from : *done; i < to; i++)
        a->rest[a->n_rest++] = argv[i];
    if (to > *done)
        *done = to;
    a->rest[a->n_rest] = NULL;
}

/* The registry's own option a mistyped one most likely meant: the longest common start, of two letters at
 * least (--jsn: --json); nemesyst's options have nem_option_suggest. */
static const char *own_suggest(const char *arg)
{
    static const char *const own[] = {"json", "bucket", "best", "min", "max", "script", "plot", "collection",
                                      "filter", "id", "ids-file", "run", "all", "name", "status", "since",
                                      "until", "output", "force", "format", "dot", "with-data", "help",
                                      "version"};
    const char *best = NULL;
    size_t best_len = 1;
    for (size_t i = 0; i < sizeof own / sizeof *own; i++) {
        size_t n = 0;
        while (own[i][n] && arg[n] == own[i][n])
            n++;
        if (n > best_len) {
            best = own[i];
            best_len = n;
        }
    }
    return best;
}

/* Returns -1 when the arguments parse, else the exit status. */
static int parse_args(int argc, char **argv, args_t *a)
{
    struct option longopts[NEM_OPT__COUNT + 25];
    char optstring[8 + 3 * NEM_OPT__COUNT] = "-:hVo:";
    size_t os = strlen(optstring);
    int done = 1;              /* argv before this index is forwarded or taken */
    int takes_word = -1;       /* nemesyst's option whose value may follow as a separate word (bool, prompt) */
    int list = -1;             /* nemesyst's list option whose values go on until the verb ("-c a.conf b.conf") */
    nem_options_getopt(longopts, CODE_BASE, optstring, &os);
    longopts[NEM_OPT__COUNT] = (struct option){"json", no_argument, NULL, OWN_JSON};
    longopts[NEM_OPT__COUNT + 1] = (struct option){"bucket", required_argument, NULL, OWN_BUCKET};
    longopts[NEM_OPT__COUNT + 2] = (struct option){"best", required_argument, NULL, OWN_BEST};
    longopts[NEM_OPT__COUNT + 3] = (struct option){"min", no_argument, NULL, OWN_MIN};
    longopts[NEM_OPT__COUNT + 4] = (struct option){"max", no_argument, NULL, OWN_MAX};
    longopts[NEM_OPT__COUNT + 5] = (struct option){"help", no_argument, NULL, OWN_HELP};
    longopts[NEM_OPT__COUNT + 6] = (struct option){"version", no_argument, NULL, OWN_VERSION};
    longopts[NEM_OPT__COUNT + 7] = (struct option){"script", required_argument, NULL, OWN_SCRIPT};
    longopts[NEM_OPT__COUNT + 8] = (struct option){"plot", required_argument, NULL, OWN_PLOT};
    longopts[NEM_OPT__COUNT + 9] = (struct option){"collection", required_argument, NULL, OWN_COLLECTION};
    longopts[NEM_OPT__COUNT + 10] = (struct option){"filter", required_argument, NULL, OWN_FILTER};
    longopts[NEM_OPT__COUNT + 11] = (struct option){"id", required_argument, NULL, OWN_ID};
    longopts[NEM_OPT__COUNT + 12] = (struct option){"ids-file", required_argument, NULL, OWN_IDS_FILE};
    longopts[NEM_OPT__COUNT + 13] = (struct option){"run", required_argument, NULL, OWN_RUN};
    longopts[NEM_OPT__COUNT + 14] = (struct option){"all", no_argument, NULL, OWN_ALL};
    longopts[NEM_OPT__COUNT + 15] = (struct option){"name", required_argument, NULL, OWN_NAME};
    longopts[NEM_OPT__COUNT + 16] = (struct option){"status", required_argument, NULL, OWN_STATUS};
    longopts[NEM_OPT__COUNT + 17] = (struct option){"since", required_argument, NULL, OWN_SINCE};
    longopts[NEM_OPT__COUNT + 18] = (struct option){"until", required_argument, NULL, OWN_UNTIL};
    longopts[NEM_OPT__COUNT + 19] = (struct option){"output", required_argument, NULL, OWN_OUTPUT};
    longopts[NEM_OPT__COUNT + 20] = (struct option){"force", no_argument, NULL, OWN_FORCE};
    longopts[NEM_OPT__COUNT + 21] = (struct option){"format", required_argument, NULL, OWN_FORMAT};
    longopts[NEM_OPT__COUNT + 22] = (struct option){"dot", no_argument, NULL, OWN_DOT};
    longopts[NEM_OPT__COUNT + 23] = (struct option){"with-data", no_argument, NULL, OWN_WITH_DATA};
    longopts[NEM_OPT__COUNT + 24] = (struct option){0};

    a->rest[a->n_rest++] = argv[0];
    opterr = 0;
    optind = 0;
    for (;;) {
        int prev = optind ? optind : 1;
        int c = getopt_long(argc, argv, optstring, longopts, NULL);
        if (c == -1)
            break;
        int word = takes_word, in_list = list;
        takes_word = -1;
        if (c != CODE_POSITIONAL)
            list = -1;
        switch (c) {
        case OWN_JSON: a->json = true; break;
        case OWN_BUCKET: a->bucket = optarg; break;
        case OWN_BEST: a->best = optarg; break;
        case OWN_SCRIPT: a->script = optarg; break;
        case OWN_PLOT: a->plot = optarg; break;
        case OWN_COLLECTION: a->collection = optarg; break;
        case OWN_FILTER: a->filter = optarg; break;
        case OWN_ID: a->ids[a->n_ids++] = optarg; break;
        case OWN_IDS_FILE: a->ids_file = optarg; break;
        case OWN_RUN: a->run = optarg; break;
        case OWN_ALL: a->all = true; break;
        case OWN_NAME: a->name = optarg; break;
        case OWN_STATUS: a->status = optarg; break;
        case OWN_SINCE: a->since = optarg; break;
        case OWN_UNTIL: a->until = optarg; break;
        case OWN_OUTPUT: a->output = optarg; break;
        case OWN_FORCE: a->force = true; break;
        case OWN_FORMAT: a->format = optarg; break;
        case OWN_DOT: a->dot = true; break;
        case OWN_WITH_DATA: a->with_data = true; break;
        case OWN_MIN: a->order = a->order > 0 ? 2 : -1; break;
        case OWN_MAX: a->order = a->order < 0 ? 2 : 1; break;
        case OWN_HELP: a->help = true; break;
        case OWN_VERSION: a->version = true; break;
        case ':':
            if (optopt >= CODE_BASE && optopt < CODE_BASE + NEM_OPT__COUNT)
                return usage_error("option --%s needs a value%s", nem_options[optopt - CODE_BASE].name, "");
            for (int i = NEM_OPT__COUNT; longopts[i].name; i++)
                if (longopts[i].val == optopt)
                    return usage_error("option --%s needs a value%s", longopts[i].name, "");
            return usage_error("option -%c needs a value%s", (char[]){(char)optopt, 0}, "");
        case '?': {
            const char *arg = prev < argc ? argv[prev] : "?";
            const char *s = strncmp(arg, "--", 2) == 0 ? own_suggest(arg + 2) : NULL;
            if (!s && strncmp(arg, "--", 2) == 0)
                s = nem_option_suggest(arg + 2);
            if (optopt >= OWN_JSON)
                return usage_error("option '%s' takes no value%s", arg, "");
            if (s)
                return usage_error("unknown or ambiguous option '%s' (did you mean --%s? see --help)", arg, s);
            return usage_error("unknown option '%s'%s", arg, " (see --help)");
        }
        case CODE_POSITIONAL: {
            bool ignored;
            /* "--db-tls true", "--db-password SECRET": the word is the option's value, as nemesyst reads it */
            if (word >= 0 && ((nem_options[word].flags & NEM_F_PROMPT) || nem_parse_bool(optarg, &ignored))) {
                if (!a->n_words && is_verb(optarg))
                    a->verb_taken_by = nem_options[word].name;
                forward(a, argv, prev, optind, &done);
                break;
            }
            /* a list's further values, as nemesyst reads them, up to the verb */
            if (in_list >= 0 && !a->n_words && !is_verb(optarg)) {
                forward(a, argv, prev, optind, &done);
                break;
            }
            list = -1;
            a->words[a->n_words++] = optarg;
            done = optind;
            break;
        }
        default: {
            int id = c >= CODE_BASE ? c - CODE_BASE : -1;
            for (int i = 0; id < 0 && i < NEM_OPT__COUNT; i++)
                if (nem_options[i].short_name == c)
                    id = i;
            if (id < 0)
                return usage_error("unknown option '%s'%s", prev < argc ? argv[prev] : "?", " (see --help)");
            if (id == NEM_OPT_TAG) { /* nemesyst's --tag names a run's tags; here it filters `runs` by them */
                a->tags[a->n_tags++] = optarg;
                done = optind;
                break;
            }
            if (id == NEM_OPT_SWEEP) { /* nemesyst's --sweep names a sweep file; here a sweep, by its name */
                a->sweep = optarg;
                done = optind;
                break;
            }
            forward(a, argv, prev, optind, &done);
            if (!optarg && (nem_options[id].type == NEM_T_BOOL || (nem_options[id].flags & NEM_F_PROMPT)))
                takes_word = id;
            if (nem_options[id].flags & NEM_F_LIST)
                list = id;
        }
        }
    }
    if (optind < argc) /* after "--": the verb and id */
        for (int i = optind; i < argc; i++)
            a->words[a->n_words++] = argv[i];
    return -1;
}

/* The verb and its id; returns -1 when they are right, else the exit status. */
static int check_verb(const args_t *a, const verb_t **verb)
{
    if (a->n_words == 0 && a->verb_taken_by)
        return usage_error("no verb: the word after --%s was read as its value (write --%s=VALUE, or give it last to "
                           "be asked)", a->verb_taken_by, a->verb_taken_by);
    if (a->n_words == 0)
        return usage_error("no verb: give one of %s (see --help)%s", verb_names(), "");
    const verb_t *v = *verb = find_verb(a->words[0]);
    if (!v)
        return usage_error("unknown verb '%s' (one of %s)", a->words[0], verb_names());
    if (a->all && !(v->flags & V_ALL))
        return usage_error("--all is for `verify`, not `%s`%s", a->words[0], "");
    bool takes_id = v->id != ID_NONE && !a->all; /* verify --all: every model */
    if (a->all && a->n_words > 1)
        return usage_error("verify --all checks every model: no model id ('%s')%s", a->words[1], "");
    int n_ids = !takes_id ? 0 : v->id == ID_PAIR ? 2 : v->id == ID_RUNS ? (a->n_words > 1 ? a->n_words - 1 : 1) : 1;
    if (v->id == ID_PAIR && a->n_words < 3)
        return usage_error("%s needs two ids: two run ids (see `runs`) or two model ids (see `models`)%s",
                           a->words[0], a->n_words == 2 ? ", not one" : "");
    if (takes_id && a->n_words < 2)
        return usage_error("%s needs %s", a->words[0],
                           v->id == ID_RUN    ? "an id: a run id (see `runs`)"
                           : v->id == ID_RUNS ? "one or more run ids (see `runs`)"
                           : v->id == ID_FILE ? "the bundle FILE to load (see `bundle`)"
                                              : "an id: a model id (see `models`)");
    if (a->n_words > n_ids + 1)
        return usage_error("unexpected argument '%s' after %s", a->words[n_ids + 1], a->words[0]);
    if (a->format && !(v->flags & V_FORMAT))
        return usage_error("--format is for `export`, not `%s`%s", a->words[0], "");
    if (a->format && strcmp(a->format, "nemesyst") != 0 && strcmp(a->format, "prov-json") != 0)
        return usage_error("--format '%s': export writes nemesyst (the default) or prov-json%s", a->format, "");
    if (a->dot && !(v->flags & V_DOT))
        return usage_error("--dot is for `lineage`, not `%s`%s", a->words[0], "");
    if (a->dot && a->json)
        return usage_error("--dot and --json together: give one (lineage writes DOT or JSON)%s%s", "", "");
    if ((a->best || a->order) && !(v->flags & V_BEST))
        return usage_error("--best, --min and --max are for `models`, not `%s`%s", a->words[0], "");
    if (a->order == 2)
        return usage_error("--min and --max together: give one%s%s", "", "");
    if (a->best && !a->order)
        return usage_error("--best %s needs --min or --max%s", a->best, "");
    if (a->order && !a->best)
        return usage_error("--%s needs --best METRIC%s", a->order < 0 ? "min" : "max", "");
    if (a->plot && !(v->flags & V_PLOT))
        return usage_error("--plot is for `metrics`, not `%s`%s", a->words[0], "");
    if (a->script && !(v->flags & V_SCRIPT))
        return usage_error("--script is for `metrics`, `affected --run` and `runs`, not `%s`%s", a->words[0], "");
    if ((a->name || a->n_tags || a->status || a->since || a->until) && !(v->flags & V_FILTER))
        return usage_error("--name, --tag, --status, --since and --until are for `runs`, not `%s`%s", a->words[0], "");
    if (a->sweep && !(v->flags & V_SWEEP))
        return usage_error("--sweep is for `runs` and `models`, not `%s`%s", a->words[0], "");
    if ((a->output || a->force) && !(v->flags & V_OUTPUT))
        return usage_error("-o (--output) and --force are for `get` and `bundle`, not `%s`%s", a->words[0], "");
    if (a->with_data && !(v->flags & V_WITH_DATA))
        return usage_error("--with-data is for `bundle`, not `%s`%s", a->words[0], "");
    if ((v->flags & V_OUTPUT) && !a->output)
        return usage_error("%s needs -o FILE: %s", a->words[0],
                           v->id == ID_RUNS ? "where the bundle goes" : "where the model's file goes (- for stdout)");
    if (v->id == ID_RUNS && strcmp(a->output, "-") == 0)
        return usage_error("bundle -o -: a bundle is written to a file (it is filled in as it is written), not to "
                           "stdout%s%s", "", "");
    if ((v->flags & V_OUTPUT) && a->force && strcmp(a->output, "-") == 0)
        return usage_error("--force is for -o FILE, not -o - (stdout)%s%s", "", "");
    if (a->bucket && !(v->flags & V_BUCKET))
        return usage_error("--bucket is for models, run, lineage, verify and diff, not `%s`%s", a->words[0], "");
    bool documents = a->collection || a->filter || a->n_ids || a->ids_file || a->run;
    if (documents && !(v->flags & V_DOCUMENTS))
        return usage_error("--collection, --filter, --id, --ids-file and --run are for `affected`, not `%s`%s",
                           a->words[0], "");
    if (!(v->flags & V_DOCUMENTS))
        return -1;
    if (a->run && (a->collection || a->filter || a->n_ids || a->ids_file))
        return usage_error("affected --run %s names the documents itself: not with --collection, --filter, --id or "
                           "--ids-file%s", a->run, "");
    if (a->script && !a->run)
        return usage_error("affected --script %s needs --run RUN_ID: the run whose script it is%s", a->script, "");
    if (a->filter && (a->n_ids || a->ids_file))
        return usage_error("affected: --filter and --id/--ids-file together: give one%s%s", "", "");
    if (a->filter && !a->collection)
        return usage_error("affected --filter needs --collection C: the collection whose documents it matches%s%s",
                           "", "");
    if (!documents)
        return usage_error("affected needs the documents: --collection C [--filter JSON], --id ID, --ids-file FILE "
                           "or --run RUN_ID (see --help)%s%s", "", "");
    return -1;
}

/* diff's two ids: two runs or two models, each well formed; -1 when they are. */
static int check_pair(const char *verb, const char *x, const char *y)
{
    bson_error_t err = {0};
    bson_oid_t oid;
    const char *ids[2] = {x, y};
    bool run[2], model[2];
    for (int i = 0; i < 2; i++) {
        run[i] = nem_reg_check_run_id(ids[i], &err);
        model[i] = nem_reg_check_model_id(ids[i], &oid, &err);
        if (!run[i] && !model[i]) {
            fprintf(stderr, "nemesyst-registry: error: %s: malformed run or model id '%s': a run id looks like "
                    "20260102T030405Z-0123abcd (see `runs`), a model id is 24 hex digits (see `models`)\n", verb,
                    ids[i]);
            return NEM_EXIT_USAGE;
        }
    }
    if (run[0] != run[1]) {
        fprintf(stderr, "nemesyst-registry: error: %s compares two runs or two models, not a %s ('%s') with a %s "
                "('%s')\n", verb, run[0] ? "run" : "model", x, run[1] ? "run" : "model", y);
        return NEM_EXIT_USAGE;
    }
    return -1;
}

/* The ids the verb was given, checked for their shape before anything connects or asks for a password: a
 * malformed id is bad input (exit 2), whether or not a server is there. -1 when they are right. */
static int check_ids(args_t *a, const verb_t *verb)
{
    bson_error_t err = {0};
    bson_oid_t oid;
    bool ok = true;
    if (verb->id == ID_RUN)
        ok = nem_reg_check_run_id(a->words[1], &err);
    else if (verb->id == ID_MODEL && !a->all)
        ok = nem_reg_check_model_id(a->words[1], &oid, &err);
    else if (verb->id == ID_PAIR)
        return check_pair(a->words[0], a->words[1], a->words[2]);
    else if (verb->id == ID_RUNS)
        for (int i = 1; ok && i < a->n_words; i++)
            ok = nem_reg_check_run_id(a->words[i], &err);
    else if (verb->id == ID_FILE) /* every part's sha256, before anything connects */
        ok = a->has_manifest = nem_reg_bundle_check(a->words[1], &a->manifest, &err);
    else if ((verb->flags & V_DOCUMENTS) && a->run)
        ok = nem_reg_check_run_id(a->run, &err);
    if (ok && (verb->flags & V_FILTER))
        ok = nem_reg_runs_filter(&(nem_reg_runs_filter_t){a->name, a->tags, a->n_tags, a->status, a->since, a->until,
                                                          a->script, a->sweep}, NULL, NULL, &err);
    if (ok && (verb->flags & V_OUTPUT))
        ok = nem_reg_check_output(verb->name, a->output, a->force, verb->id != ID_RUNS, &err);
    if (ok && a->sweep && !(verb->flags & V_FILTER))
        ok = nem_reg_check_sweep_name(a->sweep, &err);
    return ok ? -1 : nem_reg_fail(&err);
}

/* nemesyst's options, environment and config files, resolved as nemesyst resolves them; -1 or the exit status. */
static int resolve_config(const args_t *a, nem_config_t *cfg)
{
    bson_error_t err = {0};
    cfg->skip_sweep = true; /* a config file shared with nemesyst may name a sweep: it changes no connection */
    if (!nem_config_resolve(cfg, a->n_rest, a->rest, &err))
        return nem_reg_fail(&err);
    nem_log_set_level_name(nem_cfg_str(cfg, NEM_OPT_LOG_LEVEL, 0));
    return -1;
}

/* The connection, configured as nemesyst's (app/plan.c nem_store_opts_from_config); -1 with *store set, or the
 * exit status. The password is asked for (or read) only now, once the arguments are known to be right. */
static int connect_store(nem_config_t *cfg, nem_store_t **store)
{
    bson_error_t err = {0};
    nem_store_opts_t opts;
    nem_strv_t paths = {0};
    if ((nem_cfg_is_set(cfg, NEM_OPT_DB_USER_NAME) || nem_cfg_is_set(cfg, NEM_OPT_DB_PASSWORD_FILE)) &&
        !nem_config_resolve_password(cfg, &err))
        return nem_reg_fail(&err);
    nem_store_opts_from_config(&opts, cfg, &paths);
    opts.app_name = "nemesyst-registry";
    *store = nem_store_new(&opts, &err);
    nem_strv_free(&paths);
    if (!*store) {
        /* a connection setting the store refuses (a TLS file, a read preference) is bad input */
        fprintf(stderr, "nemesyst-registry: error: %s\n", err.message);
        return NEM_EXIT_USAGE;
    }
    if (!nem_store_ping(*store, &err))
        return nem_reg_fail(&err);
    return -1;
}

static int do_runs(nem_reg_t *r, const args_t *a)
{
    return nem_reg_runs(r, &(nem_reg_runs_filter_t){a->name, a->tags, a->n_tags, a->status, a->since, a->until,
                                                     a->script, a->sweep});
}

static int do_get(nem_reg_t *r, const args_t *a)
{
    return nem_reg_get(r, a->words[1], a->output, a->force);
}

static int do_run(nem_reg_t *r, const args_t *a)
{
    return nem_reg_run(r, a->words[1]);
}

static int do_models(nem_reg_t *r, const args_t *a)
{
    (void)a;
    return nem_reg_models(r);
}

static int do_lineage(nem_reg_t *r, const args_t *a)
{
    return nem_reg_lineage(r, a->words[1]);
}

static int do_verify(nem_reg_t *r, const args_t *a)
{
    return a->all ? nem_reg_verify_all(r) : nem_reg_verify(r, a->words[1]);
}

static int do_export(nem_reg_t *r, const args_t *a)
{
    return nem_reg_export(r, a->words[1]);
}

static int do_metrics(nem_reg_t *r, const args_t *a)
{
    return nem_reg_metric_history(r, a->words[1]);
}

static int do_affected(nem_reg_t *r, const args_t *a)
{
    (void)a;
    return nem_reg_affected(r);
}

static int do_diff(nem_reg_t *r, const args_t *a)
{
    return nem_reg_diff(r, a->words[1], a->words[2]);
}

static int do_bundle(nem_reg_t *r, const args_t *a)
{
    return nem_reg_bundle(r, a->words + 1, (size_t)a->n_words - 1, a->output, a->force, a->with_data);
}

static int do_import(nem_reg_t *r, const args_t *a)
{
    return nem_reg_import(r, a->words[1], &a->manifest);
}

static int run_verb(const verb_t *verb, const args_t *a, nem_store_t *store)
{
    nem_reg_t r = {.store = store, .json = a->json, .bucket = a->bucket, .best = a->best, .best_order = a->order,
                   .script = a->script, .plot = a->plot, .out = stdout, .now_ms = nem_wall_ms(),
                   .collection = a->collection, .filter = a->filter, .ids = a->ids, .n_ids = a->n_ids,
                   .ids_file = a->ids_file, .run = a->run, .dot = a->dot, .sweep = a->sweep,
                   .format = a->format ? a->format : "nemesyst"};
    return verb->fn(&r, a);
}

int main(int argc, char **argv)
{
    args_t a = {0};
    const verb_t *verb = NULL;
    a.rest = bson_malloc0(((size_t)argc + 1) * sizeof *a.rest);
    a.ids = bson_malloc0(((size_t)argc + 1) * sizeof *a.ids);
    a.tags = bson_malloc0(((size_t)argc + 1) * sizeof *a.tags);
    a.words = bson_malloc0(((size_t)argc + 1) * sizeof *a.words);
    int status = parse_args(argc, argv, &a);
    if (status < 0 && (a.help || a.version)) {
        if (a.help)
            fputs(usage, stdout);
        else
            printf("nemesyst-registry %s\n", PACKAGE_VERSION);
        status = NEM_EXIT_OK;
    }
    if (status < 0) {
        char host[256] = "?";
        nem_config_t *cfg = nem_config_new();
        nem_store_t *store = NULL;
        gethostname(host, sizeof host - 1);
        nem_log_init(0, host);
        mongoc_init();
        nem_log_capture_mongoc(); /* libmongoc's messages as log lines, at --log-level */
        status = resolve_config(&a, cfg);
        /* --print-config: the resolved connection settings (secrets masked) and nothing else; no verb needed */
        if (status < 0 && nem_cfg_bool(cfg, NEM_OPT_PRINT_CONFIG)) {
            nem_config_print(cfg, stdout);
            status = NEM_EXIT_OK;
        }
        if (status < 0)
            status = check_verb(&a, &verb);
        if (status < 0)
            status = check_ids(&a, verb);
        if (status < 0)
            status = connect_store(cfg, &store);
        if (status < 0)
            status = run_verb(verb, &a, store);
        fflush(stdout);
        nem_store_destroy(store);
        nem_config_destroy(cfg);
        mongoc_cleanup();
        nem_log_close();
    }
    bson_free(a.rest);
    bson_free(a.ids);
    bson_free(a.tags);
    bson_free(a.words);
    if (a.has_manifest)
        bson_destroy(&a.manifest);
    return status;
}
