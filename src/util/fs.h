/* Small file-system helpers shared across concerns. */
#ifndef NEM_UTIL_FS_H
#define NEM_UTIL_FS_H

#include <stdbool.h>

/* Removes path and everything below it, without following symbolic links. Returns false if anything stayed. */
bool nem_rmtree(const char *path);

#endif
