EXTRA_DIST += examples/fashion-mnist.sh examples/configs examples/cleaners examples/learners examples/predictors \
	examples/plugins slurm/nemesyst.sbatch
