/* Unit suite: the option table, precedence, config files, list indexing and every bad input. */
#include <check.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "util/errors.h"
#include "util/fs.h"
#include "stage/runner/runner.h"
#include "util/text.h"

extern char **environ;

/* getopt_long and the argv scrubber need writable strings. */
typedef struct {
    int argc;
    char *argv[32];
} argv_t;

static argv_t make_argv(const char *first, ...)
{
    argv_t a = {0};
    va_list ap;
    a.argv[a.argc++] = strdup("nemesyst");
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        a.argv[a.argc++] = strdup(s);
    va_end(ap);
    return a;
}

static void free_argv(argv_t *a)
{
    for (int i = 0; i < a->argc; i++)
        free(a->argv[i]);
}

#define ARGV(...) make_argv(__VA_ARGS__, (const char *)NULL)

static char tmpdir[] = "/tmp/nem-test-config.XXXXXX";

static char *write_file(const char *name, const char *text)
{
    char *path = bson_strdup_printf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    ck_assert_int_eq(chdir(tmpdir), 0);
    setenv("NEMESYST_SYSCONFDIR", tmpdir, 1);
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "N_", 2) == 0) {
            char name[128];
            bson_strncpy(name, *e, sizeof name);
            name[strcspn(name, "=")] = '\0';
            unsetenv(name);
            e = environ - 1;
        }
}

static void teardown(void)
{
    char *cmd = bson_strdup_printf("rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    bson_free(cmd);
    strcpy(tmpdir, "/tmp/nem-test-config.XXXXXX");
}

/* Resolve argv; returns the config (or NULL with err filled). */
static nem_config_t *resolve(argv_t *a, bson_error_t *err)
{
    nem_config_t *cfg = nem_config_new();
    if (!nem_config_resolve(cfg, a->argc, a->argv, err)) {
        nem_config_destroy(cfg);
        return NULL;
    }
    return cfg;
}

/* --sweep: the set applies above the command line, names "sweep FILE:LINE" as its source, and the run record's
 * name, index and overrides come from it. */
START_TEST(sweep_set_is_the_highest_layer_and_names_its_line)
{
    char *conf = write_file("a.conf", "dl-batch-size = 8\nlog-level = warn\n");
    char *sweep = write_file("lr.grid.jsonl", "# sets\n{\"dl-batch-size\": 16}\n\n"
                                              "{\"dl-batch-size\": 64, \"dl-epochs\": [2, 3], \"keep-partial\": true}\n");
    setenv("N_DL_BATCH_SIZE", "9", 1);
    argv_t a = ARGV("-c", conf, "--dl-batch-size", "10", "--dl-epochs", "5", "--sweep", sweep, "--sweep-index", "1");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    char *where = bson_strdup_printf("sweep %s:4", sweep);
    ck_assert_int_eq(nem_cfg_int(cfg, NEM_OPT_DL_BATCH_SIZE, 0), 64);
    ck_assert_int_eq(cfg->values[NEM_OPT_DL_BATCH_SIZE].src, NEM_SRC_SWEEP);
    ck_assert_str_eq(cfg->values[NEM_OPT_DL_BATCH_SIZE].where, where);
    ck_assert_uint_eq(nem_cfg_count(cfg, NEM_OPT_DL_EPOCHS), 2);
    ck_assert_int_eq(nem_cfg_int(cfg, NEM_OPT_DL_EPOCHS, 1), 3);
    ck_assert(nem_cfg_bool(cfg, NEM_OPT_KEEP_PARTIAL));
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_LOG_LEVEL, 0), "warn"); /* not in the set: the file's */
    /* --print-config names the sweep line as the source */
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    nem_config_print(cfg, out);
    fclose(out);
    ck_assert_ptr_nonnull(strstr(buf, where));
    free(buf);
    /* the run record's sweep: the name from the file, the overrides typed */
    char *name = nem_cfg_sweep_name(cfg);
    ck_assert_str_eq(name, "lr.grid");
    bson_free(name);
    bson_t overrides;
    nem_cfg_sweep_overrides(cfg, &overrides);
    char *json = bson_as_relaxed_extended_json(&overrides, NULL);
    ck_assert_str_eq(json, "{ \"keep-partial\" : true, \"dl-batch-size\" : [ 64 ], \"dl-epochs\" : [ 2, 3 ] }");
    bson_free(json);
    bson_destroy(&overrides);
    /* the broadcast form keeps the source */
    bson_t doc;
    nem_config_to_bson(cfg, true, &doc);
    nem_config_t *copy = nem_config_new();
    ck_assert(nem_config_from_bson(copy, &doc, &err));
    ck_assert_int_eq(copy->values[NEM_OPT_DL_BATCH_SIZE].src, NEM_SRC_SWEEP);
    bson_destroy(&doc);
    nem_config_destroy(copy);
    unsetenv("N_DL_BATCH_SIZE");
    bson_free(where);
    bson_free(conf);
    bson_free(sweep);
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(sweep_index_comes_from_slurm_array_task_id)
{
    char *sweep = write_file("s.jsonl", "{\"dl-epochs\": 4}\n{\"dl-epochs\": 7}\n");
    setenv("SLURM_ARRAY_TASK_ID", "1", 1);
    argv_t a = ARGV("--sweep", sweep, "--sweep-name", "mine");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_int_eq(nem_cfg_int(cfg, NEM_OPT_DL_EPOCHS, 0), 7);
    ck_assert_int_eq(nem_cfg_int(cfg, NEM_OPT_SWEEP_INDEX, 0), 1);
    ck_assert_str_eq(cfg->values[NEM_OPT_SWEEP_INDEX].where, "env SLURM_ARRAY_TASK_ID");
    char *name = nem_cfg_sweep_name(cfg);
    ck_assert_str_eq(name, "mine");
    bson_free(name);
    nem_config_destroy(cfg);
    free_argv(&a);
    /* --sweep-index wins over the array's index */
    a = ARGV("--sweep", sweep, "--sweep-index", "0");
    cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_int_eq(nem_cfg_int(cfg, NEM_OPT_DL_EPOCHS, 0), 4);
    nem_config_destroy(cfg);
    free_argv(&a);
    unsetenv("SLURM_ARRAY_TASK_ID");
    bson_free(sweep);
}
END_TEST

