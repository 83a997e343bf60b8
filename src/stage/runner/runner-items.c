/* The item stream: extended-JSON lines or BSON documents, parsed incrementally as the bytes arrive (a pump may
 * deliver half a line or half a document; the rest waits in the buffer). Marker documents become model and
 * consumed-data items. Every error names the line (JSON) or the byte offset (BSON) of the offending item. */
#include "stage/runner/runner-private.h"
#include "util/clock.h"

#include <string.h>
#include <sys/stat.h>

#define MAGIC_BSON "#nemesyst:bson\n"
#define MAGIC_JSON "#nemesyst:json\n"
#define MAGIC_LEN (sizeof MAGIC_BSON - 1)
/* Extended JSON of a 16 MiB document can be several times larger (base64, escapes); past this a line is refused
 * without parsing it. */
#define MAX_JSON_LINE ((size_t)4 * NEM_RUNNER_MAX_DOC)

static const char *where_unit(const nem_items_chan_t *ch)
{
    return ch->fmt == NEM_FMT_BSON ? "byte" : "line";
}

static bool item_error(nem_runner_t *r, uint64_t where, bson_error_t *err, int code, const char *what)
{
    return nem_runner_error(r, err, code, "%s %llu: %s", where_unit(&r->items), (unsigned long long)where, what);
}

static bool marker_model(nem_runner_t *r, bson_iter_t *it, nem_item_t *item, bson_error_t *err)
{
    bson_iter_t sub;
    const uint8_t *data;
    uint32_t len;
    struct stat st;
    const char *path = NULL;
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &sub))
        return item_error(r, item->where, err, NEM_RUNNER_EOUTPUT, NEM_RUNNER_MARKER_MODEL " must be a document");
    while (bson_iter_next(&sub)) {
        const char *key = bson_iter_key(&sub);
        if (strcmp(key, "path") == 0 && BSON_ITER_HOLDS_UTF8(&sub)) {
            path = bson_iter_utf8(&sub, NULL);
        } else if (strcmp(key, "metadata") == 0 && BSON_ITER_HOLDS_DOCUMENT(&sub)) {
            bson_t meta;
            bson_iter_document(&sub, &len, &data);
            if (bson_init_static(&meta, data, len)) {
                bson_destroy(&item->doc);
                bson_copy_to(&meta, &item->doc);
            }
        } else if (strcmp(key, "temp") == 0 && BSON_ITER_HOLDS_BOOL(&sub)) {
            item->path_is_temp = bson_iter_bool(&sub);
        } else {
            char msg[200];
            bson_snprintf(msg, sizeof msg, NEM_RUNNER_MARKER_MODEL " has an unexpected field '%s' (want path, "
                          "metadata, temp)", key);
            return item_error(r, item->where, err, NEM_RUNNER_EOUTPUT, msg);
        }
    }
    if (!path)
        return item_error(r, item->where, err, NEM_RUNNER_EOUTPUT, NEM_RUNNER_MARKER_MODEL " needs a \"path\"");
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        char msg[400];
        bson_snprintf(msg, sizeof msg, "model file '%s' is not a readable file", path);
        return item_error(r, item->where, err, NEM_RUNNER_EOUTPUT, msg);
    }
    item->kind = NEM_ITEM_MODEL;
    item->path = bson_strdup(path);
    return true;
}

