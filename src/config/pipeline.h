/* Pipeline options: a JSON value (inline, or the path of a file holding it) checked against MongoDB's rules for an
 * aggregation pipeline, as a BSON array. */
#ifndef NEM_CONFIG_PIPELINE_H
#define NEM_CONFIG_PIPELINE_H

#include "config/config.h"

/* The pipeline option idx as a BSON array: a JSON array as is, an empty object as [], another object as [obj]. Every
 * stage must be a document with one field naming a stage ('$' and not an extended-JSON type wrapper); otherwise
 * false with one line naming the option, its source and the stage. */
bool nem_pipeline_option(const nem_config_t *cfg, nem_opt_id_t id, size_t idx, bson_t *pipeline, bson_error_t *err);

#endif