START_TEST(bad_sweeps_name_the_file_and_line)
{
    static const struct {
        const char *text, *args_index, *want;
    } cases[] = {
        {"{}\n{\"dl-epochs\": \"2\"}\n", "0", ":2: option --dl-epochs expects an integer, got a string"},
        {"{\"dl-epochs\": 2}\nnope\n", "0", ":2: malformed line 'nope'"},
        {"{\"dl-epochs\": 2\n", "0", ":1: malformed line: not one JSON object"},
        {"\n\n{\"no-such\": 1}\n", "0", ":3: unknown option 'no-such'"},
        {"{\"db-ip\": \"x\"}\n", "0", ":1: option --db-ip cannot be set by a sweep"},
        {"{\"process-pool\": 0}\n", "0", ":1: option --process-pool must be >= 1, got 0"},
        {"{}\n{}\n", "2", "--sweep-index 2 (cli) is out of range: the file holds 2 option sets (indexes 0-1)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *sweep = write_file("bad.jsonl", cases[i].text);
        argv_t a = ARGV("--sweep", sweep, "--sweep-index", cases[i].args_index);
        bson_error_t err;
        nem_config_t *cfg = resolve(&a, &err);
        ck_assert_msg(cfg == NULL, "case %zu resolved", i);
        ck_assert_msg(strstr(err.message, sweep) && strstr(err.message, cases[i].want), "case %zu: %s", i,
                      err.message);
        ck_assert_ptr_null(strchr(err.message, '\n'));
        free_argv(&a);
        bson_free(sweep);
    }
    argv_t a = ARGV("--sweep", "/nonexistent/s.jsonl", "--sweep-index", "0");
    bson_error_t err;
    ck_assert_ptr_null(resolve(&a, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "cannot read sweep file '/nonexistent/s.jsonl'"));
    free_argv(&a);
    for (int i = 0; i < NEM_OPT__COUNT; i++) /* the sweep cannot redirect a run to another store */
        if (nem_options[i].group == NEM_G_TLS || (nem_options[i].flags & NEM_F_SECRET))
            ck_assert_ptr_nonnull(nem_sweep_refuses((nem_opt_id_t)i));
    ck_assert_ptr_null(nem_sweep_refuses(NEM_OPT_DL_BATCH_SIZE));
    ck_assert_ptr_null(nem_sweep_refuses(NEM_OPT_DB_BATCH_SIZE));
}
END_TEST

START_TEST(every_2_0_6_option_is_in_the_table_with_its_short_name)
{
    static const struct { const char *name; char s; } original[] = {
        {"update", 'U'}, {"prevent-update", 0}, {"config", 'c'}, {"process-pool", 0}, {"data", 'd'},
        {"data-clean", 0}, {"data-cleaner", 0}, {"data-cleaner-entry-point", 0}, {"data-collection", 0},
        {"dl-batch-size", 0}, {"dl-epochs", 0}, {"dl-learn", 0}, {"dl-learner", 0}, {"dl-learner-entry-point", 0},
        {"dl-data-collection", 0}, {"dl-data-pipeline", 0}, {"dl-input-model-collection", 0},
        {"dl-input-model-pipeline", 0}, {"dl-output-model-collection", 0}, {"dl-sequence-length", 0},
        {"i-predictor", 0}, {"i-predictor-entry-point", 0}, {"i-output-prediction-collection", 0},
        {"i-predict", 0}, {"db-replica-set-name", 0}, {"db-replica-read-preference", 0},
        {"db-replica-max-staleness", 0}, {"db-tls", 0}, {"db-tls-ca-file", 0}, {"db-tls-certificate-key-file", 0},
        {"db-tls-certificate-key-file-password", 0}, {"db-tls-crl-file", 0}, {"db-login", 'l'}, {"db-start", 's'},
        {"db-stop", 'S'}, {"db-init", 'i'}, {"db-user-name", 0}, {"db-password", 0}, {"db-intervention", 0},
        {"db-authentication", 0}, {"db-authentication-database", 0}, {"db-user-role", 0}, {"db-ip", 0},
        {"db-bind-ip", 0}, {"db-port", 0}, {"db-name", 0}, {"db-collection-name", 0}, {"db-config-path", 0},
        {"db-path", 0}, {"db-log-path", 0}, {"db-log-name", 0}, {"db-cursor-timeout", 0}, {"db-batch-size", 0},
        {"db-pipeline", 0},
    };
    for (size_t i = 0; i < sizeof original / sizeof original[0]; i++) {
        int id = nem_option_find(original[i].name);
        ck_assert_msg(id >= 0, "missing option --%s", original[i].name);
        ck_assert_int_eq(nem_options[id].short_name, original[i].s);
        ck_assert_msg(!(nem_options[id].flags & NEM_F_NEW), "--%s is marked new", original[i].name);
    }
}
END_TEST

START_TEST(defaults_match_2_0_6)
{
    argv_t a = ARGV("--process-pool", "1");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_int_eq(nem_cfg_int(cfg, NEM_OPT_DB_PORT, 0), 65535);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_NAME, 0), "nemesyst");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DATA_COLLECTION, 0), "debug_data");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DL_OUTPUT_MODEL_COLLECTION, 0), "debug_models");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_I_OUTPUT_PREDICTION_COLLECTION, 0), "debug_predictions");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_AUTHENTICATION, 0), "SCRAM-SHA-1");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_USER_ROLE, 0), "readWrite");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_REPLICA_READ_PREFERENCE, 0), "primary");
    ck_assert_int_eq(nem_cfg_int(cfg, NEM_OPT_DB_REPLICA_MAX_STALENESS, 0), -1);
    ck_assert_int_eq(nem_cfg_int(cfg, NEM_OPT_DB_CURSOR_TIMEOUT, 0), 600000);
    ck_assert_int_eq(nem_cfg_int(cfg, NEM_OPT_DL_BATCH_SIZE, 0), 32);
    ck_assert_int_eq(nem_cfg_int(cfg, NEM_OPT_DL_EPOCHS, 0), 1);
    ck_assert(!nem_cfg_bool(cfg, NEM_OPT_DATA_CLEAN));
    ck_assert(!nem_cfg_is_set(cfg, NEM_OPT_DATA_CLEANER));
    ck_assert_str_eq(cfg->values[NEM_OPT_DB_PORT].where, "default");
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(env_names_are_N_plus_upper_snake_case)
{
    char buf[96];
    nem_option_env_name(NEM_OPT_DB_PORT, buf, sizeof buf);
    ck_assert_str_eq(buf, "N_DB_PORT");
    nem_option_env_name(NEM_OPT_DATA_CLEANER, buf, sizeof buf);
    ck_assert_str_eq(buf, "N_DATA_CLEANER");
}
END_TEST

START_TEST(cli_beats_env_beats_file_beats_default)
{
    char *conf = write_file("a.conf", "db-port = 1001\ndb-name = fromfile\ndb-ip = filehost\ndb-user-role: fileRole\n");
    setenv("N_DB_PORT", "2002", 1);
    setenv("N_DB_NAME", "fromenv", 1);
    argv_t a = ARGV("-c", conf, "--db-port", "3003");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_int_eq(nem_cfg_int(cfg, NEM_OPT_DB_PORT, 0), 3003);
    ck_assert_str_eq(cfg->values[NEM_OPT_DB_PORT].where, "cli");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_NAME, 0), "fromenv");
    ck_assert_str_eq(cfg->values[NEM_OPT_DB_NAME].where, "env N_DB_NAME");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_IP, 0), "filehost");
    char *want = bson_strdup_printf("%s:3", conf);
    ck_assert_str_eq(cfg->values[NEM_OPT_DB_IP].where, want);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_USER_ROLE, 0), "fileRole");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_COLLECTION_NAME, 0), "test");
    unsetenv("N_DB_PORT");
    unsetenv("N_DB_NAME");
    bson_free(want);
    bson_free(conf);
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(config_file_accepts_every_configargparse_line_form)
{
    char *conf = write_file("forms.conf",
                            "# comment line\n"
                            "; another comment\n"
                            "[section]\n"
                            "\n"
                            "--db-user-name=groot          # trailing comment\n"
                            "db-name = data ; trailing\n"
                            "db-ip: example.org\n"
                            "db-log-name mongo_log2\n"
                            "data-clean\n"
                            "dl-learn = yes\n"
                            "i-predict = 0\n"
                            "data-collection = [a, b , c]\n"
                            "dl-batch-size = 8 16\n"
                            "db-collection-name = \"quoted\"\n");
    argv_t a = ARGV("-c", conf);
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_USER_NAME, 0), "groot");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_NAME, 0), "data");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_IP, 0), "example.org");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_LOG_NAME, 0), "mongo_log2");
    ck_assert(nem_cfg_bool(cfg, NEM_OPT_DATA_CLEAN));
    ck_assert(nem_cfg_bool(cfg, NEM_OPT_DL_LEARN));
    ck_assert(!nem_cfg_bool(cfg, NEM_OPT_I_PREDICT));
    ck_assert_uint_eq(nem_cfg_count(cfg, NEM_OPT_DATA_COLLECTION), 3);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DATA_COLLECTION, 1), "b");
    ck_assert_uint_eq(nem_cfg_count(cfg, NEM_OPT_DL_BATCH_SIZE), 2);
    ck_assert_int_eq(nem_cfg_int(cfg, NEM_OPT_DL_BATCH_SIZE, 1), 16);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_COLLECTION_NAME, 0), "quoted");
    bson_free(conf);
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(list_shorter_than_scripts_repeats_its_last_value)
{
    argv_t a = ARGV("--data-collection", "first", "second", "--dl-epochs", "3");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DATA_COLLECTION, 0), "first");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DATA_COLLECTION, 1), "second");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DATA_COLLECTION, 7), "second");
    ck_assert_int_eq(nem_cfg_int(cfg, NEM_OPT_DL_EPOCHS, 5), 3);
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(later_config_files_win_and_a_file_is_read_once)
{
    char *b = write_file("b.conf", "db-name = fromb\n");
    char *a_conf = write_file("a.conf", "db-name = froma\ndb-ip = ahost\nconfig = b.conf\nconfig = a.conf\n");
    argv_t a = ARGV("-c", a_conf, b, a_conf);
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_NAME, 0), "fromb");
    ck_assert_uint_eq(cfg->n_files, 2);
    bson_free(a_conf);
    bson_free(b);
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(default_config_dirs_are_read_and_cli_files_win)
{
    ck_assert_int_eq(mkdir("nemesyst.d", 0700), 0);
    char *d = write_file("nemesyst.d/10-site.conf", "db-name = fromdir\ndb-ip = dirhost\n");
    char *c = write_file("extra.conf", "db-name = fromextra\n");
    argv_t a = ARGV("--config", c);
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_NAME, 0), "fromextra");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_IP, 0), "dirhost");
    bson_free(c);
    bson_free(d);
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(env_lists_and_booleans_parse)
{
    setenv("N_DATA_COLLECTION", "[x, y]", 1);
    setenv("N_DATA_CLEAN", "yes", 1);
    argv_t a = ARGV("--db-port=27017");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_uint_eq(nem_cfg_count(cfg, NEM_OPT_DATA_COLLECTION), 2);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DATA_COLLECTION, 1), "y");
    ck_assert(nem_cfg_bool(cfg, NEM_OPT_DATA_CLEAN));
    unsetenv("N_DATA_COLLECTION");
    unsetenv("N_DATA_CLEAN");
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(short_flags_and_bool_values_on_the_cli)
{
    argv_t a = ARGV("-i", "-s", "--db-stop=no", "-d", "f1", "f2");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert(nem_cfg_bool(cfg, NEM_OPT_DB_INIT));
    ck_assert(nem_cfg_bool(cfg, NEM_OPT_DB_START));
    ck_assert(!nem_cfg_bool(cfg, NEM_OPT_DB_STOP));
    ck_assert_uint_eq(nem_cfg_count(cfg, NEM_OPT_DATA), 2);
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(password_on_the_cli_is_scrubbed_from_argv)
{
    argv_t a = ARGV("--db-password", "hunter2", "--db-user-name", "u");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_PASSWORD, 0), "hunter2");
    ck_assert_str_eq(a.argv[2], "xxxxxxx");
    ck_assert(nem_config_resolve_password(cfg, &err));
    ck_assert_str_eq(cfg->password, "hunter2");
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(bare_db_password_before_another_option_means_prompt)
{
    argv_t a = ARGV("--db-password", "--db-path", "/tmp/x");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_PASSWORD, 0), "true");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_PATH, 0), "/tmp/x");
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(password_file_is_read_and_loose_modes_refused)
{
    char *p = write_file("pw", "s3cret\n");
    chmod(p, 0600);
    argv_t a = ARGV("--db-password-file", p);
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert(nem_config_resolve_password(cfg, &err));
    ck_assert_str_eq(cfg->password, "s3cret");
    nem_config_destroy(cfg);
    chmod(p, 0644);
    cfg = resolve(&a, &err);
    ck_assert(!nem_config_resolve_password(cfg, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "accessible by group or others"));
    ck_assert_ptr_nonnull(strstr(err.message, p));
    nem_config_destroy(cfg);
    bson_free(p);
    free_argv(&a);
}
END_TEST

