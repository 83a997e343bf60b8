/* libFuzzer target: pipeline options (--dl-data-pipeline and --dl-input-model-pipeline) as text, through
 * nem_config_set_text, nem_cfg_json and nem_pipeline_option (src/config/config.c, src/config/pipeline.c), and the
 * pipeline as provenance JSON (nem_provenance_pipeline_json, src/provenance/provenance.c). Built and run by
 * tests/fuzz/run.sh.
 *
 * Input: one header byte, then the option's value.
 *   byte 0   & 1: the value given inline (0), or as the path of a file that holds it (1: every byte, NULs
 *            included); & 2: --dl-input-model-pipeline instead of --dl-data-pipeline
 * Checks: no crash, leak or undefined behaviour; a failure always has a message; the provenance JSON of every
 * pipeline that parses reads back (bson_new_from_json, as its header promises) into the same pipeline (a stage named
 * like an extended-JSON type wrapper, which could not, is refused by nem_pipeline_option). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "provenance/provenance.h"
#include "config/pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char tmpdir[64], tmpfile_path[96];

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
    snprintf(tmpdir, sizeof tmpdir, "fuzz-pipeline-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("fuzz_pipeline: mkdtemp");
        abort();
    }
    snprintf(tmpfile_path, sizeof tmpfile_path, "%s/pipeline.json", tmpdir);
    atexit(cleanup);
    return 0;
}

static void check_provenance(const bson_t *pipeline, bool exact)
{
    char *json = nem_provenance_pipeline_json(pipeline);
    bson_error_t jerr;
    if (!json)
        abort();
    bson_t *back = bson_new_from_json((const uint8_t *)json, -1, &jerr);
    if (!back && exact) {
        fprintf(stderr, "fuzz_pipeline: provenance JSON does not read back: %s\n  %s\n", jerr.message, json);
        abort();
    }
    if (exact && !bson_equal(back, pipeline)) {
        char *orig = bson_as_canonical_extended_json(pipeline, NULL);
        fprintf(stderr, "fuzz_pipeline: provenance JSON reads back as another pipeline\n  was  %s\n  json %s\n",
                orig ? orig : "(none)", json);
        bson_free(orig);
        abort();
    }
    if (back)
        bson_destroy(back);
    bson_free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > NEM_JSON_VALUE_MAX)
        return 0;
    bool via_file = data[0] & 1;
    nem_opt_id_t id = data[0] & 2 ? NEM_OPT_DL_INPUT_MODEL_PIPELINE : NEM_OPT_DL_DATA_PIPELINE;
    const uint8_t *val = data + 1;
    size_t n = size - 1;
    char *text;

    if (via_file) {
        FILE *f = fopen(tmpfile_path, "wb");
        if (!f || (n && fwrite(val, 1, n, f) != n) || fclose(f) != 0) {
            perror("fuzz_pipeline: writing the input file");
            abort();
        }
        text = strdup(tmpfile_path);
    } else {
        text = malloc(n + 1); /* an option value is a C string: it ends at a NUL */
        memcpy(text, val, n);
        text[n] = '\0';
    }

    nem_config_t *cfg = nem_config_new();
    bson_error_t err;
    memset(&err, 0, sizeof err);
    if (nem_config_set_text(cfg, id, text, NEM_SRC_FILE, "fuzz.conf:1", &err)) {
        /* One past the end too: lists index with repeat-last semantics. */
        for (size_t idx = 0; idx <= nem_cfg_count(cfg, id); idx++) {
            bson_t pipeline;
            memset(&err, 0, sizeof err);
            if (nem_pipeline_option(cfg, id, idx, &pipeline, &err)) {
                check_provenance(&pipeline, true); /* type-wrapper stages are refused (pipeline.c) */
                bson_destroy(&pipeline);
            } else if (err.message[0] == '\0') {
                abort();
            }
        }
    } else if (err.message[0] == '\0') {
        abort();
    }
    nem_config_destroy(cfg);
    free(text);
    return 0;
}
