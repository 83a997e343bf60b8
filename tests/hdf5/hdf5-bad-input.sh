#!/bin/bash
# Bad inputs. Import: a non-HDF5 file, a missing file and an unsupported (compound) type each fail the script
# (nemesyst exit 4) with the file (and dataset) named, and a run with a good and a bad file stores nothing.
# Export: a field of conflicting type, a missing field, a tensor of another shape and an empty result exit 1 with
# the document and field named and leave no output (nor .tmp) file; a missing --collection exits 2.
. "$(dirname "$0")/lib.sh"

echo "just text" >"$tmp/notes.txt"
"$H5CHECK" make "$tmp/good.h5" && "$H5CHECK" make-bad "$tmp/bad.h5" || fail "cannot write the sample files"
expect_fail 4 "notes\.txt: not an HDF5 file" import "$tmp/notes.txt"
expect_fail 4 "missing\.h5: cannot read" import "$tmp/missing.h5"
expect_fail 4 "bad\.h5: /table: unsupported type: compound" import "$tmp/good.h5" "$tmp/bad.h5"
py <<'PY' || fail "failed imports left documents"
n = db.h5.count_documents({})
assert n == 0, "%d documents after failed imports" % n
PY

py <<'PY' || fail "cannot insert the export test documents"
from bson.binary import Binary
import struct
db.mixed.insert_many([{"_id": 0, "v": 1, "w": "a"}, {"_id": 1, "v": 2, "w": "b"}, {"_id": 2, "v": "x", "w": "c"}])
db.holes.insert_many([{"_id": 0, "v": 1}, {"_id": 1, "w": 2}])
db.shapes.insert_many([{"_id": 0, "x": Binary(struct.pack("<2f", 1, 2)), "dtype": "float32", "shape": [2]},
                       {"_id": 1, "x": Binary(struct.pack("<3f", 1, 2, 3)), "dtype": "float32", "shape": [3]}])
PY
out="$tmp/out.h5"
expect_fail 1 "document 2 \(_id 2\): field 'v' has type string, but earlier documents made it integer" \
    "$EXPORT" "${CONN[@]}" --collection mixed --fields v,w --batch-size 2 --output "$out"
[ ! -e "$out" ] && [ ! -e "$out.tmp" ] || fail "a failed export left an output file"
expect_fail 1 "document 1 \(_id 1\): field 'v' is missing" \
    "$EXPORT" "${CONN[@]}" --collection holes --fields v --output "$out"
expect_fail 1 "document 1 \(_id 1\): field 'x' is float32 \[3\], but earlier documents made it float32 \[2\]" \
    "$EXPORT" "${CONN[@]}" --collection shapes --fields x --output "$out"
expect_fail 1 "no documents" "$EXPORT" "${CONN[@]}" --collection nothing_here --output "$out"
[ ! -e "$out" ] && [ ! -e "$out.tmp" ] || fail "a failed export left an output file"
# an existing output file survives a failed export
echo "keep me" >"$out"
expect_fail 1 "field 'v'" "$EXPORT" "${CONN[@]}" --collection mixed --fields v --output "$out"
[ "$(cat "$out")" = "keep me" ] || fail "a failed export replaced the existing output file"
expect_fail 2 "--collection and --output are required" "$EXPORT" "${CONN[@]}" --output "$out"
echo "hdf5 bad inputs: ok"
