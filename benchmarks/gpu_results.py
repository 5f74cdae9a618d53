"""The latest GPU figures written by benchmarks/gpu.sh, for the notebooks' GPU-figure cells.

    import sys; sys.path.insert(0, '../benchmarks'); from gpu_results import latest, figure
    r = latest()                        # dict of the newest real-device JSON, or None if no device has run it yet
    figure('stages.steps.bf16.s')       # one value by its dotted path, or None
    print(describe('steps'))            # one line of a stage's figures, or "no GPU run recorded yet: ..."
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


NO_RUN = 'no GPU run recorded yet: `bash benchmarks/gpu.sh` on a device writes benchmarks/results/gpu-<device>-<date>.json'


def _gib(x): return 'n/a' if x is None else f'{x:.1f} GiB'


def _steps(st, study=None):
    sh, f, b, c = st['shape'], st['fp32'], st['bf16'], st['bf16_compile']
    mfu = f", bf16 MFU {b['mfu']:.1%} of {st['peak_table_key']}'s peak" if b.get('mfu') is not None else ''
    return (f"training step at batch {sh['batch']}, T {sh['T']}, {sh['classes']} classes + {sh['sentences']} sentences "
            f"({st['step_gflop']:.0f} GFLOP): fp32 {f['s']:.3f} s, bf16 {b['s']:.3f} s ({st['speedup_bf16_vs_fp32']:.2f}x), "
            f"bf16 + torch.compile {c['s']:.3f} s ({st['speedup_compile_vs_bf16']:.2f}x more; compiling {c['compile_and_first_step_s']:.0f} s); "
            f"peak memory {_gib(f['peak_gib'])} / {_gib(b['peak_gib'])} / {_gib(c['peak_gib'])}{mfu}")


def _ablations(st, study=None):
    runs = [r for r in st['runs'] if study is None or r['study'] == study]
    return f"one bf16 training step per run{f' of {study}' if study else ''}: " + '; '.join(
        f"{r['run']} ({r['mode']}, {r['queries']} queries) {r['s']:.3f} s, {_gib(r['peak_gib'])}" for r in runs)


def _extract(st, study=None):
    return f"{st['model']} image features: {st['frames_per_s']:.0f} frames/s ({st['frames']} frames, {st['dtype']})"


def _ddp(st, study=None):
    if st['backend'] is None: return f"two-process DDP step failed with every backend tried ({', '.join(st['tried'])})"
    ranks = st['ranks']
    return (f"two-process DDP step ({st['backend']}, one device): {max(r['s'] for r in ranks):.3f} s, "
            f"gradients equal across ranks: {all(r['grads_equal_across_ranks'] for r in ranks)}")


FORMATS = dict(steps=_steps, ablations=_ablations, extract=_extract, ddp=_ddp)


def describe(stage, results=RESULTS, dry_run=False, study=None):
    "One line of the latest run's figures of `stage` ('steps', 'ablations', 'extract', 'ddp'), or NO_RUN when none ran."
    r = latest(results, dry_run)
    if r is None: return NO_RUN
    head, st = f"{r['device']} ({r['date'][:10]}, torch {r['torch']})", r['stages'].get(stage)
    if st is None: return f'{head}: the run has no {stage} stage'
    if 'error' in st: return f"{head}: {stage} failed: {st['error']}"
    if 'skipped' in st: return f"{head}: {stage} skipped ({st['skipped']})"
    return f'{head}: {FORMATS[stage](st, study)}'
