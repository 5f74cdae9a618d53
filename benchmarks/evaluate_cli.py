"""`unimd evaluate tad` end to end at ActivityNet-1.3 validation scale: this tree's CLI against the CLI before the fast reader.

Ground truth: the real ActivityNet-1.3 validation split (4,926 videos, 7,654 instances, 200 classes) from the TSP csv
files in $UNIMD_DATA/anet, written as an ActivityNet json (subset 'validation'). Predictions: --per-video random
segments per video (default 86: 424k in all, the issue's 422k) with 6-decimal scores, as a 33 MB `results` json.
"Before" is `unimd/evaluate.py` at commit BASELINE (stdlib json, a Python check per value, numpy string sorts),
run from a temporary copy; "after" is the installed `unimd evaluate`. Both run as fresh processes (interpreter start,
imports, parsing, checks, metric), interleaved, best of --repeat; their JSON outputs must agree to 1e-9. Then the
phases of one in-process run of the new code. Load average is recorded: the machine is shared.

Usage: python benchmarks/evaluate_cli.py [--json] [--repeat 3] [--per-video 86] [--keep DIR]
"""
import argparse, csv, json, os, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np

BASELINE = '19e9012'                                             # last commit before the fast reader
ROOT = Path(__file__).resolve().parents[1]


def anet_val_files(folder, per_video=86, seed=0):
    "Write gt.json (real ActivityNet-1.3 validation) and pred.json (random detections) into `folder`."
    from unimd.data import find_file
    meta, tsp = find_file(None, 'anet', 'activitynet_v1-3_valid_metadata.csv'), find_file(None, 'anet', 'activitynet_v1-3_valid_tsp_groundtruth.csv')
    db = {r['filename'][2:-4]: {'subset': 'validation', 'duration': float(r['video-duration']), 'annotations': []}
          for r in csv.DictReader(open(meta))}
    for r in csv.DictReader(open(tsp)):
        if r['temporal-region-label'] == 'Action':
            db[r['video-name']]['annotations'].append({'segment': [float(r['t-start']), float(r['t-end'])], 'label': r['action-label']})
    classes = sorted({a['label'] for v in db.values() for a in v['annotations']})
    rng, res = np.random.default_rng(seed), {}
    for vid, v in db.items():
        d = v['duration']
        s = rng.uniform(0, d, per_video); e = np.minimum(d, s + rng.uniform(0.5, d / 2, per_video))
        res[vid] = [{'label': classes[c], 'score': round(float(p), 6), 'segment': [round(float(a), 2), round(float(b), 2)]}
                    for a, b, p, c in zip(s, e, rng.random(per_video), rng.integers(len(classes), size=per_video))]
    (folder / 'gt.json').write_text(json.dumps({'version': '1.3', 'database': db}))
    (folder / 'pred.json').write_text(json.dumps({'version': '1.3', 'results': res, 'external_data': {}}))
    return dict(videos=len(db), gt=sum(len(v['annotations']) for v in db.values()), classes=len(classes),
                predictions=sum(map(len, res.values())), pred_mb=round((folder / 'pred.json').stat().st_size / 2**20, 1))


def baseline_module(folder):
    "The evaluate module of commit BASELINE as `evaluate_before.py` in `folder` (relative imports made absolute)."
    src = subprocess.run(['git', 'show', f'{BASELINE}:unimd/evaluate.py'], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    (folder / 'evaluate_before.py').write_text(src.replace('from .core import', 'from unimd.core import'))


def run(cmd, env):
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode: raise SystemExit(f'{cmd[:3]} failed: {out.stderr.strip()}')
    return time.perf_counter() - t, json.loads(out.stdout)


def phases(folder):
    "Seconds of each phase of one in-process run of the new code (imports first, in a fresh interpreter)."
    code = f'''import json, time
t0 = time.perf_counter(); import unimd.cli, unimd.evaluate_cli as E; t1 = time.perf_counter()
g = E.read_tad_gt({str(folder / 'gt.json')!r}); t2 = time.perf_counter()
p = E.read_tad_pred({str(folder / 'pred.json')!r}); t3 = time.perf_counter()
g = E.scored_gt(g, None, 'activitynet'); E.unmatched_tad(g, p, 'activitynet'); t4 = time.perf_counter()
E.evaluate_tad(g, p, 'activitynet'); t5 = time.perf_counter()
print(json.dumps(dict(import_s=t1 - t0, read_gt_s=t2 - t1, read_pred_s=t3 - t2, subset_and_warnings_s=t4 - t3, metric_s=t5 - t4)))'''
    return json.loads(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--per-video', type=int, default=86)
    ap.add_argument('--keep', help='write the files here and keep them')
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args(argv)
    folder = Path(a.keep or tempfile.mkdtemp(prefix='unimd-evalcli-')); folder.mkdir(parents=True, exist_ok=True)
    sizes = anet_val_files(folder, a.per_video)
    baseline_module(folder)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(folder)}
    args = ['tad', '--benchmark', 'activitynet', '--gt', str(folder / 'gt.json'), '--pred', str(folder / 'pred.json'), '--json']
    new = [sys.executable, '-c', f"import sys; from unimd.cli import main; sys.exit(main(['evaluate', *{args!r}]))"]  # = `unimd evaluate ...`
    old = [sys.executable, '-c', f'import sys; from evaluate_before import cli_evaluate; sys.exit(cli_evaluate({args!r}))']
    load0, times = os.getloadavg()[0], {'new': [], 'old': []}
    for _ in range(a.repeat):                                      # interleaved: both see the same machine load
        for name, cmd in (('new', new), ('old', old)):
            s, out = run(cmd, env)
            times[name].append(s); times[f'{name}_res'] = out
    diff = max(abs(times['new_res'][k] - times['old_res'][k]) for k in times['old_res'])
    assert diff < 1e-9, f'new and old CLI disagree by {diff}'
    res = dict(**sizes, cli_s=round(min(times['new']), 3), cli_before_s=round(min(times['old']), 3),
               speedup=round(min(times['old']) / min(times['new']), 2), max_abs_diff=diff,
               phases={k: round(v, 3) for k, v in phases(folder).items()},
               load_before=round(load0, 2), load_after=round(os.getloadavg()[0], 2), cpus=os.cpu_count(), repeat=a.repeat)
    if a.json: print(json.dumps(res))
    else:
        print(f"{sizes['videos']} videos, {sizes['gt']} GT, {sizes['predictions']} predictions ({sizes['pred_mb']} MB)")
        print(f"unimd evaluate tad: {res['cli_s']} s now, {res['cli_before_s']} s at {BASELINE}: {res['speedup']}x (agree to {diff:.0e})")
        print('phases: ' + ', '.join(f'{k} {v}' for k, v in res['phases'].items()))
        print(f"load average {res['load_before']} -> {res['load_after']} on {res['cpus']} CPUs")


if __name__ == '__main__':
    main()
