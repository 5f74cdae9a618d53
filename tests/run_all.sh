#!/usr/bin/env bash
# Every test of the project: the notebooks (nbdev_test, which runs each notebook top to bottom) and tests/ (pytest).
# The annotation files that may not be redistributed are read from ../shared/data unless UNIMD_DATA says otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg
export UNIMD_DATA="${UNIMD_DATA:-$(cd .. && pwd)/shared/data}"
# two notebooks run at once, one thread each: two torch processes with two threads each on 2 cores thrash
OMP_NUM_THREADS=1 nbdev_test --n_workers 2 || { echo "nbdev_test failed"; exit 1; }
pytest -q tests "$@"
rc=$?
# pytest exits 5 when it collected no test: that is a broken suite here, never a pass.
[ $rc -eq 5 ] && echo "pytest collected no tests" && exit 1
exit $rc