/* {"$nemesyst_checkpoint": {"path": FILE, "step": N[, "metadata": {...}]}} */
static bool marker_checkpoint(nem_runner_t *r, bson_iter_t *it, nem_item_t *item, bson_error_t *err)
{
    bson_iter_t sub;
    struct stat st;
    const char *path = NULL;
    int64_t step = -1;
    bson_t meta = BSON_INITIALIZER;
    bool ok = false;
    char msg[400];
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &sub))
        return item_error(r, item->where, err, NEM_RUNNER_EOUTPUT, NEM_RUNNER_MARKER_CHECKPOINT " must be a document");
    msg[0] = '\0';
    while (!msg[0] && bson_iter_next(&sub)) {
        const char *key = bson_iter_key(&sub);
        if (strcmp(key, "path") == 0 && BSON_ITER_HOLDS_UTF8(&sub)) {
            path = bson_iter_utf8(&sub, NULL);
        } else if (strcmp(key, "step") == 0 && (BSON_ITER_HOLDS_INT32(&sub) || BSON_ITER_HOLDS_INT64(&sub))) {
            step = bson_iter_as_int64(&sub);
        } else if (strcmp(key, "metadata") == 0 && BSON_ITER_HOLDS_DOCUMENT(&sub)) {
            const uint8_t *data;
            uint32_t len;
            bson_t view;
            bson_iter_document(&sub, &len, &data);
            if (bson_init_static(&view, data, len)) {
                bson_destroy(&meta);
                bson_copy_to(&view, &meta);
            }
        } else {
            bson_snprintf(msg, sizeof msg, NEM_RUNNER_MARKER_CHECKPOINT " has an unexpected field '%s' (want path, "
                          "step, metadata)", key);
        }
    }
    if (!msg[0] && (!path || step < 0))
        bson_snprintf(msg, sizeof msg, NEM_RUNNER_MARKER_CHECKPOINT " needs a \"path\" and a whole \"step\" >= 0");
    else if (!msg[0] && (stat(path, &st) != 0 || !S_ISREG(st.st_mode)))
        bson_snprintf(msg, sizeof msg, "checkpoint file '%s' is not a readable file", path);
    if (msg[0]) {
        ok = item_error(r, item->where, err, NEM_RUNNER_EOUTPUT, msg);
    } else {
        bson_destroy(&item->doc);
        bson_init(&item->doc);
        BSON_APPEND_INT64(&item->doc, "step", step);
        BSON_APPEND_DOCUMENT(&item->doc, "metadata", &meta);
        item->kind = NEM_ITEM_CHECKPOINT;
        item->path = bson_strdup(path);
        ok = true;
    }
    bson_destroy(&meta);
    return ok;
}

/* {"$nemesyst_checkpoint_commit": {"id": ID, "step": N}} */
static bool marker_checkpoint_commit(nem_runner_t *r, bson_iter_t *it, nem_item_t *item, bson_error_t *err)
{
    bson_iter_t sub;
    bool id = false;
    int64_t step = -1;
    bson_t doc = BSON_INITIALIZER;
    if (BSON_ITER_HOLDS_DOCUMENT(it) && bson_iter_recurse(it, &sub))
        while (bson_iter_next(&sub)) {
            const char *key = bson_iter_key(&sub);
            if (strcmp(key, "id") == 0 && !id) {
                bson_append_value(&doc, "id", -1, bson_iter_value(&sub));
                id = true;
            } else if (strcmp(key, "step") == 0 && (BSON_ITER_HOLDS_INT32(&sub) || BSON_ITER_HOLDS_INT64(&sub))) {
                step = bson_iter_as_int64(&sub);
            } else {
                id = false;
                break;
            }
        }
    if (!id || step < 0) {
        bson_destroy(&doc);
        return item_error(r, item->where, err, NEM_RUNNER_EOUTPUT,
                          NEM_RUNNER_MARKER_CHECKPOINT_COMMIT " must be {\"id\": ID, \"step\": N >= 0}");
    }
    BSON_APPEND_INT64(&doc, "step", step);
    bson_destroy(&item->doc);
    bson_steal(&item->doc, &doc);
    item->kind = NEM_ITEM_CHECKPOINT_COMMIT;
    return true;
}

/* {"$nemesyst_code": {...}}: kept whole (a document) for the lineage of the models that follow. */
static bool marker_code(nem_runner_t *r, bson_iter_t *it, nem_item_t *item, bson_error_t *err)
{
    const uint8_t *data;
    uint32_t len;
    bson_t view;
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return item_error(r, item->where, err, NEM_RUNNER_EOUTPUT, NEM_RUNNER_MARKER_CODE " must be a document");
    bson_iter_document(it, &len, &data);
    if (!bson_init_static(&view, data, len))
        return item_error(r, item->where, err, NEM_RUNNER_EOUTPUT, NEM_RUNNER_MARKER_CODE " is malformed");
    bson_destroy(&item->doc);
    bson_copy_to(&view, &item->doc);
    item->kind = NEM_ITEM_CODE;
    return true;
}

