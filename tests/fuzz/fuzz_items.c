/* libFuzzer target: the reader of a stage script's output (src/stage/runner-items.c, nem_items_parse, with the
 * buffer of src/stage/runner-io.c). Built and run by tests/fuzz/run.sh.
 *
 * Input: two header bytes, then the script's output.
 *   byte 0   the kind's item format: % 3 = 0 detect (EXEC: JSON unless the first line is #nemesyst:bson),
 *            1 JSON lines, 2 BSON stream (PYTHON and PLUGIN); / 3 % 8 = k > 0: the callback refuses the k-th
 *            item (as the writer does when the database refuses it), 0: it takes every item
 *   byte 1   where the output is cut in two: the first part is parsed as a pump would with more to come
 *            (at_eof false), then the rest arrives and everything is parsed at end of output (at_eof true)
 * Checks: no crash, leak or undefined behaviour; a failure always has a message; after a successful parse at end
 * of output nothing is left in the buffer, and every item the parser counted reached the callback. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stage/runner/runner-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    uint64_t seen, refuse_at;
} sink_t;

static bool take(void *ud, nem_item_t *item, bson_error_t *err)
{
    sink_t *s = ud;
    s->seen++;
    if (item->kind == NEM_ITEM_MODEL && !item->path)
        abort();
    if (item->kind != NEM_ITEM_MODEL && item->path)
        abort();
    if (s->refuse_at && s->seen == s->refuse_at) {
        /* Refused: the item stays the parser's to free. */
        bson_set_error(err, 1, 1, "refused item %llu", (unsigned long long)s->seen);
        return false;
    }
    nem_item_clear(item);
    return true;
}

static void append(nem_runner_t *r, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    nem_rbuf_reserve(&r->items.in, n);
    if (r->items.in.len + n > r->items.in.cap)
        abort();
    memcpy(r->items.in.data + r->items.in.len, p, n);
    r->items.in.len += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const nem_item_fmt_t fmts[3] = {NEM_FMT_DETECT, NEM_FMT_JSON, NEM_FMT_BSON};
    if (size < 2)
        return 0;
    nem_runner_kind_t kind = {.name = "fuzz", .items_on_stdout = true, .fmt = fmts[data[0] % 3]};
    sink_t sink = {.refuse_at = (data[0] / 3) % 8};
    size_t cut = (size - 2) * data[1] / 255;
    const uint8_t *out = data + 2;
    size_t n = size - 2;

    nem_runner_t r;
    memset(&r, 0, sizeof r);
    r.kind = &kind;
    r.label = "fuzz script #0 'fuzz'";
    r.items.fd = -1;
    r.items.fmt = kind.fmt;
    r.logs[0].fd = r.logs[1].fd = -1;

    bson_error_t err;
    memset(&err, 0, sizeof err);
    append(&r, out, cut);
    bool ok = nem_items_parse(&r, false, take, &sink, &err);
    if (ok) {
        append(&r, out + cut, n - cut);
        ok = nem_items_parse(&r, true, take, &sink, &err);
        if (ok) {
            if (r.items.in.start != r.items.in.len)
                abort(); /* bytes left behind at end of output */
            if (sink.seen != r.n_items)
                abort(); /* an item counted but never delivered */
        }
    }
    if (!ok && err.message[0] == '\0')
        abort(); /* a failure without a message */
    nem_items_free(&r.items);
    return 0;
}
