/* nemesyst_version, nemesyst_version_string: the version of this libnemesyst, which a plugin may compare with the
 * header it was built with (NEMESYST_VERSION_HEX). */
#include "plugin/plugin-private.h"

unsigned nemesyst_version(void)
{
    return NEMESYST_VERSION_HEX;
}

const char *nemesyst_version_string(void)
{
    return NEMESYST_VERSION_STRING;
}
