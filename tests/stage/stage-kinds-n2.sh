#!/bin/bash
# Every stage (clean, learn, predict) with every script kind (executable, Python, C plugin) on mpirun -n 2.
NP=2
. ./tests/env.sh
. "$top_srcdir/tests/stage/kinds-body.sh"
