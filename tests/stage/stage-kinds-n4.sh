#!/bin/bash
# Every stage (clean, learn, predict) with every script kind (executable, Python, C plugin) on mpirun -n 4.
NP=4
. ./tests/env.sh
. "$top_srcdir/tests/stage/kinds-body.sh"
