# tests/store.mk: the store layer. Unit suite without a server; server suites against the FerretDB fixture (each
# .sh test gets its own server; the auth and TLS tests start a second one).
check_PROGRAMS += tests/store/test_store_opts tests/store/test_store_server tests/store/store-probe
tests_store_test_store_opts_SOURCES = tests/store/test_store_opts.c
tests_store_test_store_opts_CFLAGS = $(TEST_CFLAGS)
tests_store_test_store_opts_LDADD = $(TEST_LIBS)
tests_store_test_store_server_SOURCES = tests/store/test_store_server.c
tests_store_test_store_server_CFLAGS = $(TEST_CFLAGS)
tests_store_test_store_server_LDADD = $(TEST_LIBS)
tests_store_store_probe_SOURCES = tests/store/store-probe.c
tests_store_store_probe_CFLAGS = $(TEST_CFLAGS)
tests_store_store_probe_LDADD = $(TEST_LIBS)

STORE_SH_TESTS = tests/store/store-server.sh tests/store/auth.sh tests/store/tls.sh tests/store/bench-checkpoint.sh
TESTS += tests/store/test_store_opts $(STORE_SH_TESTS)
dist_check_SCRIPTS += $(STORE_SH_TESTS)
