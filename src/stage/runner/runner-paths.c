/* The build tree's locations, compiled into their own object so that only the helper lookup depends on them
 * (runner-kinds.c uses them only while the running program itself lives in the build tree). */
#include "stage/runner/runner-private.h"

const char *nem_runner_build_top(void)
{
    return NEM_ABS_TOP_BUILDDIR;
}

const char *nem_runner_source_top(void)
{
    return NEM_ABS_TOP_SRCDIR;
}
