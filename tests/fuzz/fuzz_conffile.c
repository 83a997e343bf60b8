/* libFuzzer target: the config-file parser (src/config/conffile.c). The input is a config file's text; it goes
 * through nem_config_parse_text (as text) and nem_config_parse_file (through a temporary file, which takes the
 * byte order mark, NUL and size checks of the file path), each on top of the options' defaults as
 * nem_config_resolve layers them. Whatever the text sets is then validated, printed and turned into BSON, as a run
 * would.
 * Built and run by tests/fuzz/run.sh. No crash, no leak, no undefined behaviour. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char tmpdir[64], tmpfile_path[96];
static FILE *devnull;

static void cleanup(void)
{
    if (*tmpfile_path)
        unlink(tmpfile_path);
    if (*tmpdir)
        rmdir(tmpdir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* Relative to the working directory (run.sh runs the target in a scratch directory). */
    snprintf(tmpdir, sizeof tmpdir, "fuzz-conffile-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("fuzz_conffile: mkdtemp");
        abort();
    }
    snprintf(tmpfile_path, sizeof tmpfile_path, "%s/input.conf", tmpdir);
    devnull = fopen("/dev/null", "w");
    if (!devnull)
        abort();
    atexit(cleanup);
    return 0;
}

/* A configuration holding every option's default, as nem_config_resolve starts from. */
static nem_config_t *with_defaults(void)
{
    nem_config_t *cfg = nem_config_new();
    bson_error_t err;
    for (int i = 0; i < NEM_OPT__COUNT; i++)
        if (nem_options[i].defval &&
            !nem_config_set_text(cfg, (nem_opt_id_t)i, nem_options[i].defval, NEM_SRC_DEFAULT, "default", &err)) {
            fprintf(stderr, "fuzz_conffile: default of --%s refused: %s\n", nem_options[i].name, err.message);
            abort();
        }
    return cfg;
}

/* What a run does with a parsed configuration (short of touching the files it names or prompting). */
static void use(nem_config_t *cfg)
{
    bson_error_t err;
    bson_t doc;
    if (!nem_config_validate(cfg, &err) && err.message[0] == '\0')
        abort(); /* a refusal always says why */
    nem_config_print(cfg, devnull);
    nem_config_to_bson(cfg, false, &doc);
    nem_config_t *back = nem_config_new();
    nem_config_from_bson(back, &doc, &err);
    nem_config_destroy(back);
    bson_destroy(&doc);
    nem_config_to_bson_for_scripts(cfg, 3, &doc);
    bson_destroy(&doc);
    for (int i = 0; i < NEM_OPT__COUNT; i++)
        for (size_t k = 0; k < nem_cfg_count(cfg, (nem_opt_id_t)i) + 1; k++)
            (void)nem_cfg_str(cfg, (nem_opt_id_t)i, k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bson_error_t err;
    if (size > NEM_CONFIG_FILE_MAX + 16)
        return 0;

    /* As text: the parser sees a C string, so the text ends at a NUL. */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    nem_config_t *cfg = with_defaults();
    memset(&err, 0, sizeof err);
    if (nem_config_parse_text(cfg, text, "fuzz.conf", &err))
        use(cfg);
    else if (err.message[0] == '\0')
        abort();
    nem_config_destroy(cfg);
    free(text);

    /* As a file: every byte, NULs and byte order mark included. */
    FILE *f = fopen(tmpfile_path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror("fuzz_conffile: writing the input file");
        abort();
    }
    cfg = with_defaults();
    memset(&err, 0, sizeof err);
    if (!nem_config_parse_file(cfg, tmpfile_path, &err) && err.message[0] == '\0')
        abort(); /* what parses is what the text gave: use() saw it */
    nem_config_destroy(cfg);
    return 0;
}
