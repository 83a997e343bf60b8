/* `lineage MODEL_ID --dot`: the lineage as a Graphviz graph in the DOT language, left to right: the data sets each
 * model read (cylinders: collection, count, digest), the models (boxes), each parent to the model retrained from it,
 * and the predictions made with the model (notes: collection, count, run and script). Node names are stable
 * ("model:ID", "data:COLLECTION:DIGEST", "predictions:COLLECTION:RUN:SCRIPT"), so scripts can find them; two models
 * that read the same documents share the data set's node. */
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
