/* The one table from an error's domain and code to the program's exit status. */
#include "util/errors.h"

#include "util/exitcodes.h"

int nem_exit_status(const bson_error_t *err)
{
    switch (err->domain) {
    case NEM_ERROR_CONFIG:
        return err->code == NEM_CONFIG_EINTR ? NEM_EXIT_SIGINT : NEM_EXIT_USAGE;
    case NEM_ERROR_STORE:
    case NEM_ERROR_SERVE:
        return NEM_EXIT_SERVER;
    case NEM_ERROR_SIGNAL:
        return 128 + (int)err->code;
    case NEM_ERROR_RUNNER:
        return NEM_EXIT_SCRIPTS;
    case NEM_ERROR_PROVENANCE:
        switch (err->code) {
        case NEM_PROVENANCE_ENORUN: case NEM_PROVENANCE_ESCRIPTS: case NEM_PROVENANCE_ELIVE: case NEM_PROVENANCE_ENOSTAMP:
        case NEM_PROVENANCE_ELABEL:
            return NEM_EXIT_USAGE;
        default:
            return NEM_EXIT_SERVER;
        }
    default:
        return NEM_EXIT_FAILURE;
    }
}
