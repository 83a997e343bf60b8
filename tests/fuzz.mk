# tests/fuzz.mk: libFuzzer targets, their seed corpora and tests/fuzz/run.sh (built with clang by the script, not
# by make; CI runs it after make check). Distributed so a tarball can run them too.
EXTRA_DIST += tests/fuzz
