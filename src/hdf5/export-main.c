/* nemesyst-export: writes a collection, or an aggregation pipeline's result, to an HDF5 file (export.h).
 *
 * Arguments are split in two: its own (--collection, --pipeline, --fields, --output/-o, --batch-size, --help) are
 * taken out first; everything else goes to nemesyst's option resolver, so the connection is configured exactly as
 * for nemesyst: the --db-* options, N_* environment variables and config files (./nemesyst.d/ and -c FILE).
 * Options of nemesyst that do not concern the connection are accepted and ignored.
 * Exit status: 0 done, 1 export failed (nothing written), 2 bad arguments, 3 the server cannot be reached. */
#include <bson/bson.h>
#include <errno.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/exitcodes.h"
#include "app/plan.h"
#include "config/config.h"
#include "hdf5/export.h"
#include "log/log.h"
#include "store/store.h"

#define DEFAULT_BATCH 256

static const char usage[] =
    "Usage: nemesyst-export --collection NAME --output FILE.h5 [--pipeline JSON|FILE] [--fields a,b,c]\n"
    "                       [--batch-size N] [nemesyst's connection options: --db-ip, --db-port, --db-name,\n"
    "                       --db-user-name, --db-password..., --db-tls..., -c CONFIG]\n"
    "Writes every document of collection NAME (or the result of the aggregation pipeline, a JSON array given inline\n"
    "or as a file) to FILE.h5, one dataset per field, row i of each = document i: integers as int64, doubles as\n"
    "float64, strings as UTF-8 strings, binary with dtype and shape beside it as an (N+1)-D dataset of dtype.\n"
    "--fields names the fields (dotted paths allowed); by default the first document's top-level fields but _id.\n"
    "Exit status: 0 done, 1 export failed (no output file left), 2 bad arguments, 3 server unreachable.\n";

typedef struct {
    const char *collection, *pipeline, *output, *fields, *batch_size;
    bool help, version;
} own_args_t;

/* Matches arg against --name or --name=VALUE; takes VALUE from argv[*i + 1] in the first form. Returns 1 on a
 * match, 0 when arg is another option, -1 when the value is missing. */
static int take(const char *name, char short_name, int argc, char **argv, int *i, const char **value)
{
    const char *a = argv[*i];
    size_t len = strlen(name);
    if (a[0] == '-' && a[1] == '-' && strncmp(a + 2, name, len) == 0 && a[2 + len] == '=') {
        *value = a + 3 + len;
        return 1;
    }
    bool match = (a[0] == '-' && a[1] == '-' && strcmp(a + 2, name) == 0) ||
                 (short_name && a[0] == '-' && a[1] == short_name && a[2] == '\0');
    if (!match)
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

/* Takes this program's own arguments out of argv; the rest (argv[0] first) goes to *rest. */
static bool split_args(int argc, char **argv, own_args_t *own, char **rest, int *n_rest)
{
    static const struct { const char *name; char short_name; size_t off; } opts[] = {
        {"collection", 0, offsetof(own_args_t, collection)}, {"pipeline", 0, offsetof(own_args_t, pipeline)},
        {"output", 'o', offsetof(own_args_t, output)},       {"fields", 0, offsetof(own_args_t, fields)},
        {"batch-size", 0, offsetof(own_args_t, batch_size)},
    };
    *n_rest = 0;
    rest[(*n_rest)++] = argv[0];
    for (int i = 1; i < argc; i++) {
        int r = 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            own->help = true;
            continue;
        }
        if (!strcmp(argv[i], "--version")) {
            own->version = true;
            continue;
        }
        for (size_t k = 0; r == 0 && k < sizeof opts / sizeof opts[0]; k++)
            r = take(opts[k].name, opts[k].short_name, argc, argv, &i,
                     (const char **)((char *)own + opts[k].off));
        if (r < 0) {
            fprintf(stderr, "nemesyst-export: error: %s needs a value\n", argv[i]);
            return false;
        }
        if (r == 0)
            rest[(*n_rest)++] = argv[i];
    }
    rest[*n_rest] = NULL;
    return true;
}

