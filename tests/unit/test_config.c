/* Unit suite: the option table, precedence, config files, list indexing and every bad input. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

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

START_TEST(every_seed_option_is_in_the_table_with_its_short_name)
{
    static const struct { const char *name; char s; } seed[] = {
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
    for (size_t i = 0; i < sizeof seed / sizeof seed[0]; i++) {
        int id = nem_option_find(seed[i].name);
        ck_assert_msg(id >= 0, "missing option --%s", seed[i].name);
        ck_assert_int_eq(nem_options[id].short_name, seed[i].s);
        ck_assert_msg(!(nem_options[id].flags & NEM_F_NEW), "--%s is marked new", seed[i].name);
    }
}
END_TEST

START_TEST(defaults_match_the_seed)
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
    expect_error(ARGV("--data-clean", "maybe"), "unexpected argument 'maybe'", NULL);
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

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *t = tcase_create("options");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, every_seed_option_is_in_the_table_with_its_short_name);
    tcase_add_test(t, defaults_match_the_seed);
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
    tcase_add_test(t, script_args_pad_per_script_lists_by_repeating_the_last_value);
    suite_add_tcase(s, t);
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
