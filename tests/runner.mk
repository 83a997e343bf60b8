# tests/runner.mk: runners and the three kinds of stage script (executables, Python through the adapter, C
# plugins through nemesyst-plugin-host), against a private FerretDB.
check_PROGRAMS += tests/runner/test_runner
tests_runner_test_runner_SOURCES = tests/runner/test_runner.c
tests_runner_test_runner_CFLAGS = $(TEST_CFLAGS)
tests_runner_test_runner_LDADD = $(TEST_LIBS) $(CRYPTO_LIBS)

# The test plugin, built once like a user's would be (against libnemesyst only) and shared: the runner, stage,
# TLS, valgrind and pkg-config tests all load tests/runner/.libs/plugin_fixture.so.
check_LTLIBRARIES += tests/runner/plugin_fixture.la
tests_runner_plugin_fixture_la_SOURCES = tests/runner/plugin_fixture.c
tests_runner_plugin_fixture_la_LDFLAGS = -module -avoid-version -rpath /nowhere -Wl,--as-needed
tests_runner_plugin_fixture_la_LIBADD = libnemesyst.la $(MONGOC_LIBS) $(BSON_LIBS)

# A plugin stamped as built against nemesyst 99.0, which the host must refuse (also tests/badinput/scripts.tsv).
check_LTLIBRARIES += tests/runner/plugin_badapi.la
tests_runner_plugin_badapi_la_SOURCES = tests/runner/plugin_badapi.c
tests_runner_plugin_badapi_la_LDFLAGS = -module -avoid-version -rpath /nowhere -Wl,--as-needed
tests_runner_plugin_badapi_la_LIBADD = libnemesyst.la $(MONGOC_LIBS) $(BSON_LIBS)

dist_check_SCRIPTS += tests/runner/runner.sh tests/runner/plugin-pkgconfig.sh tests/runner/adapter-cursor.sh
TESTS += tests/runner/runner.sh tests/runner/plugin-pkgconfig.sh tests/runner/adapter-cursor.sh
# libnemesyst.so exports nemesyst.h and nothing else and the version agrees everywhere
dist_check_SCRIPTS += tests/runner/plugin-exports.sh
TESTS += tests/runner/plugin-exports.sh
EXTRA_DIST += tests/runner/fixtures

# The learner-group tests' C plugin (tests/groups/groups.sh).
check_LTLIBRARIES += tests/groups/linear_plugin.la
tests_groups_linear_plugin_la_SOURCES = tests/groups/linear_plugin.c
tests_groups_linear_plugin_la_LDFLAGS = -module -avoid-version -rpath /nowhere -Wl,--as-needed
tests_groups_linear_plugin_la_LIBADD = libnemesyst.la $(MONGOC_LIBS) $(BSON_LIBS)
# The README's learner-group C plugin (examples/groups/mean_group.c), run by tests/groups/groups.sh.
check_LTLIBRARIES += tests/groups/mean_group.la
tests_groups_mean_group_la_SOURCES = examples/groups/mean_group.c
tests_groups_mean_group_la_LDFLAGS = -module -avoid-version -rpath /nowhere -Wl,--as-needed
tests_groups_mean_group_la_LIBADD = libnemesyst.la $(MONGOC_LIBS) $(BSON_LIBS)
