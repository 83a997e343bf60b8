/* `lineage MODEL_ID --dot`: the lineage as a Graphviz graph in the DOT language, left to right: the data sets each
 * model read (cylinders: collection, count, digest), the models (boxes), each parent to the model retrained from it,
 * and the predictions made with the model (notes: collection, count, run and script); the code each model's script
 * ran (components: the script, the modules it imported, its interpreter). Node names are stable ("model:ID",
 * "data:COLLECTION:DIGEST", "predictions:COLLECTION:RUN:SCRIPT", "script:PATH:SHA256", "file:PATH:SHA256"), so
 * scripts can find them; two models that read the same documents, or ran the same code, share its node. */
#include "registry/registry.h"

#include <string.h>

#include "provenance/provenance.h"
#include "util/exitcodes.h"

/* s as a DOT string: quoted, '"' and '\' escaped, a line break as DOT's \n, other control characters as spaces. */
static void dot_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(out, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", out);
        else if ((unsigned char)*s < 0x20)
            fputc(' ', out);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

/* Each node once, whoever names it again (two models that read the same documents share their node). */
static void node(FILE *out, nem_strv_t *seen, const char *name, const char *shape, const char *label)
{
    for (size_t i = 0; i < seen->n; i++)
        if (strcmp(seen->v[i], name) == 0)
            return;
    nem_strv_push(seen, name);
    fputs("  ", out);
    dot_str(out, name);
    fprintf(out, " [shape=%s, label=", shape);
    dot_str(out, label);
    fputs("];\n", out);
}

static void edge(FILE *out, const char *from, const char *to, const char *label)
{
    fputs("  ", out);
    dot_str(out, from);
    fputs(" -> ", out);
    dot_str(out, to);
    fputs(" [label=", out);
    dot_str(out, label);
    fputs("];\n", out);
}

/* Text cut to max bytes, "..." ending it (not inside a UTF-8 character). */
static char *cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return bson_strdup(s);
    size_t k = max - 3;
    while (k && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    char *t = bson_strndup(s, k + 3);
    memcpy(t + k, "...", 4);
    return t;
}

/* The data sets one model read (its _nemesyst: consumed records, or only the data collection when none was
 * recorded), each a node with an edge to the model's node. */
static void data_nodes(FILE *out, nem_strv_t *seen, const bson_t *file, const char *model_node)
{
    bson_t prov, consumed, c;
    bson_iter_t it;
    bool any = false;
    if (!nem_reg_sub(file, "metadata." NEM_PROVENANCE_FIELD, &prov))
        return;
    if (nem_reg_sub(&prov, "consumed", &consumed) && bson_iter_init(&it, &consumed))
        while (bson_iter_next(&it)) {
            if (!nem_reg_sub(&consumed, bson_iter_key(&it), &c))
                continue;
            const char *coll = nem_reg_str(&c, "collection", "?"), *digest = nem_reg_str(&c, "digest", NULL);
            bson_iter_t f;
            bool complete = !bson_iter_init_find(&f, &c, "complete") || !BSON_ITER_HOLDS_BOOL(&f) ||
                            bson_iter_bool(&f);
            char *pipeline = NULL;
            if (bson_iter_init_find(&f, &c, "pipeline")) {
                char *text = nem_reg_value_text(&f, 200);
                pipeline = cut(text, 48);
                bson_free(text);
            }
            char *name = digest ? bson_strdup_printf("data:%s:%s", coll, digest)
                                : bson_strdup_printf("data:%s:%s#%s", coll, model_node, bson_iter_key(&it));
            char *label = bson_strdup_printf("%s\n%" PRId64 " documents%s\nsha256 %.16s%s%s%s", coll,
                                             nem_reg_int(&c, "count", 0), complete ? "" : " (read partly)",
                                             digest ? digest : "?", digest && strlen(digest) > 16 ? "..." : "",
                                             pipeline ? "\n" : "", pipeline ? pipeline : "");
            node(out, seen, name, "cylinder", label);
            edge(out, name, model_node, "trained on");
            bson_free(name);
            bson_free(label);
            bson_free(pipeline);
            any = true;
        }
    const char *coll = nem_reg_str(&prov, "data_collection", NULL);
    if (!any && coll) {
        char *name = bson_strdup_printf("collection:%s", coll);
        char *label = bson_strdup_printf("%s\n(what was read is not recorded)", coll);
        node(out, seen, name, "cylinder", label);
        edge(out, name, model_node, "trained on");
        bson_free(name);
        bson_free(label);
    }
}

/* A file node of the code ("file:PATH:SHA256"), with an edge to the node it went into. */
static void file_node(FILE *out, nem_strv_t *seen, const bson_t *f, const char *what, const char *to,
                      const char *label_of_edge)
{
    const char *path = nem_reg_str(f, "path", "?"), *sha = nem_reg_str(f, "sha256", "?");
    char *name = bson_strdup_printf("file:%s:%s", path, sha);
    char *label = bson_strdup_printf("%s\n%s\nsha256 %.16s%s", what, path, sha, strlen(sha) > 16 ? "..." : "");
    node(out, seen, name, "component", label);
    edge(out, name, to, label_of_edge);
    bson_free(name);
    bson_free(label);
}

/* The code a model's script ran (its _nemesyst: script and code, provenance/code.h): the script (its file's last
 * component and sha256; the git commit, dirty or not, of its work tree; the Python version and the packages it
 * imported), then each module it imported from outside the interpreter's library and installed packages, and its
 * interpreter (an executable with #!), each a node with an edge to the script's. */
static void code_nodes(FILE *out, nem_strv_t *seen, const bson_t *file, const char *model_node)
{
    bson_t prov, code, sub, item;
    bson_iter_t it;
    if (!nem_reg_sub(file, "metadata." NEM_PROVENANCE_FIELD, &prov))
        return;
    const char *path = nem_reg_str(&prov, "script", NULL), *sha = nem_reg_str(&prov, "script_sha256", "?");
    if (!path)
        return;
    const char *base = strrchr(path, '/');
    bool have_code = nem_reg_sub(&prov, "code", &code);
    char git[96] = "", python[160] = "";
    if (have_code && nem_reg_sub(&code, "git", &sub)) {
        bson_iter_t d;
        bool dirty = bson_iter_init_find(&d, &sub, "dirty") && BSON_ITER_HOLDS_BOOL(&d) && bson_iter_bool(&d);
        snprintf(git, sizeof git, "\ngit %.12s%s", nem_reg_str(&sub, "commit", "?"), dirty ? " (dirty)" : "");
    }
    if (have_code && nem_reg_str(&code, "python", NULL)) {
        uint32_t n = nem_reg_sub(&code, "packages", &sub) ? bson_count_keys(&sub) : 0;
        snprintf(python, sizeof python, "\npython %.32s, %u package(s)", nem_reg_str(&code, "python", "?"), n);
    }
    char *name = bson_strdup_printf("script:%s:%s", path, sha);
    char *label = bson_strdup_printf("script %s\nsha256 %.16s%s%s%s", base ? base + 1 : path, sha,
                                     strlen(sha) > 16 ? "..." : "", git, python);
    node(out, seen, name, "component", label);
    edge(out, name, model_node, "ran");
    bson_free(label);
    if (have_code && nem_reg_sub(&code, "interpreter", &sub))
        file_node(out, seen, &sub, "interpreter", name, "interprets");
    if (have_code && nem_reg_sub(&code, "modules", &sub) && bson_iter_init(&it, &sub))
        while (bson_iter_next(&it))
            /* a 2.0.6-form script is imported as a module by the adapter: it is the script's node already */
            if (nem_reg_sub(&sub, bson_iter_key(&it), &item) && strcmp(nem_reg_str(&item, "path", ""), path) != 0) {
                char *what = bson_strdup_printf("module %s", nem_reg_str(&item, "name", "?"));
                file_node(out, seen, &item, what, name, "imported by");
                bson_free(what);
            }
    bson_free(name);
}

static void model_node(FILE *out, nem_strv_t *seen, const char *name, const bson_t *row)
{
    char *label = bson_strdup_printf("model %s\nbucket %s\nrun %s\n%s", nem_reg_str(row, "id", "?"),
                                     nem_reg_str(row, "bucket", "?"), nem_reg_str(row, "run", "?"),
                                     nem_reg_str(row, "script", "?"));
    node(out, seen, name, "box", label);
    bson_free(label);
}

bool nem_reg_lineage_dot(nem_reg_t *r, const bson_t *file, const bson_t *rep, bson_error_t *err)
{
    FILE *out = r->out;
    bson_t model, arr, item;
    bson_iter_t it;
    bool ok = true;
    nem_strv_t seen = {0};
    nem_reg_sub(rep, "model", &model);
    char *me = bson_strdup_printf("model:%s", nem_reg_str(&model, "id", "?"));
    fputs("digraph lineage {\n  graph [rankdir=LR, labelloc=t, label=", out);
    char *title = bson_strdup_printf("lineage of model %s in %s", nem_reg_str(&model, "id", "?"),
                                     nem_store_db_name(r->store));
    dot_str(out, title);
    bson_free(title);
    fputs("];\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n", out);
    model_node(out, &seen, me, &model);
    data_nodes(out, &seen, file, me);
    code_nodes(out, &seen, file, me);
    /* the parents, nearest first: each one's data, and the edge to the model retrained from it */
    char *child = bson_strdup(me);
    if (nem_reg_sub(rep, "parents", &arr) && bson_iter_init(&it, &arr))
        while (ok && bson_iter_next(&it)) {
            if (!nem_reg_sub(&arr, bson_iter_key(&it), &item))
                continue;
            bson_iter_t f;
            bool found = bson_iter_init_find(&f, &item, "found") && bson_iter_bool(&f);
            const char *hex = nem_reg_str(&item, "id", "?");
            char *name = bson_strdup_printf("model:%s", hex);
            if (found) {
                model_node(out, &seen, name, &item);
                bson_oid_t oid;
                bson_value_t id = {.value_type = BSON_TYPE_OID};
                bson_t pfile;
                char *bucket = NULL;
                bool there = false;
                if (strlen(hex) == 24 && bson_oid_is_valid(hex, 24)) {
                    bson_oid_init_from_string(&oid, hex);
                    id.value.v_oid = oid;
                    ok = nem_reg_find_model(r->store, nem_reg_str(&item, "bucket", NULL), &id, &pfile, &bucket, &there,
                                            err);
                }
                if (ok && there) {
                    data_nodes(out, &seen, &pfile, name);
                    code_nodes(out, &seen, &pfile, name);
                    bson_destroy(&pfile);
                }
                bson_free(bucket);
            } else {
                char *label = bson_strdup_printf("model %s\nbucket %s\n(gone)", hex, nem_reg_str(&item, "bucket", "?"));
                node(out, &seen, name, "box", label);
                bson_free(label);
            }
            edge(out, name, child, "retrained");
            bson_free(child);
            child = name;
        }
    bson_free(child);
    if (nem_reg_sub(rep, "predictions", &arr) && bson_iter_init(&it, &arr))
        while (bson_iter_next(&it)) {
            if (!nem_reg_sub(&arr, bson_iter_key(&it), &item))
                continue;
            const char *coll = nem_reg_str(&item, "collection", "?"), *run = nem_reg_str(&item, "run", "?"),
                       *script = nem_reg_str(&item, "script", "?");
            char *name = bson_strdup_printf("predictions:%s:%s:%s", coll, run, script);
            char *label = bson_strdup_printf("%" PRId64 " predictions\nin %s\nrun %s\n%s", nem_reg_int(&item, "count", 0),
                                             coll, run, script);
            node(out, &seen, name, "note", label);
            edge(out, me, name, "predicted");
            bson_free(name);
            bson_free(label);
        }
    fputs("}\n", out);
    nem_strv_free(&seen);
    bson_free(me);
    return ok;
}
