#!/bin/sh
# Prints the bad-input catalogues of the test suite (DIR/cases.tsv, DIR/scripts.tsv) as a man page section, so the
# man page lists every case with the exact text of its error. Usage: catalogue.sh DIR
dir=${1:?usage: catalogue.sh DIR}
# KIND_FIELD TEXT_FIELD FILE: one .TP entry a case; fields troff-escaped (\ as \e, a leading . or ' guarded by \&)
table() {
    awk -F '\t' -v kf="$1" -v tf="$2" '
        function esc(s) { gsub(/\\/, "\\e", s); if (s ~ /^[.\047]/) s = "\\&" s; return s }
        !/^#/ && NF >= 4 { printf ".TP\n\\fB%s\\fR (%s)\n%s\n", esc($1), esc(kf == 2 && $2 ~ /^[0-9]+$/ ? "exit " $2 : $kf), esc($tf) }' "$3"
}
echo ".SH BAD INPUT CATALOGUE"
echo "Every malformed input the test suite tries (tests/badinput/cases.tsv), with the exit status and the text its"
echo "one-line error holds. None starts anything, hangs or crashes."
table 2 3 "$dir/cases.tsv"
echo ".SS Scripts"
echo "Bad script output and scripts that fail (tests/badinput/scripts.tsv): each fails alone, its documents are"
echo "removed, the run exits 4, and its entry in the run record holds the text shown."
table 2 4 "$dir/scripts.tsv"
