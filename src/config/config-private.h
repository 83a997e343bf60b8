/* Helpers shared by the config sources (cli.c, conffile.c, env.c), resolve.c and config.c. */
#ifndef NEM_CONFIG_PRIVATE_H
#define NEM_CONFIG_PRIVATE_H

#include "config.h"

void nem_value_set(nem_value_t *v, char **items, size_t n, nem_source_t src, const char *where);
void nem_value_append(nem_value_t *v, const char *item);
/* dst becomes a copy of src (layers merged by resolve.c). */
void nem_value_copy(nem_value_t *dst, const nem_value_t *src);
/* Turns err (from util/fs, say) into a NEM_ERROR_CONFIG error with code, prefixed "where: " when where is set. */
/* Layers (resolve.c): dst takes every value layer has; empty values of NEM_F_EMPTY_NONE options become none. */
void nem_config_merge(nem_config_t *dst, const nem_config_t *layer);
void nem_config_empty_means_none(nem_config_t *cfg);
/* text as the option's BSON type (an integer, a boolean, else a string) under key. */
void nem_config_append_typed(bson_t *doc, const char *key, const nem_option_t *o, const char *text);
void nem_config_rewrap(bson_error_t *err, const char *where, uint32_t code);

#endif
