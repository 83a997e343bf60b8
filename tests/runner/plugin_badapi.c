/* A plugin that says it was built against another plugin API version: the host must refuse it before its entry
 * point runs. */
#define NEMESYST_NO_API_STAMP
#include <nemesyst.h>
#include <stdlib.h>

__attribute__((visibility("default"))) const int nemesyst_plugin_api_version = 999;

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error);

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    (void)ctx;
    (void)error;
    abort(); /* never reached */
}