/* --fields a,b,c into a NULL-terminated vector. */
static char **parse_fields(const char *text, size_t *n)
{
    char **v = bson_malloc0((strlen(text) + 2) * sizeof *v);
    const char *p = text;
    *n = 0;
    while (*p) {
        size_t len = strcspn(p, ",");
        while (len && (*p == ' '))
            p++, len--;
        while (len && p[len - 1] == ' ')
            len--;
        if (len == 0) {
            fprintf(stderr, "nemesyst-export: error: --fields '%s': an empty field name\n", text);
            for (size_t i = 0; i < *n; i++)
                bson_free(v[i]);
            bson_free(v);
            return NULL;
        }
        v[(*n)++] = bson_strndup(p, len);
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    return v;
}

/* --pipeline as inline JSON or a file's path, into out (initialised); one stage {...} is taken as [{...}]. */
static bool parse_pipeline(const char *text, bson_t *out)
{
    bson_error_t jerr;
    bson_t doc;
    const char *p = text + strspn(text, " \t\n");
    bool ok;
    if (*p == '[' || *p == '{') {
        ok = bson_init_from_json(&doc, p, -1, &jerr);
    } else {
        bson_json_reader_t *reader = bson_json_reader_new_from_file(text, &jerr);
        if (!reader) {
            fprintf(stderr, "nemesyst-export: error: --pipeline '%s' is neither inline JSON nor a readable file (%s)\n",
                    text, strerror(errno));
            return false;
        }
        bson_init(&doc);
        ok = bson_json_reader_read(reader, &doc, &jerr) == 1;
        bson_json_reader_destroy(reader);
        if (!ok)
            bson_destroy(&doc);
    }
    if (!ok) {
        fprintf(stderr, "nemesyst-export: error: --pipeline: invalid JSON: %s\n", jerr.message);
        return false;
    }
    bson_iter_t it;
    bson_reinit(out);
    if (bson_iter_init(&it, &doc) && bson_iter_next(&it) && strcmp(bson_iter_key(&it), "0") != 0)
        BSON_APPEND_DOCUMENT(out, "0", &doc);
    else
        bson_concat(out, &doc);
    bson_destroy(&doc);
    return true;
}

static bool parse_batch_size(const char *text, size_t *out)
{
    int64_t v = DEFAULT_BATCH;
    if (text && (!nem_parse_int(text, &v) || v < 1 || v > 1000000)) {
        fprintf(stderr, "nemesyst-export: error: --batch-size '%s' is not a count from 1 to 1000000\n", text);
        return false;
    }
    *out = (size_t)v;
    return true;
}

/* The connection, configured as nemesyst's; returns an exit status, or -1 with *store set. */
static int connect_store(int argc, char **argv, nem_config_t *cfg, nem_store_t **store)
{
    bson_error_t err = {0};
    nem_store_opts_t opts;
    if (!nem_config_resolve(cfg, argc, argv, &err)) {
        fprintf(stderr, "nemesyst-export: error: %s\n", err.message);
        return NEM_EXIT_USAGE;
    }
    if ((nem_cfg_is_set(cfg, NEM_OPT_DB_USER_NAME) || nem_cfg_is_set(cfg, NEM_OPT_DB_PASSWORD_FILE)) &&
        !nem_config_resolve_password(cfg, &err)) {
        fprintf(stderr, "nemesyst-export: error: %s\n", err.message);
        return NEM_EXIT_USAGE;
    }
    nem_log_set_level_name(nem_cfg_str(cfg, NEM_OPT_LOG_LEVEL, 0));
    nem_strv_t paths = {0};
    nem_store_opts_from_config(&opts, cfg, &paths);
    opts.app_name = "nemesyst-export";
    *store = nem_store_new(&opts, &err);
    nem_strv_free(&paths);
    if (!*store) {
        fprintf(stderr, "nemesyst-export: error: %s\n", err.message);
        return NEM_EXIT_USAGE;
    }
    if (!nem_store_ping(*store, &err)) {
        fprintf(stderr, "nemesyst-export: error: %s\n", err.message);
        return NEM_EXIT_SERVER;
    }
    return -1;
}

static int export_main(const own_args_t *own, int argc, char **argv)
{
    nem_export_opts_t opts = {.collection = own->collection, .output = own->output};
    nem_config_t *cfg = nem_config_new();
    nem_store_t *store = NULL;
    char **fields = NULL;
    bson_t pipeline = BSON_INITIALIZER;
    bson_error_t err = {0};
    uint64_t n = 0;
    int status = NEM_EXIT_USAGE;
    if (!own->collection || !own->output) {
        fprintf(stderr, "nemesyst-export: error: --collection and --output are required\n%s", usage);
        goto out;
    }
    if ((own->fields && !(fields = parse_fields(own->fields, &opts.n_fields))) ||
        (own->pipeline && !parse_pipeline(own->pipeline, &pipeline)) ||
        !parse_batch_size(own->batch_size, &opts.batch_size))
        goto out;
    opts.fields = fields;
    opts.pipeline = own->pipeline ? &pipeline : NULL;
    if ((status = connect_store(argc, argv, cfg, &store)) >= 0)
        goto out;
    if (!nem_export_run(store, &opts, &n, &err)) {
        fprintf(stderr, "nemesyst-export: error: %s\n", err.message);
        status = NEM_EXIT_FAILURE;
        goto out;
    }
    printf("nemesyst-export: wrote %llu documents to %s\n", (unsigned long long)n, own->output);
    status = NEM_EXIT_OK;
out:
    for (size_t i = 0; fields && fields[i]; i++)
        bson_free(fields[i]);
    bson_free(fields);
    bson_destroy(&pipeline);
    nem_store_destroy(store);
    nem_config_destroy(cfg);
    return status;
}

int main(int argc, char **argv)
{
    own_args_t own = {0};
    char **rest = bson_malloc0(((size_t)argc + 1) * sizeof *rest);
    int n_rest, status;
    if (!split_args(argc, argv, &own, rest, &n_rest)) {
        bson_free(rest);
        return NEM_EXIT_USAGE;
    }
    if (own.help || own.version) {
        if (own.help)
            fputs(usage, stdout);
        else
            printf("nemesyst-export %s\n", PACKAGE_VERSION);
        bson_free(rest);
        return NEM_EXIT_OK;
    }
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    nem_log_init(0, host);
    mongoc_init();
    nem_log_capture_mongoc(); /* libmongoc's messages as log lines, at --log-level */
    status = export_main(&own, n_rest, rest);
    mongoc_cleanup();
    nem_log_close();
    bson_free(rest);
    return status;
}
