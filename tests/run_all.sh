#!/usr/bin/env bash
# Every test of the project: the notebooks (each run top to bottom, as nbdev_test does), then tests/ (pytest).
# The real annotation files (Charades and Ego4D may not be redistributed) are read from ../shared/data unless
# UNIMD_DATA says otherwise. Without them, the checks that read them skip (one line says so) and the rest run;
# UNIMD_REQUIRE_DATA=1 (CI) makes a missing folder, or any skipped data check, a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg
export UNIMD_DATA="${UNIMD_DATA:-$(cd .. && pwd)/shared/data}"
missing=""
for d in charades charades_sta anet anet_captions ego4d qvhighlights; do [ -d "$UNIMD_DATA/$d" ] || missing="$missing $d"; done
skip=()
if [ -n "$missing" ]; then
  if [ "${UNIMD_REQUIRE_DATA:-0}" = 1 ]; then
    echo "UNIMD_REQUIRE_DATA=1 but $UNIMD_DATA lacks:$missing (data/README.md says where to get each one)"; exit 1
  fi
  echo "the annotation files are not in $UNIMD_DATA (missing:$missing): the checks that read them skip; data/README.md says where to get them"
  skip=(--skip data)
fi
# two notebooks at once, one thread each: two torch processes with two threads each on 2 cores thrash
OMP_NUM_THREADS=1 python tests/run_notebooks.py --n_workers 2 "${skip[@]}"
nb=$?
OMP_NUM_THREADS=1 pytest -q tests "$@"
py=$?
# pytest exits 5 when it collected no test: that is a broken suite here, never a pass.
[ $py -eq 5 ] && echo "pytest collected no tests" && py=1
[ $nb -ne 0 ] && echo "some notebooks failed: see notebook failed: lines above"
[ $nb -eq 0 ] && [ $py -eq 0 ] && echo "all tests passed"
[ $nb -eq 0 ] && exit $py
exit 1
