/* A plugin stamped as built against nemesyst 99.0, a major no nemesyst has yet: the host must refuse it, naming both
 * versions, before its entry point runs (test_runner.c, tests/badinput/scripts.tsv). The stamp is written by hand,
 * as nemesyst.h would write it for a 99.0 header; tests/stage/stage-plugin-abi.sh builds the other versions from
 * copies of the header itself. */
#define NEMESYST_NO_API_STAMP
#include <nemesyst.h>
#include <stdlib.h>

__attribute__((visibility("default"))) const nemesyst_plugin_abi_t nemesyst_plugin_abi = {99, 0};

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error);

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    (void)ctx;
    (void)error;
    abort(); /* never reached */
}
