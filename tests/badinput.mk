# Bad input: every case of tests/badinput/cases.tsv fails before anything starts (exit 2, one line on stderr),
# never hangs or crashes; no case needs the database server. tests/badinput/scripts.tsv: bad script output and
# scripts that fail in every way, each failing alone, rolled back, with its message in the run record.
dist_check_SCRIPTS += tests/badinput/badinput.sh tests/badinput/bad-scripts.sh
TESTS += tests/badinput/badinput.sh tests/badinput/bad-scripts.sh
EXTRA_DIST += tests/badinput/cases.tsv tests/badinput/scripts.tsv
