# Unit suites (Check)
check_PROGRAMS += tests/unit/test_config
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_config_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_config
check_PROGRAMS += tests/unit/test_spawn
tests_unit_test_spawn_SOURCES = tests/unit/test_spawn.c
tests_unit_test_spawn_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_spawn_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_spawn
check_PROGRAMS += tests/unit/test_table
tests_unit_test_table_SOURCES = tests/unit/test_table.c
tests_unit_test_table_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_table_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_table

# Command-line behaviour of the nemesyst binary
dist_check_SCRIPTS += tests/cli/cli.sh
TESTS += tests/cli/cli.sh
# README and the man pages against the program: options, defaults, ranges, environment, the error catalogue
dist_check_SCRIPTS += tests/cli/docs.sh
TESTS += tests/cli/docs.sh

# Leaks and memory errors under valgrind (skipped in sanitizer builds)
dist_check_SCRIPTS += tests/valgrind/valgrind.sh
TESTS += tests/valgrind/valgrind.sh
EXTRA_DIST += tests/valgrind.supp

# Slurm: sbatch --wait of slurm/nemesyst.sbatch on a private single-node cluster
dist_check_SCRIPTS += tests/slurm/slurm.sh
TESTS += tests/slurm/slurm.sh
EXTRA_DIST += tests/slurm/cluster.sh
# Slurm: a store job (slurm/nemesyst-store.sbatch) that client jobs reach through its address file
dist_check_SCRIPTS += tests/slurm/store.sh
TESTS += tests/slurm/store.sh
# Slurm: a sweep over a job array (slurm/nemesyst-sweep.sbatch) reporting to a store job, a failed task resumed
dist_check_SCRIPTS += tests/slurm/sweep.sh
TESTS += tests/slurm/sweep.sh
# Slurm across two hosts: a node in each of two network namespaces, the multi-node script's workers on both, a TLS
# store job on one node serving a client job on the other
dist_check_SCRIPTS += tests/slurm/multinode.sh
TESTS += tests/slurm/multinode.sh
check_PROGRAMS += tests/unit/test_stage
tests_unit_test_stage_SOURCES = tests/unit/test_stage.c
tests_unit_test_stage_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_stage_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_stage

# The Python adapter's pure parts under pytest (python3-pytest; skipped without it)
dist_check_SCRIPTS += tests/python/pytest.sh
TESTS += tests/python/pytest.sh
EXTRA_DIST += tests/python/conftest.py tests/python/test_adapter.py