static bool marker_consumed(nem_runner_t *r, bson_iter_t *it, nem_item_t *item, bson_error_t *err)
{
    const uint8_t *data;
    uint32_t len;
    bson_t view;
    bson_iter_t f;
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        goto bad;
    bson_iter_document(it, &len, &data);
    if (!bson_init_static(&view, data, len))
        goto bad;
    if (!bson_iter_init_find(&f, &view, "collection") || !BSON_ITER_HOLDS_UTF8(&f) ||
        !bson_iter_init_find(&f, &view, "count") || !BSON_ITER_HOLDS_NUMBER(&f))
        goto bad;
    item->kind = NEM_ITEM_CONSUMED;
    bson_destroy(&item->doc);
    bson_copy_to(&view, &item->doc);
    return true;
bad:
    return item_error(r, item->where, err, NEM_RUNNER_EOUTPUT,
                      NEM_RUNNER_MARKER_CONSUMED " must be a document with \"collection\" and \"count\"");
}

/* {"$nemesyst_metric": {name, step, value[, t]}}: a metric while the script runs (a loss per epoch, an accuracy
 * per batch). name: a non-empty string of at most 128 bytes; step: a whole number >= 0 (an epoch, a batch);
 * value: a number; t: when, a date (default: when the host read it). */
static bool marker_metric(nem_runner_t *r, bson_iter_t *it, nem_item_t *item, bson_error_t *err)
{
    bson_iter_t f;
    const char *name = NULL;
    uint32_t name_len = 0;
    int64_t step = -1, t = -1;
    double value = 0;
    bool has_value = false;
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &f))
        goto bad;
    while (bson_iter_next(&f)) {
        const char *k = bson_iter_key(&f);
        if (strcmp(k, "name") == 0 && BSON_ITER_HOLDS_UTF8(&f))
            name = bson_iter_utf8(&f, &name_len);
        else if (strcmp(k, "step") == 0 && BSON_ITER_HOLDS_NUMBER(&f) && bson_iter_as_double(&f) >= 0 &&
                 bson_iter_as_double(&f) == (double)bson_iter_as_int64(&f))
            step = bson_iter_as_int64(&f);
        else if (strcmp(k, "value") == 0 && BSON_ITER_HOLDS_NUMBER(&f))
            value = bson_iter_as_double(&f), has_value = true;
        else if (strcmp(k, "t") == 0 && BSON_ITER_HOLDS_DATE_TIME(&f))
            t = bson_iter_date_time(&f);
        else
            goto bad;
    }
    if (!name || name_len == 0 || name_len > NEM_RUNNER_METRIC_NAME_MAX || strlen(name) != name_len || step < 0 ||
        !has_value)
        goto bad;
    item->kind = NEM_ITEM_METRIC;
    bson_destroy(&item->doc);
    bson_init(&item->doc);
    BSON_APPEND_UTF8(&item->doc, "name", name);
    BSON_APPEND_INT64(&item->doc, "step", step);
    BSON_APPEND_DOUBLE(&item->doc, "value", value);
    BSON_APPEND_DATE_TIME(&item->doc, "t", t >= 0 ? t : nem_wall_ms());
    return true;
bad:
    return item_error(r, item->where, err, NEM_RUNNER_EOUTPUT,
                      NEM_RUNNER_MARKER_METRIC " must be a document {name: a string of 1-128 bytes, step: a whole "
                      "number >= 0, value: a number[, t: a date]}");
}

/* A top-level key starting with '$' is an operator to MongoDB: refused by servers before 5.0 and by FerretDB,
 * unqueryable by ordinary filters after it; the plugin API refuses it too (src/plugin/emit.c). */
static bool dollar_key(nem_runner_t *r, const bson_t *doc, const nem_item_t *item, bson_error_t *err)
{
    bson_iter_t it;
    if (bson_iter_init(&it, doc))
        while (bson_iter_next(&it))
            if (bson_iter_key(&it)[0] == '$') {
                char msg[200];
                bson_snprintf(msg, sizeof msg, "top-level key '%.60s' starts with '$'", bson_iter_key(&it));
                return item_error(r, item->where, err, NEM_RUNNER_EOUTPUT, msg);
            }
    return true;
}

