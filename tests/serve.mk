# tests/serve.mk: serving (engines, lifecycle, signals). The .sh tests drive tests/serve/serve-tool, which calls
# nem_serve_begin/nem_serve_end as src/app/run.c does, against servers they start on their own free ports.
check_PROGRAMS += tests/serve/test_engines tests/serve/serve-tool
tests_serve_test_engines_SOURCES = tests/serve/test_engines.c
tests_serve_test_engines_CFLAGS = $(TEST_CFLAGS)
tests_serve_test_engines_LDADD = $(TEST_LIBS)
tests_serve_serve_tool_SOURCES = tests/serve/serve-tool.c
tests_serve_serve_tool_CFLAGS = $(TEST_CFLAGS)
tests_serve_serve_tool_LDADD = $(TEST_LIBS)
TESTS += tests/serve/test_engines

dist_check_SCRIPTS += tests/serve/cycle.sh tests/serve/failures.sh tests/serve/signals.sh tests/serve/login.sh \
	tests/serve/binary.sh tests/serve/rank-dies.sh tests/serve/disk-faults.sh tests/serve/multihost.sh
EXTRA_DIST += tests/serve/lib.sh
TESTS += tests/serve/cycle.sh tests/serve/failures.sh tests/serve/signals.sh tests/serve/login.sh \
	tests/serve/binary.sh tests/serve/rank-dies.sh tests/serve/disk-faults.sh tests/serve/multihost.sh
dist_check_SCRIPTS += tests/serve/server-group.sh
TESTS += tests/serve/server-group.sh
dist_check_SCRIPTS += tests/serve/address-file.sh
TESTS += tests/serve/address-file.sh
# serving with TLS (--db-server-tls-*) across two network namespaces
dist_check_SCRIPTS += tests/serve/tls-multihost.sh
TESTS += tests/serve/tls-multihost.sh