START_TEST(env_password_is_used)
{
    setenv("N_DB_PASSWORD", "envpw", 1);
    argv_t a = ARGV("--db-user-name", "u");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert(nem_config_resolve_password(cfg, &err));
    ck_assert_str_eq(cfg->password, "envpw");
    unsetenv("N_DB_PASSWORD");
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

/* Bad inputs: each one fails with a message naming what and where. */
static void expect_error(argv_t a, const char *needle1, const char *needle2)
{
    bson_error_t err = {0};
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg == NULL, "expected an error containing '%s'", needle1);
    ck_assert_msg(strstr(err.message, needle1), "'%s' not in '%s'", needle1, err.message);
    if (needle2)
        ck_assert_msg(strstr(err.message, needle2), "'%s' not in '%s'", needle2, err.message);
    ck_assert_ptr_null(strchr(err.message, '\n'));
    free_argv(&a);
}

START_TEST(unknown_option_suggests_the_closest)
{
    expect_error(ARGV("--db-prot", "5"), "--db-prot", "did you mean --db-port?");
    expect_error(ARGV("--data-colection", "x"), "did you mean --data-collection?", NULL);
    expect_error(ARGV("-Z"), "unknown option '-Z'", NULL);
}
END_TEST

START_TEST(missing_value_names_the_option)
{
    expect_error(ARGV("--db-port"), "--db-port needs a value", NULL);
    expect_error(ARGV("-c"), "-c needs a value", NULL);
}
END_TEST

START_TEST(wrong_type_names_option_and_value)
{
    expect_error(ARGV("--db-port", "abc"), "--db-port expects an integer, got 'abc'", "cli");
    expect_error(ARGV("--db-port", "70000"), "--db-port must be 1-65535", NULL);
    expect_error(ARGV("--process-pool", "0"), "--process-pool must be >= 1", NULL);
    expect_error(ARGV("--data-clean=maybe"), "--data-clean expects true/false", "maybe");
    expect_error(ARGV("--db-replica-read-preference", "sometimes"), "--db-replica-read-preference must be one of",
                 "sometimes");
    expect_error(ARGV("--dl-data-pipeline", "[{\"$match\": "), "--dl-data-pipeline holds invalid JSON", NULL);
    expect_error(ARGV("--dl-data-pipeline", "/no/such/pipeline.json"), "/no/such/pipeline.json", NULL);
}
END_TEST

START_TEST(unexpected_positional_argument_is_refused)
{
    expect_error(ARGV("--db-port", "5", "stray"), "unexpected argument 'stray'", NULL);
}
END_TEST

START_TEST(bad_config_lines_are_given_as_file_and_line)
{
    char *conf = write_file("bad.conf", "db-name = ok\n\n--db-prot = 5\n");
    char *want = bson_strdup_printf("%s:3", conf);
    expect_error(ARGV("-c", conf), want, "did you mean db-port?");
    bson_free(want);
    char *conf2 = write_file("bad2.conf", "db-port = eighty\n");
    want = bson_strdup_printf("%s:1", conf2);
    expect_error(ARGV("-c", conf2), want, "expects an integer, got 'eighty'");
    bson_free(want);
    char *conf3 = write_file("bad3.conf", "db-port\n");
    want = bson_strdup_printf("%s:1", conf3);
    expect_error(ARGV("-c", conf3), want, "needs a value");
    bson_free(want);
    bson_free(conf);
    bson_free(conf2);
    bson_free(conf3);
}
END_TEST

START_TEST(env_value_errors_name_the_variable)
{
    setenv("N_DB_PORT", "nope", 1);
    expect_error(ARGV("--db-name", "x"), "env N_DB_PORT", "nope");
    unsetenv("N_DB_PORT");
}
END_TEST

START_TEST(unreadable_config_file_is_named)
{
    expect_error(ARGV("-c", "/no/such/file.conf"), "cannot read config file '/no/such/file.conf'", NULL);
}
END_TEST

START_TEST(bson_round_trip_keeps_values_and_drops_secrets_unless_asked)
{
    argv_t a = ARGV("--data-collection", "a", "b", "--db-port", "1234", "--db-password", "pw", "--data-clean");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert(nem_config_resolve_password(cfg, &err));
    bson_t pub, priv;
    nem_config_to_bson(cfg, false, &pub);
    nem_config_to_bson(cfg, true, &priv);
    char *json = bson_as_relaxed_extended_json(&pub, NULL);
    ck_assert_ptr_null(strstr(json, "pw\""));
    ck_assert_ptr_nonnull(strstr(json, "\"db-port\" : 1234"));
    bson_free(json);
    nem_config_t *copy = nem_config_new();
    ck_assert(nem_config_from_bson(copy, &priv, &err));
    ck_assert_str_eq(nem_cfg_str(copy, NEM_OPT_DATA_COLLECTION, 1), "b");
    ck_assert_int_eq(nem_cfg_int(copy, NEM_OPT_DB_PORT, 0), 1234);
    ck_assert(nem_cfg_bool(copy, NEM_OPT_DATA_CLEAN));
    ck_assert_str_eq(copy->password, "pw");
    bson_destroy(&pub);
    bson_destroy(&priv);
    nem_config_destroy(copy);
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(pipelines_parse_inline_and_from_files)
{
    char *p = write_file("pipe.json", "[{\"$match\": {\"y\": 1}}, {\"$limit\": 5}]");
    argv_t a = ARGV("--dl-data-pipeline", "[{\"$match\": {}}]", p);
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    bson_t doc;
    ck_assert(nem_cfg_json(cfg, NEM_OPT_DL_DATA_PIPELINE, 1, &doc, &err));
    ck_assert_uint_eq(bson_count_keys(&doc), 2);
    bson_destroy(&doc);
    ck_assert(nem_cfg_json(cfg, NEM_OPT_DL_DATA_PIPELINE, 0, &doc, &err));
    ck_assert_uint_eq(bson_count_keys(&doc), 1);
    bson_destroy(&doc);
    bson_free(p);
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(print_config_masks_secrets_and_shows_sources)
{
    char *conf = write_file("p.conf", "db-tls-certificate-key-file-password = topsecret\n");
    argv_t a = ARGV("-c", conf, "--db-password", "hunter2");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nem_config_print(cfg, f);
    fclose(f);
    ck_assert_ptr_null(strstr(buf, "hunter2"));
    ck_assert_ptr_null(strstr(buf, "topsecret"));
    ck_assert_ptr_nonnull(strstr(buf, "********"));
    char *want = bson_strdup_printf("# %s:1", conf);
    ck_assert_ptr_nonnull(strstr(buf, want));
    ck_assert_ptr_nonnull(strstr(buf, "# default"));
    bson_free(want);
    free(buf);
    bson_free(conf);
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(bool_option_takes_a_following_boolean_word)
{
    argv_t a = ARGV("--provenance", "false", "--data-clean", "--db-port", "5");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert(!nem_cfg_bool(cfg, NEM_OPT_PROVENANCE));
    ck_assert(nem_cfg_bool(cfg, NEM_OPT_DATA_CLEAN));
    nem_config_destroy(cfg);
    free_argv(&a);
    /* a following word that is no boolean: the same message as --data-clean=maybe */
    expect_error(ARGV("--data-clean", "maybe"), "cli: option --data-clean expects true/false/yes/no/1/0, got 'maybe'",
                 NULL);
    expect_error(ARGV("--provenance", "maybe"), "cli: option --provenance expects true/false/yes/no/1/0, got 'maybe'",
                 NULL);
}
END_TEST

START_TEST(unknown_env_variables_are_found_with_a_suggestion)
{
    char s[64];
    ck_assert(nem_config_env_unknown("N_DB_PROT=5", s, sizeof s));
    ck_assert_str_eq(s, "N_DB_PORT");
    ck_assert(nem_config_env_unknown("N_DATA_CLAEN=1", s, sizeof s));
    ck_assert_str_eq(s, "N_DATA_CLEAN");
    ck_assert(nem_config_env_unknown("N_FROBNICATE_THE_WIDGETS=1", s, sizeof s));
    ck_assert_str_eq(s, "");
    /* every option's own variable, the new ones included, and anything else is no concern of nemesyst's */
    ck_assert(!nem_config_env_unknown("N_DB_PORT=5", s, sizeof s));
    ck_assert(!nem_config_env_unknown("N_PYTHON=/usr/bin/python3", s, sizeof s));
    ck_assert(!nem_config_env_unknown("N_CHECK_SERVER=", s, sizeof s));
    ck_assert(!nem_config_env_unknown("PATH=/bin", s, sizeof s));
    ck_assert(!nem_config_env_unknown("N_=x", s, sizeof s));
    ck_assert(!nem_config_env_unknown("N_DB_PORT", s, sizeof s));
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        char name[128], entry[160];
        nem_option_env_name((nem_opt_id_t)i, name, sizeof name);
        snprintf(entry, sizeof entry, "%s=1", name);
        ck_assert_msg(!nem_config_env_unknown(entry, s, sizeof s), "%s called unknown", name);
    }
}
END_TEST

START_TEST(check_and_python_are_options_of_the_table)
{
    argv_t a = ARGV("--check", "--python", "/opt/venv/bin/python3");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert(nem_cfg_bool(cfg, NEM_OPT_CHECK));
    ck_assert(!nem_cfg_bool(cfg, NEM_OPT_CHECK_SERVER));
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_PYTHON, 0), "/opt/venv/bin/python3");
    nem_config_destroy(cfg);
    free_argv(&a);
    expect_error(ARGV("--check", "maybe"), "cli: option --check expects true/false/yes/no/1/0, got 'maybe'", NULL);
    expect_error(ARGV("--python", ""), "cli: option --python: value is empty", NULL);
}
END_TEST

