#!/usr/bin/env bash
# Every test of the project: the notebooks (each run top to bottom, as nbdev_test does), then tests/ (pytest).
# Two inputs are not part of the repository: the real annotation files (Charades and Ego4D may not be redistributed),
# read from ../shared/data unless UNIMD_DATA says otherwise, and the official-code fixtures, read from
# ../shared/official unless UNIMD_OFFICIAL says otherwise. Without one, the checks that read it (notebook cells marked
# `#| data` / `#| official`, pytest tests that skip saying so) skip, one line says so, and the rest run;
# UNIMD_REQUIRE_DATA=1 (CI) makes a missing folder, or any such skip, a failure.
# The failures are listed again at the very end: notebook, cell and message, then pytest's own summary above them.
set -uo pipefail
cd "$(dirname "$0")/.."
# nbdev imports the deprecated pkg_resources: one warning per process buried the failure lines
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}ignore:pkg_resources is deprecated"
export UNIMD_DATA="${UNIMD_DATA:-$(cd .. && pwd)/shared/data}"
export UNIMD_OFFICIAL="${UNIMD_OFFICIAL:-$(cd .. && pwd)/shared/official}"
missing=""
for d in charades charades_sta anet anet_captions ego4d qvhighlights; do [ -d "$UNIMD_DATA/$d" ] || missing="$missing $d"; done
no_official=0
[ -f "$UNIMD_OFFICIAL/ego4d_small/checkpoint.pth.tar" ] || no_official=1
official_fix="set UNIMD_OFFICIAL to the folder of ego4d_small/ and names_shapes/"
skip=()
if [ "${UNIMD_REQUIRE_DATA:-0}" = 1 ] && { [ -n "$missing" ] || [ $no_official = 1 ]; }; then
  [ -n "$missing" ] && echo "UNIMD_REQUIRE_DATA=1 but $UNIMD_DATA lacks:$missing (data/README.md says where to get each one)"
  [ $no_official = 1 ] && echo "UNIMD_REQUIRE_DATA=1 but the official fixtures are not in $UNIMD_OFFICIAL ($official_fix)"
  exit 1
fi
if [ -n "$missing" ]; then
  echo "the annotation files are not in $UNIMD_DATA (missing:$missing): the checks that read them skip; data/README.md says where to get them"
  skip+=(data)
fi
if [ $no_official = 1 ]; then
  echo "the official fixtures are not in $UNIMD_OFFICIAL: the checks that read them skip ($official_fix)"
  skip+=(official)
fi
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
# two notebooks at once, one thread each: two torch processes with two threads each on 2 cores thrash
OMP_NUM_THREADS=1 python tests/run_notebooks.py --n_workers 2 --summary "$summary" ${skip[@]+--skip "${skip[@]}"}
nb=$?
OMP_NUM_THREADS=1 pytest -q tests "$@"
py=$?
# pytest exits 5 when it collected no test: that is a broken suite here, never a pass.
[ $py -eq 5 ] && echo "pytest collected no tests" && py=1
[ $py -ne 0 ] && echo "pytest failed (exit $py): see its short test summary above"
if [ $nb -ne 0 ]; then
  echo "some notebooks failed:"
  if [ -s "$summary" ]; then cat "$summary"; else echo "notebook runner failed (exit $nb): see its output above"; fi
fi
[ $nb -eq 0 ] && [ $py -eq 0 ] && echo "all tests passed"
[ $nb -eq 0 ] && exit $py
exit 1