/* A document whose only key is a marker announces a model or consumed data; anything else is stored. */
static bool classify(nem_runner_t *r, bson_t *doc, nem_item_t *item, bson_error_t *err)
{
    bson_iter_t it;
    item->kind = NEM_ITEM_DOC;
    if (!bson_iter_init(&it, doc) || !bson_iter_next(&it) || strncmp(bson_iter_key(&it), "$nemesyst", 9) != 0) {
        if (!dollar_key(r, doc, item, err)) {
            bson_destroy(doc);
            return false;
        }
        bson_destroy(&item->doc);
        bson_steal(&item->doc, doc);
        return true;
    }
    const char *key = bson_iter_key(&it);
    bool ok;
    if (bson_count_keys(doc) != 1)
        ok = item_error(r, item->where, err, NEM_RUNNER_EOUTPUT, "a marker document must have exactly one key");
    else if (strcmp(key, NEM_RUNNER_MARKER_MODEL) == 0)
        ok = marker_model(r, &it, item, err);
    else if (strcmp(key, NEM_RUNNER_MARKER_CONSUMED) == 0)
        ok = marker_consumed(r, &it, item, err);
    else if (strcmp(key, NEM_RUNNER_MARKER_METRIC) == 0)
        ok = marker_metric(r, &it, item, err);
    else if (strcmp(key, NEM_RUNNER_MARKER_CHECKPOINT) == 0)
        ok = marker_checkpoint(r, &it, item, err);
    else if (strcmp(key, NEM_RUNNER_MARKER_CHECKPOINT_COMMIT) == 0)
        ok = marker_checkpoint_commit(r, &it, item, err);
    else if (strcmp(key, NEM_RUNNER_MARKER_CODE) == 0)
        ok = marker_code(r, &it, item, err);
    else {
        char msg[200];
        bson_snprintf(msg, sizeof msg, "unknown marker '%s'", key);
        ok = item_error(r, item->where, err, NEM_RUNNER_EOUTPUT, msg);
    }
    bson_destroy(doc);
    return ok;
}

/* {"$nemesyst_end": {"items": N}}: the script's output is complete; N items came before it. */
static bool end_record(nem_runner_t *r, const bson_t *doc, uint64_t where, bson_error_t *err)
{
    bson_iter_t it, sub;
    if (r->ended)
        return item_error(r, where, err, NEM_RUNNER_EOUTPUT, "a second end-of-output record");
    if (bson_count_keys(doc) != 1 || !bson_iter_init_find(&it, doc, NEM_RUNNER_MARKER_END) ||
        !BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &sub) || !bson_iter_find(&sub, "items") ||
        !BSON_ITER_HOLDS_NUMBER(&sub) || bson_iter_as_int64(&sub) < 0)
        return item_error(r, where, err, NEM_RUNNER_EOUTPUT,
                          NEM_RUNNER_MARKER_END " must be the only key, a document with a count \"items\"");
    r->ended = true;
    r->end_items = bson_iter_as_int64(&sub);
    return true;
}

static bool is_end_record(const bson_t *doc)
{
    bson_iter_t it;
    return bson_iter_init(&it, doc) && bson_iter_next(&it) && strcmp(bson_iter_key(&it), NEM_RUNNER_MARKER_END) == 0;
}

/* Takes ownership of doc. */
static bool deliver(nem_runner_t *r, bson_t *doc, uint64_t where, nem_item_cb cb, void *ud, bson_error_t *err)
{
    nem_item_t item = {.where = where};
    bson_init(&item.doc); /* every path below may clear it */
    if (r->ended) {
        bson_destroy(doc);
        return item_error(r, where, err, NEM_RUNNER_EOUTPUT, "output after the end-of-output record");
    }
    if (is_end_record(doc)) {
        bool ok = end_record(r, doc, where, err);
        bson_destroy(doc);
        return ok;
    }
    r->n_items++;
    if (doc->len > NEM_RUNNER_MAX_DOC) {
        char msg[200];
        bson_snprintf(msg, sizeof msg, "document of %u bytes is over the 16 MiB limit", doc->len);
        bson_destroy(doc);
        return item_error(r, where, err, NEM_RUNNER_ETOOBIG, msg);
    }
    if (!classify(r, doc, &item, err))
        goto fail;
    if (!cb(ud, &item, err))
        goto fail;
    return true;
fail:
    nem_item_clear(&item);
    return false;
}

/* libbson's reader ends a document in a stream only when the next one begins: it returns a document once a '{'
 * follows it, and keeps that '{' as the start of the next. So each line is fed as its text and then a '{', and the
 * next line is fed without its own first '{'. */
