"""The latest GPU figures written by benchmarks/gpu.sh, for the notebooks' GPU-figure cells.

    import sys; sys.path.insert(0, '../benchmarks'); from gpu_results import latest, figure
    r = latest()                        # dict of the newest real-device JSON, or None if no device has run it yet
    figure('stages.steps.bf16.s')       # one value by its dotted path, or None
"""
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / 'results'


def latest(results=RESULTS, dry_run=False):
    "The newest gpu-*.json under `results` (real devices only unless `dry_run`), or None."
    files = sorted(Path(results).glob('gpu-*.json'), key=lambda p: json.loads(p.read_text()).get('date', ''))
    runs = [json.loads(p.read_text()) for p in files]
    runs = [r for r in runs if r.get('dry_run', False) == dry_run]
    return runs[-1] if runs else None


def figure(path, results=RESULTS, dry_run=False):
    "The value at dotted `path` (e.g. 'stages.steps.bf16.s') of the latest run, or None when absent."
    r = latest(results, dry_run)
    for key in path.split('.'):
        if not isinstance(r, dict) or key not in r: return None
        r = r[key]
    return r
