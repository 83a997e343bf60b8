/* libFuzzer target: pipeline options (--dl-data-pipeline and --dl-input-model-pipeline) as text, through
 * nem_config_set_text, nem_cfg_json and nem_pipeline_option (src/config/config.c, src/stage/writer.c), and the
 * pipeline as provenance JSON (nem_provenance_pipeline_json, src/provenance/provenance.c). Built and run by
 * tests/fuzz/run.sh.
 *
 * Input: one header byte, then the option's value.
 *   byte 0   & 1: the value given inline (0), or as the path of a file that holds it (1: every byte, NULs
 *            included); & 2: --dl-input-model-pipeline instead of --dl-data-pipeline
 * Checks: no crash, leak or undefined behaviour; a failure always has a message; the provenance JSON of every
 * pipeline that parses reads back (bson_new_from_json, as its header promises) into the same pipeline, except for
 * an object shaped like an extended-JSON type wrapper (see wrapped_wrapper). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "provenance/provenance.h"
#include "stage/writer.h"

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

/* Extended JSON has no escape for a document shaped like one of its type wrappers: {"$oid": "..."} reads back as
 * an ObjectId wherever a value is expected. nem_pipeline_option makes an object given at the top (where libbson
 * reads it as a plain document) the pipeline's first element, so such an object cannot come back from the JSON;
 * none of them is a stage MongoDB runs. Keys libbson's JSON reader takes for type wrappers: */
static bool wrapper_key(const char *k)
{
    static const char *const keys[] = {"$oid", "$binary", "$type", "$date", "$regex", "$options",
                                       "$regularExpression", "$numberLong", "$numberInt", "$numberDouble",
                                       "$numberDecimal", "$minKey", "$maxKey", "$undefined", "$code", "$scope",
                                       "$timestamp", "$symbol", "$dbPointer", "$ref", "$id", "$db", "$uuid"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

/* True when the option's value is one object (not an array) with a type wrapper's key at its top. */
static bool wrapped_wrapper(const nem_config_t *cfg, nem_opt_id_t id, size_t idx)
{
    bson_t doc;
    bson_error_t err;
    bson_iter_t it;
    bool array = true, wrapper = false;
    uint32_t i = 0;
    if (!nem_cfg_json(cfg, id, idx, &doc, &err))
        return false;
    if (bson_iter_init(&it, &doc))
        while (bson_iter_next(&it)) {
            char key[16];
            const char *k;
            bson_uint32_to_string(i++, &k, key, sizeof key);
            array &= strcmp(bson_iter_key(&it), k) == 0;
            wrapper |= wrapper_key(bson_iter_key(&it));
        }
    bson_destroy(&doc);
    return !array && wrapper;
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
                check_provenance(&pipeline, !wrapped_wrapper(cfg, id, idx));
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
