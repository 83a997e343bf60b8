# tests/groups.mk: learner groups (--dl-data-parallel) over real mpirun against a private FerretDB: exactness at
# K = 1, 2, 3 for a C plugin (nemesyst_allreduce) and PyTorch (gloo), shard lineage, failure, resume and refusals.
# Its C plugin is built in tests/runner.mk.
GROUP_TESTS = tests/groups/groups.sh
TESTS += $(GROUP_TESTS)
dist_check_SCRIPTS += $(GROUP_TESTS)
EXTRA_DIST += tests/groups/linear_torch.py tests/groups/env_learner.sh examples/groups/linear_group.py \
	examples/groups/count_shard
GROUP_TESTS += tests/groups/groups-checkpoint.sh
EXTRA_DIST += tests/groups/ckpt_torch.py
