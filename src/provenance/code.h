/* Code lineage: what a script really ran, beyond the sha256 of its own file (provenance.h), kept with the models it
 * stores under _nemesyst.code and checked by nemesyst-registry verify:
 *   interpreter  {path, sha256}: an executable that is a script (#!), its interpreter (through /usr/bin/env too);
 *   git          {commit, dirty, diff_sha256}: when the script lives in a git work tree, its HEAD, whether the tree
 *                has changes, and the sha256 of `git diff HEAD` (empty when clean);
 *   modules, packages, python: what a Python script imported (the adapter's $nemesyst_code marker). */
#ifndef NEM_PROVENANCE_CODE_H
#define NEM_PROVENANCE_CODE_H

#include <bson/bson.h>
#include <stdbool.h>

/* The facts the host finds by itself about the script at path, appended to out: interpreter (executables that are
 * scripts) and git (when in a work tree and git is installed). Best effort: a fact that cannot be found is left
 * out, never an error. */
void nem_code_host_facts(const char *path, bool executable, bson_t *out);

#endif
