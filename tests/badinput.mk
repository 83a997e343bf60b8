# Bad input: every case of tests/badinput/cases.tsv fails before anything starts (exit 2, one line on stderr),
# never hangs or crashes; no case needs the database server.
dist_check_SCRIPTS += tests/badinput/badinput.sh
TESTS += tests/badinput/badinput.sh
EXTRA_DIST += tests/badinput/cases.tsv
