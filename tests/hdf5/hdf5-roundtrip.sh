#!/bin/bash
# HDF5 round trip: h5check writes a sample file (2-D float32, 3-D uint8, a scalar, UTF-8 and fixed-length strings,
# and in a nested group a 1-D int64 and a big-endian float64); the hdf5_import plugin imports it through
# `nemesyst --data-clean` reading 4 rows per hyperslab; the documents are checked (counts, values, dtype, shape);
# then nemesyst-export writes each dataset back (batches of 4, a pipeline inline or from a file) and h5check
# compares every value with the original.
. "$(dirname "$0")/lib.sh"

"$H5CHECK" make "$tmp/in.h5" || fail "cannot write the sample file"
NEMESYST_HDF5_IMPORT_ROWS=4 import "$tmp/in.h5" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; fail "import failed"; }

py "$tmp/in.h5" <<'PY' || fail "documents read back differ"
import struct
path = sys.argv[3]
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)
h5 = db.h5
counts = {d: h5.count_documents({"dataset": d}) for d in h5.distinct("dataset")}
want = {"/images": 25, "/cube": 4, "/answer": 1, "/grp/names": 3, "/grp/fixed": 2, "/grp/inner/labels": 25,
        "/grp/inner/temps": 25}
check(counts == want, "documents per dataset: %r" % counts)
check(h5.count_documents({"file": path}) == sum(want.values()), "file field is not %s" % path)
for r in (0, 3, 24):  # rows in the first, a middle and the last (partial) hyperslab
    d = h5.find_one({"dataset": "/images", "row": r})
    check(d["dtype"] == "float32" and d["shape"] == [3], "images row %d dtype/shape %r %r" % (r, d["dtype"], d["shape"]))
    check(isinstance(d["value"], bytes) and list(struct.unpack("<3f", d["value"])) == [r * 0.5 + c * 0.25 - 3 for c in range(3)],
          "images row %d value %r" % (r, d["value"]))
    d = h5.find_one({"dataset": "/grp/inner/labels", "row": r})
    check(d["value"] == r * 100000000007 - 5 and "dtype" not in d, "labels row %d: %r" % (r, d))
    d = h5.find_one({"dataset": "/grp/inner/temps", "row": r})
    check(d["value"] == r / 3.0, "temps row %d: %r" % (r, d["value"]))
d = h5.find_one({"dataset": "/cube", "row": 2})
check(d["dtype"] == "uint8" and d["shape"] == [2, 3] and list(d["value"]) == [(12 + i) * 10 for i in range(6)],
      "cube row 2: %r" % d)
d = h5.find_one({"dataset": "/answer"})
check(d["row"] == 0 and d["value"] == 42, "answer: %r" % d)
names = [d["value"] for d in h5.find({"dataset": "/grp/names"}).sort("row", 1)]
check(names == ["alpha", "\u03b2\u03b5ta", ""], "names: %r" % names)
fixed = [d["value"] for d in h5.find({"dataset": "/grp/fixed"}).sort("row", 1)]
check(fixed == ["ab", "cdefgh"], "fixed: %r" % fixed)
check(sorted(d["row"] for d in h5.find({"dataset": "/images"})) == list(range(25)), "images rows are not 0..24")
for e in errors:
    print("FAIL:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY

# export each dataset back and compare it value by value with the original
printf '[{"$match": {"dataset": "/cube"}}, {"$sort": {"row": 1}}]' >"$tmp/cube-pipeline.json"
for ds in /images /cube /grp/inner/labels /grp/inner/temps /grp/names /grp/fixed; do
    pipeline="[{\"\$match\": {\"dataset\": \"$ds\"}}, {\"\$sort\": {\"row\": 1}}]"
    [ "$ds" = /cube ] && pipeline="$tmp/cube-pipeline.json"
    "$EXPORT" "${CONN[@]}" --collection h5 --pipeline "$pipeline" --fields value,row --batch-size 4 \
        --output "$tmp/out.h5" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; fail "export of $ds failed"; }
    grep -q "wrote" "$tmp/log" || fail "export of $ds said nothing: $(cat "$tmp/log")"
    "$H5CHECK" compare "$tmp/in.h5" "$ds" "$tmp/out.h5" value || fail "exported $ds differs from the original"
    "$H5CHECK" dump "$tmp/out.h5" row >"$tmp/rows" || fail "no row dataset in the export of $ds"
    n=$(($(wc -l <"$tmp/rows") - 1))
    [ "$(head -n 1 "$tmp/rows")" = "int64 [$n]" ] && [ "$(tail -n +2 "$tmp/rows" | tr '\n' ' ')" = "$(seq -s ' ' 0 $((n - 1))) " ] \
        || fail "row column of $ds: $(cat "$tmp/rows")"
    [ ! -e "$tmp/out.h5.tmp" ] || fail "export of $ds left $tmp/out.h5.tmp"
done

# default fields: the first document's (file, dataset, row, value); dtype and shape describe value; _id and
# _nemesyst are left out
"$EXPORT" "${CONN[@]}" --collection h5 --pipeline '{"$match": {"dataset": "/images"}}' --output "$tmp/all.h5" \
    >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; fail "export with default fields failed"; }
"$H5CHECK" dump "$tmp/all.h5" dataset | sort | uniq -c | tr -s ' ' >"$tmp/names"
grep -qx ' 25 /images' "$tmp/names" && grep -qx ' 1 string \[25\]' "$tmp/names" \
    || fail "dataset column of the default export: $(cat "$tmp/names")"
"$H5CHECK" dump "$tmp/all.h5" file >/dev/null && "$H5CHECK" dump "$tmp/all.h5" value >/dev/null \
    || fail "file or value missing from the default export"
for f in dtype shape _id _nemesyst; do
    "$H5CHECK" dump "$tmp/all.h5" "$f" >/dev/null 2>&1 && fail "the default export has a $f dataset"
done
echo "hdf5 round trip: ok"