static ssize_t feed_line(void *data, uint8_t *buf, size_t size)
{
    nem_items_chan_t *ch = data;
    size_t n = ch->feed_len < size ? ch->feed_len : size;
    memcpy(buf, ch->feed, n);
    ch->feed += n;
    ch->feed_len -= n;
    if (n < size && ch->feed_brace) {
        buf[n++] = '{';
        ch->feed_brace = false;
    }
    return (ssize_t)n;
}

void nem_items_free(nem_items_chan_t *ch)
{
    if (ch->reader)
        bson_json_reader_destroy(ch->reader);
    ch->reader = NULL;
    ch->primed = false;
    nem_rbuf_free(&ch->in);
}

/* Where the first top-level value of p ends (one past its last byte), by brackets outside strings; n when it never
 * closes. Only finds the boundary: libbson checks everything else. */
static size_t json_value_end(const char *p, size_t n)
{
    size_t depth = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '"') {
            for (i++; i < n && p[i] != '"'; i++)
                if (p[i] == '\\')
                    i++;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && depth > 0 && --depth == 0) {
            return i + 1;
        }
    }
    return n;
}

/* One line of JSON: exactly one object, so `{..}{..}` and `[..]` (which libbson would accept) are errors. */
static bool json_line(nem_runner_t *r, const char *p, size_t n, nem_item_cb cb, void *ud, bson_error_t *err)
{
    nem_items_chan_t *ch = &r->items;
    uint64_t line = ch->line;
    while (n > 0 && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++, n--;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        n--;
    if (n == 0)
        return true;
    if (*p != '{')
        return item_error(r, line, err, NEM_RUNNER_EOUTPUT, "expected a JSON object");
    if (n > MAX_JSON_LINE)
        return item_error(r, line, err, NEM_RUNNER_ETOOBIG, "line is over the 64 MiB limit");
    size_t end = json_value_end(p, n);
    if (end < n) {
        size_t rest = end;
        while (rest < n && (p[rest] == ' ' || p[rest] == '\t'))
            rest++;
        return item_error(r, line, err, NEM_RUNNER_EOUTPUT,
                          p[rest] == '{' ? "malformed JSON: more than one document on the line"
                                         : "malformed JSON: text after the document");
    }
    if (!ch->reader)
        ch->reader = bson_json_reader_new(ch, feed_line, NULL, false, 0);
    bson_t doc = BSON_INITIALIZER;
    bson_error_t jerr = {0};
    ch->feed = ch->primed ? p + 1 : p;
    ch->feed_len = ch->primed ? n - 1 : n;
    ch->feed_brace = true;
    int rc = bson_json_reader_read(ch->reader, &doc, &jerr);
    bool whole = ch->feed_len == 0 && !ch->feed_brace; /* it took the line and the '{' after it */
    ch->feed = NULL;
    ch->feed_len = 0;
    ch->feed_brace = false;
    if (rc == 1 && whole) {
        ch->primed = true;
        return deliver(r, &doc, line, cb, ud, err);
    }
    bson_destroy(&doc);
    bson_json_reader_destroy(ch->reader); /* it may hold the rest of a bad line: never feed that to the next */
    ch->reader = NULL;
    ch->primed = false;
    char msg[300];
    bson_snprintf(msg, sizeof msg, "malformed JSON: %s", jerr.message[0] ? jerr.message : "incomplete document");
    return item_error(r, line, err, NEM_RUNNER_EOUTPUT, msg);
}

static bool parse_json(nem_runner_t *r, bool at_eof, nem_item_cb cb, void *ud, bson_error_t *err)
{
    nem_items_chan_t *ch = &r->items;
    for (;;) {
        const char *p = ch->in.data + ch->in.start;
        size_t avail = ch->in.len - ch->in.start;
        /* scanned: never search the same bytes twice while a long line trickles in */
        const char *nl = avail > ch->scanned ? memchr(p + ch->scanned, '\n', avail - ch->scanned) : NULL;
        if (!nl) {
            ch->scanned = avail;
            if (avail > MAX_JSON_LINE)
                return item_error(r, ch->line + 1, err, NEM_RUNNER_ETOOBIG, "line is over the 64 MiB limit");
            if (!at_eof || avail == 0)
                return true;
            nl = p + avail; /* a last line without its newline */
        }
        size_t n = (size_t)(nl - p);
        ch->line++;
        ch->scanned = 0;
        if (!json_line(r, p, n, cb, ud, err))
            return false;
        size_t used = n < avail ? n + 1 : n;
        ch->offset += used;
        nem_rbuf_consume(&ch->in, used);
    }
}

static bool parse_bson(nem_runner_t *r, bool at_eof, nem_item_cb cb, void *ud, bson_error_t *err)
{
    nem_items_chan_t *ch = &r->items;
    for (;;) {
        const uint8_t *p = (const uint8_t *)ch->in.data + ch->in.start;
        size_t avail = ch->in.len - ch->in.start;
        char msg[200];
        if (avail < 4)
            goto partial;
        uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        if (len < 5) {
            bson_snprintf(msg, sizeof msg, "malformed BSON: document length %u", len);
            return item_error(r, ch->offset, err, NEM_RUNNER_EOUTPUT, msg);
        }
        if (len > NEM_RUNNER_MAX_DOC) {
            bson_snprintf(msg, sizeof msg, "document of %u bytes is over the 16 MiB limit", len);
            return item_error(r, ch->offset, err, NEM_RUNNER_ETOOBIG, msg);
        }
        if (avail < len) {
            nem_rbuf_reserve(&ch->in, len - avail);
            goto partial;
        }
        bson_t view, doc;
        size_t bad_at = 0;
        if (!bson_init_static(&view, p, len) || !bson_validate(&view, BSON_VALIDATE_NONE, &bad_at)) {
            bson_snprintf(msg, sizeof msg, "malformed BSON (document at byte %llu)",
                          (unsigned long long)ch->offset);
            return item_error(r, ch->offset + bad_at, err, NEM_RUNNER_EOUTPUT, msg);
        }
        bson_copy_to(&view, &doc);
        if (!deliver(r, &doc, ch->offset, cb, ud, err))
            return false;
        ch->offset += len;
        nem_rbuf_consume(&ch->in, len);
    }
partial:
    if (at_eof && ch->in.len > ch->in.start)
        return item_error(r, ch->offset, err, NEM_RUNNER_EOUTPUT, "truncated BSON document at end of output");
    return true;
}

/* EXEC output is JSON unless its first line is exactly the BSON magic line. */
static bool detect_format(nem_items_chan_t *ch, bool at_eof)
{
    size_t avail = ch->in.len - ch->in.start;
    const char *p = ch->in.data + ch->in.start;
    size_t cmp = avail < MAGIC_LEN ? avail : MAGIC_LEN;
    bool bson_prefix = memcmp(p, MAGIC_BSON, cmp) == 0, json_prefix = memcmp(p, MAGIC_JSON, cmp) == 0;
    if ((bson_prefix || json_prefix) && avail < MAGIC_LEN && !at_eof)
        return false; /* undecided: wait for more */
    ch->fmt = NEM_FMT_JSON;
    if (avail >= MAGIC_LEN && (bson_prefix || json_prefix)) {
        ch->fmt = bson_prefix ? NEM_FMT_BSON : NEM_FMT_JSON;
        ch->line = 1;
        ch->offset = MAGIC_LEN;
        nem_rbuf_consume(&ch->in, MAGIC_LEN);
    }
    return true;
}

bool nem_items_parse(nem_runner_t *r, bool at_eof, nem_item_cb cb, void *ud, bson_error_t *err)
{
    nem_items_chan_t *ch = &r->items;
    /* Nothing buffered (perhaps no buffer yet: data NULL, where even data + 0 is undefined): nothing to parse in
     * any format, and an empty output at its end is JSON's empty stream. */
    if (ch->in.start == ch->in.len) {
        if (at_eof && ch->fmt == NEM_FMT_DETECT)
            ch->fmt = NEM_FMT_JSON;
        return true;
    }
    if (ch->fmt == NEM_FMT_DETECT && !detect_format(ch, at_eof))
        return true;
    return ch->fmt == NEM_FMT_BSON ? parse_bson(r, at_eof, cb, ud, err) : parse_json(r, at_eof, cb, ud, err);
}

void nem_item_clear(nem_item_t *item)
{
    if (!item)
        return;
    bson_destroy(&item->doc);
    bson_free(item->path);
    item->path = NULL;
}