START_TEST(script_args_pad_per_script_lists_by_repeating_the_last_value)
{
    argv_t a = ARGV("--dl-epochs", "3", "--data-collection", "a", "b", "-d", "f1", "--db-bind-ip", "h1");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    bson_t args;
    nem_config_to_bson_for_scripts(cfg, 3, &args);
    bson_iter_t it;
    ck_assert(bson_iter_init(&it, &args) && bson_iter_find_descendant(&it, "dl-epochs.2", &it));
    ck_assert_int_eq(bson_iter_as_int64(&it), 3);
    ck_assert(bson_iter_init(&it, &args) && bson_iter_find_descendant(&it, "data-collection.2", &it));
    ck_assert_str_eq(bson_iter_utf8(&it, NULL), "b");
    ck_assert(bson_iter_init(&it, &args) && !bson_iter_find_descendant(&it, "data.1", &it));
    ck_assert(bson_iter_init(&it, &args) && !bson_iter_find_descendant(&it, "db-bind-ip.1", &it));
    bson_destroy(&args);
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

/* Robustness: no input makes resolution hang or crash (README "Bad input", nemesyst(1) DIAGNOSTICS). */

/* c1.conf includes c2.conf ... includes cN.conf, which sets db-name. */
static void write_chain(int n)
{
    for (int i = 1; i <= n; i++) {
        char name[32], text[64];
        snprintf(name, sizeof name, "c%d.conf", i);
        if (i < n)
            snprintf(text, sizeof text, "config = c%d.conf\n", i + 1);
        else
            snprintf(text, sizeof text, "db-name = end%d\n", n);
        bson_free(write_file(name, text));
    }
}

START_TEST(include_depth_is_bounded)
{
    write_chain(NEM_CONFIG_DEPTH_MAX);
    argv_t a = ARGV("-c", "c1.conf");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_NAME, 0), "end32");
    ck_assert_uint_eq(cfg->n_files, NEM_CONFIG_DEPTH_MAX);
    nem_config_destroy(cfg);
    free_argv(&a);

    write_chain(NEM_CONFIG_DEPTH_MAX + 1);
    char *want = bson_strdup_printf("%s/c32.conf:1: config file '%s/c33.conf' would be included at depth 33, deeper "
                                    "than the limit of 32", tmpdir, tmpdir);
    expect_error(ARGV("-c", "c1.conf"), want, NULL);
    bson_free(want);
    /* 10,000 files each including the next once overflowed the stack. */
    write_chain(10000);
    expect_error(ARGV("-c", "c1.conf"), "c32.conf:1:", "depth 33");
}
END_TEST

START_TEST(include_loops_read_each_file_once)
{
    bson_free(write_file("a.conf", "db-name = froma\nconfig = b.conf\n"));
    bson_free(write_file("b.conf", "db-ip = fromb\nconfig = a.conf\nconfig = ./sub/../a.conf\n"));
    ck_assert_int_eq(mkdir("sub", 0700), 0);
    argv_t a = ARGV("-c", "a.conf");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_NAME, 0), "froma");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_IP, 0), "fromb");
    ck_assert_uint_eq(cfg->n_files, 2);
    nem_config_destroy(cfg);
    free_argv(&a);
    /* A file that includes itself. */
    bson_free(write_file("self.conf", "config = self.conf\ndb-port = 1234\n"));
    a = ARGV("-c", "self.conf");
    cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_int_eq(nem_cfg_int(cfg, NEM_OPT_DB_PORT, 0), 1234);
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(special_files_are_refused_without_blocking)
{
    /* The Check fork times out a test that blocks: a FIFO opened for reading without a writer would. */
    ck_assert_int_eq(mkfifo("fifo.conf", 0600), 0);
    ck_assert_int_eq(mkdir("dir.conf", 0700), 0);
    ck_assert_int_eq(symlink("loop2.conf", "loop1.conf"), 0);
    ck_assert_int_eq(symlink("loop1.conf", "loop2.conf"), 0);
    expect_error(ARGV("-c", "fifo.conf"), "cannot read config file 'fifo.conf': it is a FIFO, not a regular file", NULL);
    expect_error(ARGV("-c", "dir.conf"), "cannot read config file 'dir.conf': it is a directory", NULL);
    expect_error(ARGV("-c", "/dev/zero"), "'/dev/zero': it is a character device, not a regular file", NULL);
    expect_error(ARGV("-c", "loop1.conf"), "'loop1.conf'", strerror(ELOOP));
    bson_free(write_file("inc.conf", "db-name = x\nconfig = fifo.conf\n"));
    expect_error(ARGV("-c", "inc.conf"), "inc.conf:2: cannot read config file", "it is a FIFO");
    ck_assert_int_eq(mkdir("nemesyst.d", 0700), 0);
    ck_assert_int_eq(mkfifo("nemesyst.d/site.conf", 0600), 0);
    expect_error(ARGV("--db-port", "5"), "nemesyst.d/site.conf': it is a FIFO", NULL);
    ck_assert_int_eq(unlink("nemesyst.d/site.conf"), 0);
    /* Pipelines given as a path. */
    expect_error(ARGV("--dl-data-pipeline", "fifo.conf"), "--dl-data-pipeline file 'fifo.conf': it is a FIFO", NULL);
    expect_error(ARGV("--dl-data-pipeline", "/dev/zero"), "it is a character device", NULL);
}
END_TEST

START_TEST(config_files_are_bounded_in_size)
{
    char *text = bson_malloc(NEM_CONFIG_FILE_MAX + 2);
    memset(text, '#', NEM_CONFIG_FILE_MAX);
    text[NEM_CONFIG_FILE_MAX] = '\0';
    bson_free(write_file("max.conf", text));
    argv_t a = ARGV("-c", "max.conf");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    nem_config_destroy(cfg);
    free_argv(&a);
    text[NEM_CONFIG_FILE_MAX] = '#';
    text[NEM_CONFIG_FILE_MAX + 1] = '\0';
    bson_free(write_file("over.conf", text));
    bson_free(text);
    expect_error(ARGV("-c", "over.conf"), "'over.conf': it is larger than 1048576 bytes", NULL);
}
END_TEST

START_TEST(config_files_accept_a_bom_and_crlf)
{
    char *conf = write_file("win.conf", "\xEF\xBB\xBF# written on Windows\r\ndb-name = winny\r\n"
                                        "data-collection = [a, b]\r\ndata-clean\r\n\r\n");
    argv_t a = ARGV("-c", conf);
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_NAME, 0), "winny");
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DATA_COLLECTION, 1), "b");
    ck_assert(nem_cfg_bool(cfg, NEM_OPT_DATA_CLEAN));
    char *want = bson_strdup_printf("%s:2", conf);
    ck_assert_str_eq(cfg->values[NEM_OPT_DB_NAME].where, want);
    bson_free(want);
    bson_free(conf);
    nem_config_destroy(cfg);
    free_argv(&a);
    /* A BOM anywhere but the start is not one. */
    conf = write_file("bom2.conf", "db-name = a\n\xEF\xBB\xBF" "db-ip = b\n");
    want = bson_strdup_printf("%s:2: unknown option", conf);
    expect_error(ARGV("-c", conf), want, NULL);
    bson_free(want);
    bson_free(conf);
}
END_TEST

START_TEST(binary_and_invalid_utf8_config_files_name_the_line)
{
    char *conf = write_file("bin.conf", "db-name = a\n\ndb-ip = b\n");
    FILE *f = fopen(conf, "a");
    fwrite("x\0y\n", 1, 4, f);
    fclose(f);
    char *want = bson_strdup_printf("%s:4: NUL byte in a config file", conf);
    expect_error(ARGV("-c", conf), want, NULL);
    bson_free(want);
    bson_free(conf);
    conf = write_file("latin1.conf", "db-name = a\ndb-user-name = caf\xE9\n");
    want = bson_strdup_printf("%s:2: invalid UTF-8 (byte 19 of the line)", conf);
    expect_error(ARGV("-c", conf), want, NULL);
    bson_free(want);
    bson_free(conf);
}
END_TEST

START_TEST(utf8_validation_is_strict)
{
    static const struct { const char *s; bool ok; } cases[] = {
        {"plain", true}, {"caf\xC3\xA9", true}, {"\xE2\x82\xAC", true}, {"\xF0\x9F\x98\x80", true},
        {"\xFF", false}, {"\xC0\xAF", false}, {"\xE0\x80\xAF", false}, {"\xED\xA0\x80", false},
        {"\xF4\x90\x80\x80", false}, {"\xE2\x82", false}, {"a\x80", false}, {"\xC3", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t bad = 99;
        ck_assert_msg(nem_utf8_valid(cases[i].s, strlen(cases[i].s), &bad) == cases[i].ok, "case %zu", i);
    }
    char q[128];
    ck_assert_str_eq(nem_text_quote("a\nb\xFF", q, sizeof q), "a\\x0Ab\\xFF");
    char *long_value = bson_malloc0(1001);
    memset(long_value, 'x', 1000);
    nem_text_quote(long_value, q, sizeof q);
    ck_assert_uint_eq(strlen(q), 63);
    ck_assert_str_eq(q + 60, "...");
    bson_free(long_value);
}
END_TEST

START_TEST(mongodb_database_names)
{
    char why[160];
    static const char *const good[] = {"nemesyst", "data", "a-b_c", "x1", "DB", "caf\xC3\xA9"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(nem_db_name_ok(good[i], false, why, sizeof why), "%s: %s", good[i], why);
    static const char *const bad[] = {"", "a/b", "a\\b", "a.b", "a b", "a\"b", "a$b", "a*b", "a<b", "a>b", "a:b",
                                      "a|b", "a?b", "\xFF"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!nem_db_name_ok(bad[i], false, why, sizeof why), "'%s' accepted", bad[i]);
    char name[80];
    memset(name, 'd', sizeof name);
    name[NEM_DB_NAME_MAX] = '\0';
    ck_assert(nem_db_name_ok(name, false, why, sizeof why));
    name[NEM_DB_NAME_MAX] = 'd';
    name[NEM_DB_NAME_MAX + 1] = '\0';
    ck_assert(!nem_db_name_ok(name, false, why, sizeof why));
    ck_assert_ptr_nonnull(strstr(why, "64 bytes"));
    ck_assert(nem_db_name_ok("$external", true, why, sizeof why));
    ck_assert(!nem_db_name_ok("$external", false, why, sizeof why));

    expect_error(ARGV("--db-name", "my.db"), "cli: option --db-name: database name 'my.db' contains '.'", NULL);
    expect_error(ARGV("--db-authentication-database", "a b"), "option --db-authentication-database", "(a space)");
    argv_t a = ARGV("--db-authentication-database", "$external", "--db-authentication", "MONGODB-X509");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

START_TEST(mongodb_collection_and_bucket_names)
{
    char why[160];
    static const char *const good[] = {"debug_data", "a.b", "fashion_models", "x-y", "systems", "a.system.b"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(nem_collection_name_ok(good[i], why, sizeof why), "%s: %s", good[i], why);
    static const char *const bad[] = {"", "a$b", "system.users", ".a", "a.", "a..b", "\xC0\xAF"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!nem_collection_name_ok(bad[i], why, sizeof why), "'%s' accepted", bad[i]);

    /* Every option that names one is checked, each value of a list, with its source. */
    static const char *const opts[] = {"--data-collection", "--dl-data-collection", "--dl-input-model-collection",
                                       "--dl-output-model-collection", "--i-output-prediction-collection",
                                       "--db-collection-name"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        expect_error(ARGV(opts[i], "a$b"), opts[i], "'a$b' contains '$'");
    setenv("N_DATA_COLLECTION", "[ok, system.x]", 1);
    expect_error(ARGV("--db-port", "5"), "env N_DATA_COLLECTION: option --data-collection: collection name 2",
                 "starts with 'system.'");
    unsetenv("N_DATA_COLLECTION");

    /* Namespaces: db + '.' + collection <= 255 bytes; a bucket's longest is db.bucket.chunks. */
    char coll[300];
    memset(coll, 'c', sizeof coll);
    coll[255 - strlen("nemesyst.")] = '\0';
    argv_t a = ARGV("--data-collection", coll);
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    nem_config_destroy(cfg);
    free_argv(&a);
    coll[255 - strlen("nemesyst.")] = 'c';
    coll[256 - strlen("nemesyst.")] = '\0';
    expect_error(ARGV("--data-collection", coll), "makes a namespace of 256 bytes", "255");
    memset(coll, 'm', sizeof coll);
    coll[255 - strlen("nemesyst..chunks")] = '\0';
    a = ARGV("--dl-output-model-collection", coll);
    cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    nem_config_destroy(cfg);
    free_argv(&a);
    coll[255 - strlen("nemesyst..chunks")] = 'm';
    coll[256 - strlen("nemesyst..chunks")] = '\0';
    expect_error(ARGV("--dl-output-model-collection", coll), "GridFS bucket name", "(with .chunks)");
}
END_TEST

START_TEST(values_are_bounded_and_utf8)
{
    char *big = bson_malloc0(NEM_VALUE_MAX + 2);
    memset(big, 'a', NEM_VALUE_MAX + 1);
    expect_error(ARGV("--db-ip", big), "cli: option --db-ip: value is 65537 bytes, more than the limit of 65536",
                 NULL);
    big[NEM_VALUE_MAX] = '\0';
    argv_t a = ARGV("--db-ip", big);
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    nem_config_destroy(cfg);
    free_argv(&a);
    bson_free(big);
    expect_error(ARGV("--db-user-name", "caf\xE9"), "option --db-user-name: value 'caf\\xE9' is not valid UTF-8", NULL);
    expect_error(ARGV("--db-password", "pw\xFF"), "--db-password: the value is not valid UTF-8", NULL);
    expect_error(ARGV("--db-ip", ""), "cli: option --db-ip: value is empty", NULL);
    expect_error(ARGV("--db-bind-ip", "h1", ""), "option --db-bind-ip: value 2 is empty", NULL);
    char *conf = write_file("open.conf", "db-bind-ip = [a, b\n");
    expect_error(ARGV("-c", conf), "option --db-bind-ip: list '[a, b' has no closing ']'", NULL);
    bson_free(conf);
    /* Too many values in one list. */
    size_t n = NEM_LIST_MAX + 1;
    char *many = bson_malloc0(n * 2 + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(many + 2 * i, "h ", 2);
    setenv("N_DB_BIND_IP", many, 1);
    expect_error(ARGV("--db-port", "5"), "env N_DB_BIND_IP: option --db-bind-ip has 10001 values", NULL);
    unsetenv("N_DB_BIND_IP");
    bson_free(many);
    /* A newline in a value stays in one line of message. */
    expect_error(ARGV("--db-port", "1\n2"), "got '1\\x0A2'", NULL);
}
END_TEST

START_TEST(integer_ranges_keep_2_0_6_values)
{
    argv_t a = ARGV("--db-port", "1", "--process-pool", "100000", "--script-timeout", "0", "--dl-epochs", "0",
                    "--dl-batch-size", "1", "2147483647", "--db-cursor-timeout", "1", "--db-start-timeout",
                    "2147483", "--db-replica-max-staleness", "90", "--db-replica-read-preference", "nearest");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    nem_config_destroy(cfg);
    free_argv(&a);
    expect_error(ARGV("--db-port", "0"), "--db-port must be 1-65535", NULL);
    expect_error(ARGV("--process-pool", "100001"), "--process-pool must be <= 100000, got 100001", NULL);
    expect_error(ARGV("--script-timeout=-1"), "--script-timeout must be >= 0, got -1", NULL);
    expect_error(ARGV("--dl-batch-size", "4", "0"), "--dl-batch-size must be >= 1, got 0", NULL);
    expect_error(ARGV("--db-batch-size", "0"), "--db-batch-size must be >= 1", NULL);
    expect_error(ARGV("--db-start-timeout", "2147484"), "--db-start-timeout must be <= 2147483", NULL);
    expect_error(ARGV("--db-stop-timeout", "0"), "--db-stop-timeout must be >= 1", NULL);
    expect_error(ARGV("--dl-epochs", "99999999999999999999"), "--dl-epochs expects an integer", NULL);
}
END_TEST

START_TEST(password_files_must_be_small_regular_files)
{
    ck_assert_int_eq(mkfifo("pwfifo", 0600), 0);
    argv_t a = ARGV("--db-password-file", "pwfifo");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert(!nem_config_resolve_password(cfg, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "cli: cannot read --db-password-file 'pwfifo': it is a FIFO"));
    nem_config_destroy(cfg);
    free_argv(&a);

    static const struct { const char *text; size_t len; const char *want; } cases[] = {
        {"", 0, "is empty"},
        {"\nsecret\n", 8, "has an empty first line"},
        {"se\0cret\n", 8, "holds a NUL byte"},
        {"caf\xE9\n", 5, "is not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen("pw", "w");
        fwrite(cases[i].text, 1, cases[i].len, f);
        fclose(f);
        chmod("pw", 0600);
        a = ARGV("--db-password-file", "pw");
        cfg = resolve(&a, &err);
        ck_assert_msg(cfg != NULL, "%s", err.message);
        ck_assert(!nem_config_resolve_password(cfg, &err));
        ck_assert_msg(strstr(err.message, cases[i].want), "'%s' not in '%s'", cases[i].want, err.message);
        nem_config_destroy(cfg);
        free_argv(&a);
    }
    /* CRLF: the \r is no part of the password. Exactly the size limit is fine, one byte more is not. */
    char *text = bson_malloc0(NEM_PASSWORD_FILE_MAX + 2);
    memset(text, 'p', NEM_PASSWORD_FILE_MAX);
    memcpy(text, "s3cret\r\n", 8);
    bson_free(write_file("pw", text));
    chmod("pw", 0600);
    a = ARGV("--db-password-file", "pw");
    cfg = resolve(&a, &err);
    ck_assert(nem_config_resolve_password(cfg, &err));
    ck_assert_str_eq(cfg->password, "s3cret");
    nem_config_destroy(cfg);
    text[NEM_PASSWORD_FILE_MAX] = 'p';
    bson_free(write_file("pw", text));
    cfg = resolve(&a, &err);
    ck_assert(!nem_config_resolve_password(cfg, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "it is larger than 4096 bytes"));
    nem_config_destroy(cfg);
    free_argv(&a);
    bson_free(text);
    /* Both a literal password and a file: refused, not silently one of them. */
    expect_error(ARGV("--db-password", "x", "--db-password-file", "pw"), "--db-password gives a password", NULL);
}
END_TEST

START_TEST(tls_files_must_be_regular_non_empty_files)
{
    ck_assert_int_eq(mkfifo("ca.pem", 0600), 0);
    bson_free(write_file("empty.pem", ""));
    bson_free(write_file("ok.pem", "-----BEGIN CERTIFICATE-----\n"));
    static const struct { const char *opt, *path, *want; } cases[] = {
        {"--db-tls-ca-file", "ca.pem", "cli: cannot read --db-tls-ca-file 'ca.pem': it is a FIFO"},
        {"--db-tls-certificate-key-file", "/dev/zero", "'/dev/zero': it is a character device"},
        {"--db-tls-crl-file", "empty.pem", "cli: --db-tls-crl-file 'empty.pem' is empty"},
        {"--db-tls-ca-file", "nope.pem", "cannot read --db-tls-ca-file 'nope.pem': No such file or directory"},
        {"--db-tls-ca-file", "ok.pem", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        argv_t a = ARGV(cases[i].opt, cases[i].path);
        bson_error_t err;
        nem_config_t *cfg = resolve(&a, &err);
        ck_assert_msg(cfg != NULL, "%s", err.message);
        bool ok = nem_config_check_files(cfg, &err);
        ck_assert_int_eq(ok, cases[i].want == NULL);
        if (cases[i].want)
            ck_assert_msg(strstr(err.message, cases[i].want), "'%s' not in '%s'", cases[i].want, err.message);
        nem_config_destroy(cfg);
        free_argv(&a);
    }
}
END_TEST

START_TEST(fs_reads_regular_files_up_to_a_limit)
{
    char *buf = NULL;
    size_t len = 0;
    bson_error_t err;
    bson_free(write_file("ten", "0123456789"));
    ck_assert(nem_read_regular_file("ten", 10, "test file", &buf, &len, &err));
    ck_assert_uint_eq(len, 10);
    ck_assert_str_eq(buf, "0123456789");
    bson_free(buf);
    ck_assert(!nem_read_regular_file("ten", 9, "test file", &buf, &len, &err));
    ck_assert_str_eq(err.message, "cannot read test file 'ten': it is larger than 9 bytes (10 bytes)");
    ck_assert(!nem_read_regular_file(".", 0, "test file", &buf, &len, &err));
    ck_assert_str_eq(err.message, "cannot read test file '.': it is a directory, not a regular file");
    ck_assert(!nem_read_regular_file("", 0, "test file", &buf, &len, &err));
    ck_assert_str_eq(nem_file_kind(S_IFIFO), "a FIFO");
    ck_assert_str_eq(nem_file_kind(S_IFSOCK), "a socket");
}
END_TEST

/* The one table from an error's domain and code to the exit status (util/errors.h), and the domain and code a
 * bad config value gets. */
START_TEST(exit_status_comes_from_domain_and_code)
{
    static const struct { uint32_t domain, code; int status; } cases[] = {
        {NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, 2},       {NEM_ERROR_CONFIG, NEM_CONFIG_EINTR, 130},
        {NEM_ERROR_STORE, NEM_STORE_ECONNECT, 3},       {NEM_ERROR_SERVE, NEM_SERVE_EFAILED, 3},
        {NEM_ERROR_RUNNER, NEM_RUNNER_EINCOMPLETE, 4},  {NEM_ERROR_PROVENANCE, NEM_PROVENANCE_ELIVE, 2},
        {NEM_ERROR_PROVENANCE, NEM_PROVENANCE_ENORUN, 2}, {NEM_ERROR_PROVENANCE, NEM_PROVENANCE_EBLOB, 3},
        {NEM_ERROR_SIGNAL, 15, 143},                    {NEM_ERROR_SUMMARY, NEM_SUMMARY_EWRITE, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bson_error_t e = {.domain = cases[i].domain, .code = cases[i].code};
        ck_assert_msg(nem_exit_status(&e) == cases[i].status, "domain %u code %u: %d, want %d", cases[i].domain,
                      cases[i].code, nem_exit_status(&e), cases[i].status);
    }
    nem_config_t *cfg = nem_config_new();
    bson_error_t err = {0};
    ck_assert(!nem_config_set_text(cfg, NEM_OPT_DB_PORT, "many", NEM_SRC_CLI, "cli", &err) ||
              !nem_config_validate(cfg, &err));
    ck_assert_uint_eq(err.domain, NEM_ERROR_CONFIG);
    ck_assert_msg(err.code == NEM_CONFIG_EVALUE || err.code == NEM_CONFIG_EUSAGE, "code %u: %s", err.code, err.message);
    nem_config_destroy(cfg);
}
END_TEST

/* Table-driven checks: the rule column and the flags of options.def, read by check.c, config.c and cli.c. */

/* A configuration holding one value of one option, as the command line would give it. */
static nem_config_t *one_value(nem_opt_id_t id, const char *text)
{
    nem_config_t *cfg = nem_config_new();
    bson_error_t err;
    ck_assert_msg(nem_config_set_text(cfg, id, text, NEM_SRC_CLI, "cli", &err), "%s", err.message);
    return cfg;
}

/* ~ is expanded in one place: $HOME, else the password database's home; ~user and inner ~ stay as written. */
START_TEST(tilde_expands_to_home_even_without_HOME)
{
    char *old = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    struct passwd *pw = getpwuid(getuid());
    nem_config_t *cfg = one_value(NEM_OPT_DB_PATH, "~/db");
    setenv("HOME", "/home/tester", 1);
    char *p = nem_cfg_path(cfg, NEM_OPT_DB_PATH, 0);
    ck_assert_str_eq(p, "/home/tester/db");
    bson_free(p);
    unsetenv("HOME");
    p = nem_cfg_path(cfg, NEM_OPT_DB_PATH, 0);
    ck_assert_ptr_nonnull(pw);
    char *want = bson_strdup_printf("%s/db", pw->pw_dir);
    ck_assert_str_eq(p, want);
    bson_free(want);
    bson_free(p);
    nem_config_destroy(cfg);
    cfg = one_value(NEM_OPT_DB_PATH, "~other/db");
    p = nem_cfg_path(cfg, NEM_OPT_DB_PATH, 0);
    ck_assert_str_eq(p, "~other/db");
    bson_free(p);
    nem_config_destroy(cfg);
    if (old)
        setenv("HOME", old, 1);
    free(old);
}
END_TEST

/* Runs check on one value of one option: NULL when accepted, else the message (static). */
static const char *refusal(bool (*check)(const nem_config_t *, bson_error_t *), nem_opt_id_t id, const char *text)
{
    static bson_error_t err;
    nem_config_t *cfg = one_value(id, text);
    bool ok = check(cfg, &err);
    nem_config_destroy(cfg);
    return ok ? NULL : err.message;
}

/* What --print-config writes for cfg; caller frees. */
static char *printed(const nem_config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nem_config_print(cfg, f);
    fclose(f);
    return buf;
}

static const char *range_refusal(nem_opt_id_t id, int64_t v)
{
    char text[32];
    snprintf(text, sizeof text, "%" PRId64, v);
    return refusal(nem_config_check_ranges, id, text);
}

START_TEST(integer_ranges_are_read_from_the_table)
{
    int ranged = 0;
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_range_t *r = &nem_options[i].range;
        const char *why;
        /* Every integer option has a range; nothing else has one. */
        ck_assert_msg(r->set == (nem_options[i].type == NEM_T_INT), "--%s: range set %d", nem_options[i].name, r->set);
        if (!r->set)
            continue;
        ranged++;
        ck_assert_msg(r->min <= r->max, "--%s: min > max", nem_options[i].name);
        why = range_refusal((nem_opt_id_t)i, r->min);
        ck_assert_msg(!why, "--%s: min refused: %s", nem_options[i].name, why);
        why = range_refusal((nem_opt_id_t)i, r->max);
        ck_assert_msg(!why, "--%s: max refused: %s", nem_options[i].name, why);
        if (!r->has_off || r->off != r->min - 1) {
            why = range_refusal((nem_opt_id_t)i, r->min - 1);
            ck_assert_msg(why && strstr(why, nem_options[i].name), "--%s: min - 1 accepted", nem_options[i].name);
        }
        if (r->max < INT64_MAX) {
            why = range_refusal((nem_opt_id_t)i, r->max + 1);
            ck_assert_msg(why && strstr(why, nem_options[i].name), "--%s: max + 1 accepted", nem_options[i].name);
        }
        if (r->has_off)
            ck_assert_msg(!(why = range_refusal((nem_opt_id_t)i, r->off)), "--%s off refused", nem_options[i].name);
    }
    ck_assert_int_ge(ranged, 12);
    /* The bounds the catalogue pins, each form of message, and every value of a list. */
    ck_assert_int_eq(nem_options[NEM_OPT_HEARTBEAT].range.min, 1);
    ck_assert_int_eq(nem_options[NEM_OPT_HEARTBEAT].range.max, 86400);
    ck_assert_str_eq(range_refusal(NEM_OPT_HEARTBEAT, 86401), "cli: option --heartbeat must be <= 86400, got 86401");
    ck_assert_str_eq(range_refusal(NEM_OPT_HEARTBEAT, 0), "cli: option --heartbeat must be >= 1, got 0");
    ck_assert_str_eq(range_refusal(NEM_OPT_DB_PORT, 65536), "cli: option --db-port must be 1-65535, got 65536");
    ck_assert_str_eq(range_refusal(NEM_OPT_DB_REPLICA_MAX_STALENESS, 89),
                     "cli: option --db-replica-max-staleness must be -1 (none) or at least 90 seconds, got 89");
    ck_assert_ptr_null(range_refusal(NEM_OPT_DB_REPLICA_MAX_STALENESS, -1));
    ck_assert_str_eq(refusal(nem_config_check_ranges, NEM_OPT_DL_EPOCHS, "3 2 -1"),
                     "cli: option --dl-epochs must be >= 0, got -1");
}
END_TEST

START_TEST(choices_are_read_from_the_table)
{
    static const char *const want[] = {"error", "warn", "info", "debug", NULL};
    char text[256];
    for (size_t k = 0; want[k]; k++)
        ck_assert_str_eq(nem_options[NEM_OPT_LOG_LEVEL].choices[k], want[k]);
    ck_assert_ptr_null(nem_options[NEM_OPT_LOG_LEVEL].choices[4]);
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_option_t *o = &nem_options[i];
        if (!o->choices)
            continue;
        /* Every choice is accepted (the default is one of them), any other word is refused naming them all. */
        if (o->defval)
            ck_assert_msg(nem_option_choice((nem_opt_id_t)i, o->defval) >= 0, "--%s: default not a choice", o->name);
        for (int k = 0; o->choices[k]; k++) {
            ck_assert_int_eq(nem_option_choice((nem_opt_id_t)i, o->choices[k]), k);
            ck_assert_ptr_null(refusal(nem_config_check_choices, (nem_opt_id_t)i, o->choices[k]));
        }
        const char *why = refusal(nem_config_check_choices, (nem_opt_id_t)i, "no-such-choice");
        ck_assert_msg(why != NULL, "--%s accepts an unlisted value", o->name);
        char *msg = bson_strdup_printf("cli: option --%s must be one of %s, got 'no-such-choice'", o->name,
                                       nem_option_choices_text((nem_opt_id_t)i, text, sizeof text));
        ck_assert_str_eq(why, msg);
        bson_free(msg);
    }
    ck_assert_str_eq(refusal(nem_config_check_choices, NEM_OPT_DB_ENGINE, "postgres"),
                     "cli: option --db-engine must be one of auto, mongod, ferretdb, got 'postgres'");
    /* Exact, unless the row says any case (libmongoc's mechanism names). */
    ck_assert_ptr_nonnull(refusal(nem_config_check_choices, NEM_OPT_LOG_LEVEL, "INFO"));
    ck_assert_ptr_null(refusal(nem_config_check_choices, NEM_OPT_DB_AUTHENTICATION, "scram-sha-256"));
    ck_assert_ptr_nonnull(refusal(nem_config_check_choices, NEM_OPT_DB_AUTHENTICATION, "MAGIC"));
    ck_assert_int_eq(nem_option_choice(NEM_OPT_DB_NAME, "nemesyst"), -1);
    ck_assert_str_eq(nem_option_choices_text(NEM_OPT_DB_NAME, text, sizeof text), "");
    /* Through the resolver too. */
    expect_error(ARGV("--log-level", "loud"),
                 "cli: option --log-level must be one of error, warn, info, debug, got 'loud'", NULL);
}
END_TEST

START_TEST(script_flag_makes_the_scripts_of_a_running_stage_exist)
{
    static const nem_opt_id_t scripts[] = {NEM_OPT_DATA_CLEANER, NEM_OPT_DL_LEARNER, NEM_OPT_I_PREDICTOR};
    size_t n = 0;
    bson_free(write_file("ok.py", "pass\n"));
    ck_assert_int_eq(mkdir("dir.py", 0700), 0);
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_option_t *o = &nem_options[i];
        if (!(o->flags & NEM_F_SCRIPT))
            continue;
        ck_assert_msg(n < 3 && scripts[n] == (nem_opt_id_t)i, "--%s is a script option", o->name);
        n++;
        ck_assert_msg(nem_options[o->stage].type == NEM_T_BOOL, "--%s: its stage switch is not a boolean", o->name);
        ck_assert_int_eq(nem_options[o->stage].group, o->group);
        bson_error_t err;
        nem_config_t *cfg = one_value((nem_opt_id_t)i, "/no/such/script.py");
        /* A stage that does not run needs nothing of its scripts. */
        ck_assert_msg(nem_config_check_scripts(cfg, &err), "%s", err.message);
        ck_assert(nem_config_set_text(cfg, o->stage, "true", NEM_SRC_CLI, "cli", &err));
        ck_assert(!nem_config_check_scripts(cfg, &err));
        char *want = bson_strdup_printf("cli: --%s script '/no/such/script.py' does not exist", o->name);
        ck_assert_msg(strstr(err.message, want), "'%s' not in '%s'", want, err.message);
        bson_free(want);
        ck_assert(nem_config_set_text(cfg, (nem_opt_id_t)i, "ok.py dir.py", NEM_SRC_CLI, "cli", &err));
        ck_assert(!nem_config_check_scripts(cfg, &err));
        ck_assert_ptr_nonnull(strstr(err.message, "script 'dir.py' is a directory, not a regular file"));
        ck_assert(nem_config_set_text(cfg, (nem_opt_id_t)i, "ok.py", NEM_SRC_CLI, "cli", &err));
        ck_assert_msg(nem_config_check_scripts(cfg, &err), "%s", err.message);
        nem_config_destroy(cfg);
        /* The stage on and no script at all. */
        cfg = one_value(o->stage, "true");
        ck_assert(!nem_config_check_scripts(cfg, &err));
        want = bson_strdup_printf("cli: --%s is given but no --%s script", nem_options[o->stage].name, o->name);
        ck_assert_str_eq(err.message, want);
        bson_free(want);
        nem_config_destroy(cfg);
    }
    ck_assert_uint_eq(n, 3);
}
END_TEST

START_TEST(secret_flag_scrubs_masks_and_withholds_every_secret)
{
    int secrets = 0;
    for (int i = 0; i < NEM_OPT__COUNT; i++) {
        const nem_option_t *o = &nem_options[i];
        if (!(o->flags & NEM_F_SECRET))
            continue;
        secrets++;
        char *opt = bson_strdup_printf("--%s", o->name);
        argv_t a = ARGV(opt, "s3cr3t-value", "--db-name", "x");
        bson_error_t err;
        nem_config_t *cfg = resolve(&a, &err);
        ck_assert_msg(cfg != NULL, "%s", err.message);
        ck_assert_str_eq(nem_cfg_str(cfg, (nem_opt_id_t)i, 0), "s3cr3t-value");
        ck_assert_msg(strcmp(a.argv[2], "xxxxxxxxxxxx") == 0, "%s left '%s' in argv", opt, a.argv[2]);
        char *buf = printed(cfg);
        ck_assert_msg(!strstr(buf, "s3cr3t"), "--print-config shows %s", opt);
        char *want = bson_strdup_printf("\n%-38s ********  # cli\n", o->name);
        ck_assert_msg(strstr(buf, want), "--print-config does not mask %s", opt);
        bson_free(want);
        free(buf);
        bson_t pub, scripts, priv;
        nem_config_to_bson(cfg, false, &pub);
        nem_config_to_bson_for_scripts(cfg, 2, &scripts);
        nem_config_to_bson(cfg, true, &priv);
        ck_assert_msg(!bson_has_field(&pub, o->name), "%s in the public BSON", opt);
        ck_assert_msg(!bson_has_field(&scripts, o->name), "%s in the scripts' BSON", opt);
        ck_assert_msg(bson_has_field(&priv, o->name), "%s not broadcast", opt);
        bson_destroy(&pub);
        bson_destroy(&scripts);
        bson_destroy(&priv);
        nem_config_destroy(cfg);
        free_argv(&a);
        /* The generic scrubber the other ranks run. */
        a = ARGV("--db-name", "x", opt, "s3cr3t-value");
        nem_config_scrub_argv(a.argc, a.argv);
        ck_assert_str_eq(a.argv[2], "x");
        ck_assert_str_eq(a.argv[4], "xxxxxxxxxxxx");
        free_argv(&a);
        bson_free(opt);
    }
    ck_assert_int_ge(secrets, 2);
    /* NEM_F_PROMPT: alone it means "ask"; true/false are shown as given; an empty value means none. */
    ck_assert(nem_options[NEM_OPT_DB_PASSWORD].flags & NEM_F_PROMPT);
    ck_assert(!(nem_options[NEM_OPT_DB_TLS_CERTIFICATE_KEY_FILE_PASSWORD].flags & NEM_F_PROMPT));
    argv_t a = ARGV("--db-password");
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_PASSWORD, 0), "true");
    char *buf = printed(cfg);
    ck_assert_ptr_nonnull(strstr(buf, "db-password                            true  # cli"));
    free(buf);
    nem_config_destroy(cfg);
    free_argv(&a);
    a = ARGV("--db-password=");
    cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    nem_config_destroy(cfg);
    free_argv(&a);
    /* 2.0.6 reads an empty key-file password as none (NEM_F_EMPTY_NONE), as for every option it tests with "if". */
    a = ARGV("--db-tls-certificate-key-file-password=");
    cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert(!nem_cfg_is_set(cfg, NEM_OPT_DB_TLS_CERTIFICATE_KEY_FILE_PASSWORD));
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

/* 2.0.6 tests these options with "if value": empty means none, at any level, and wins over lower levels. An empty
 * --db-authentication is how 2.0.6 reaches a server without authentication, whatever the user name. */
START_TEST(empty_value_means_none_where_2_0_6_reads_it_so)
{
    static const nem_opt_id_t none_if_empty[] = {
        NEM_OPT_DB_AUTHENTICATION, NEM_OPT_DB_USER_NAME, NEM_OPT_DB_AUTHENTICATION_DATABASE,
        NEM_OPT_DB_REPLICA_SET_NAME, NEM_OPT_DB_TLS_CA_FILE, NEM_OPT_DB_TLS_CERTIFICATE_KEY_FILE,
        NEM_OPT_DB_TLS_CERTIFICATE_KEY_FILE_PASSWORD, NEM_OPT_DB_TLS_CRL_FILE, NEM_OPT_DB_CONFIG_PATH,
        NEM_OPT_DB_PIPELINE};
    for (size_t k = 0; k < sizeof none_if_empty / sizeof *none_if_empty; k++) {
        nem_opt_id_t id = none_if_empty[k];
        char *opt = bson_strdup_printf("--%s=", nem_options[id].name);
        argv_t a = ARGV(opt);
        bson_error_t err;
        nem_config_t *cfg = resolve(&a, &err);
        ck_assert_msg(cfg != NULL, "%s: %s", opt, err.message);
        if (id == NEM_OPT_DB_AUTHENTICATION)
            ck_assert_str_eq(nem_cfg_str(cfg, id, 0), "");
        else
            ck_assert_msg(!nem_cfg_is_set(cfg, id), "%s left a value", opt);
        nem_config_destroy(cfg);
        free_argv(&a);
        bson_free(opt);
    }
    /* An empty value in the environment overrides a config file's; a config file may give one ("key ="). */
    char *conf = write_file("a.conf", "db-user-name = alice\ndb-authentication = SCRAM-SHA-256\n");
    setenv("N_DB_USER_NAME", "", 1);
    argv_t a = ARGV("-c", conf);
    bson_error_t err;
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert(!nem_cfg_is_set(cfg, NEM_OPT_DB_USER_NAME));
    ck_assert(!nem_cfg_auth_off(cfg));
    char *buf = printed(cfg);
    ck_assert_ptr_nonnull(strstr(buf, "db-user-name                           (none: given empty)  # env N_DB_USER_NAME"));
    free(buf);
    nem_config_destroy(cfg);
    free_argv(&a);
    unsetenv("N_DB_USER_NAME");
    bson_free(conf);
    conf = write_file("b.conf", "db-user-name = alice\ndb-authentication =\n");
    a = ARGV("-c", conf);
    cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert(nem_cfg_auth_off(cfg));
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_USER_NAME, 0), "alice");
    nem_config_destroy(cfg);
    free_argv(&a);
    bson_free(conf);
    /* Options 2.0.6 never reads as none keep refusing an empty value, and a bare key still needs one. */
    expect_error(ARGV("--db-user-role="), "option --db-user-role: value is empty", NULL);
    conf = write_file("c.conf", "db-authentication\n");
    expect_error(ARGV("-c", conf), "option 'db-authentication' needs a value", NULL);
    bson_free(conf);
}
END_TEST

/* argparse's rule: an option that takes a value never takes the next option as its value. */
START_TEST(an_option_never_swallows_the_next_option)
{
    expect_error(ARGV("--db-name", "--data-clean"),
                 "option --db-name expected one argument, got the option '--data-clean'", "--db-name=--data-clean");
    expect_error(ARGV("-c", "-d"), "option --config expected one argument, got the option '-d'", NULL);
    expect_error(ARGV("--data-collection", "--dl-learn"), "option --data-collection expected one argument", NULL);
    /* a secret's value is never repeated in the message */
    bson_error_t err = {0};
    argv_t a = ARGV("--db-tls-certificate-key-file-password", "-hunter2");
    nem_config_t *cfg = resolve(&a, &err);
    ck_assert_ptr_null(cfg);
    ck_assert_ptr_null(strstr(err.message, "hunter2"));
    ck_assert_ptr_nonnull(strstr(err.message, "expected one argument"));
    free_argv(&a);
    /* "--opt=-value", negative numbers and a lone "-" are values */
    a = ARGV("--db-name=--odd", "--db-replica-max-staleness", "-1", "--data-collection", "a", "b");
    cfg = resolve(&a, &err);
    ck_assert_msg(cfg != NULL, "%s", err.message);
    ck_assert_str_eq(nem_cfg_str(cfg, NEM_OPT_DB_NAME, 0), "--odd");
    ck_assert_int_eq(nem_cfg_int(cfg, NEM_OPT_DB_REPLICA_MAX_STALENESS, 0), -1);
    nem_config_destroy(cfg);
    free_argv(&a);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *t = tcase_create("options");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, every_2_0_6_option_is_in_the_table_with_its_short_name);
    tcase_add_test(t, exit_status_comes_from_domain_and_code);
    tcase_add_test(t, defaults_match_2_0_6);
    tcase_add_test(t, tilde_expands_to_home_even_without_HOME);
    tcase_add_test(t, env_names_are_N_plus_upper_snake_case);
    tcase_add_test(t, cli_beats_env_beats_file_beats_default);
    tcase_add_test(t, config_file_accepts_every_configargparse_line_form);
    tcase_add_test(t, list_shorter_than_scripts_repeats_its_last_value);
    tcase_add_test(t, later_config_files_win_and_a_file_is_read_once);
    tcase_add_test(t, default_config_dirs_are_read_and_cli_files_win);
    tcase_add_test(t, env_lists_and_booleans_parse);
    tcase_add_test(t, short_flags_and_bool_values_on_the_cli);
    tcase_add_test(t, password_on_the_cli_is_scrubbed_from_argv);
    tcase_add_test(t, bare_db_password_before_another_option_means_prompt);
    tcase_add_test(t, password_file_is_read_and_loose_modes_refused);
    tcase_add_test(t, env_password_is_used);
    tcase_add_test(t, unknown_option_suggests_the_closest);
    tcase_add_test(t, missing_value_names_the_option);
    tcase_add_test(t, wrong_type_names_option_and_value);
    tcase_add_test(t, unexpected_positional_argument_is_refused);
    tcase_add_test(t, bad_config_lines_are_given_as_file_and_line);
    tcase_add_test(t, env_value_errors_name_the_variable);
    tcase_add_test(t, unreadable_config_file_is_named);
    tcase_add_test(t, bson_round_trip_keeps_values_and_drops_secrets_unless_asked);
    tcase_add_test(t, pipelines_parse_inline_and_from_files);
    tcase_add_test(t, print_config_masks_secrets_and_shows_sources);
    tcase_add_test(t, bool_option_takes_a_following_boolean_word);
    tcase_add_test(t, unknown_env_variables_are_found_with_a_suggestion);
    tcase_add_test(t, check_and_python_are_options_of_the_table);
    tcase_add_test(t, script_args_pad_per_script_lists_by_repeating_the_last_value);
    tcase_add_test(t, sweep_set_is_the_highest_layer_and_names_its_line);
    tcase_add_test(t, sweep_index_comes_from_slurm_array_task_id);
    tcase_add_test(t, bad_sweeps_name_the_file_and_line);
    suite_add_tcase(s, t);
    TCase *r = tcase_create("robustness");
    tcase_add_checked_fixture(r, setup, teardown);
    tcase_set_timeout(r, 30);
    tcase_add_test(r, include_depth_is_bounded);
    tcase_add_test(r, include_loops_read_each_file_once);
    tcase_add_test(r, special_files_are_refused_without_blocking);
    tcase_add_test(r, config_files_are_bounded_in_size);
    tcase_add_test(r, config_files_accept_a_bom_and_crlf);
    tcase_add_test(r, binary_and_invalid_utf8_config_files_name_the_line);
    tcase_add_test(r, utf8_validation_is_strict);
    tcase_add_test(r, mongodb_database_names);
    tcase_add_test(r, mongodb_collection_and_bucket_names);
    tcase_add_test(r, values_are_bounded_and_utf8);
    tcase_add_test(r, integer_ranges_keep_2_0_6_values);
    tcase_add_test(r, password_files_must_be_small_regular_files);
    tcase_add_test(r, tls_files_must_be_regular_non_empty_files);
    tcase_add_test(r, fs_reads_regular_files_up_to_a_limit);
    tcase_add_test(r, integer_ranges_are_read_from_the_table);
    tcase_add_test(r, choices_are_read_from_the_table);
    tcase_add_test(r, script_flag_makes_the_scripts_of_a_running_stage_exist);
    tcase_add_test(r, secret_flag_scrubs_masks_and_withholds_every_secret);
    tcase_add_test(r, empty_value_means_none_where_2_0_6_reads_it_so);
    tcase_add_test(r, an_option_never_swallows_the_next_option);
    suite_add_tcase(s, r);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(config_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
