"""Predictor throughput on long videos: seconds per hour of video, peak memory, and whether cost grows linearly.

For each length (default 1, 10, 60, 120 minutes of Ego4D features: 1024-d every 16 / 30 s, so 120 min = 13,500
steps) a fresh process builds a UniMD of configs/ego4d.yaml (random weights, seed 0: the cost does not depend on the
weights' values), encodes random features with `Predictor.encode` (sliding windows of 4 x max_seq_len steps, a
quarter overlapping) and asks 110 class names + 20 sentences in one `Predictor.detect` call (hash text encoder, 512-d:
offline). Per length: encode and detect seconds, seconds per hour of video, peak RSS (getrusage) above the RSS
before encoding, and the peak of Python-level allocations (tracemalloc; torch tensors are not in it). Then a
least-squares line time = a + b * minutes, its R^2, and the log-log slope between the two longest videos
(1.0 = linear), and the same line against the steps the windows actually process (window count x padded window
length): `plan_windows` takes the fewest windows and shrinks them to cover the video at the overlap, so the work
grows with the length (up to window / (window - overlap) steps per step), not in steps of whole windows. A fresh process per length keeps each peak its own (--quick: one process).

    python benchmarks/long_video.py [--json] [--minutes 1 10 60 120] [--threads N]
    python benchmarks/long_video.py --quick --json     # tiny model, 1-8 minutes, for the tests
"""
import argparse, json, os, resource, subprocess, sys, time, tracemalloc
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = [f'the person picks up the {o} and puts it {p}' for o in ('cup', 'knife', 'phone', 'bag', 'pan') for p in
             ('on the table', 'in the sink', 'back', 'away')]        # 20 sentences


def one(minutes, quick, threads):
    "Measure one length in this process; returns a dict."
    import torch
    from unimd.model import ModelConfig, UniMD
    from unimd.predictor import Predictor
    from unimd.features import FeatureGrid
    from unimd.text import HashTextEncoder
    import yaml
    if threads: torch.set_num_threads(threads)
    cfg_file = ROOT / 'configs' / 'ego4d.yaml'
    cfg = ModelConfig.from_yaml(cfg_file)
    n_classes = 110
    if quick:
        cfg = ModelConfig(**{**cfg.to_dict(), 'feat_dim': 32, 'channels': 32, 'reg_mlp_hidden': 32, 'max_seq_len': 64,
                             'pre_nms_topk': 500, 'max_seg': 100})
        n_classes = 8
    d = yaml.safe_load(open(cfg_file))['data']
    grid = FeatureGrid(d['fps'], d['feat_stride'], d['frames_per_clip'])
    torch.manual_seed(0)
    model = UniMD(cfg).eval()
    text = HashTextEncoder(cfg.text_dim)
    pred = Predictor(model, text, grid, [f'class {c}' for c in range(n_classes)], device='cpu')
    T = int(round(minutes * 60 / grid.dt))
    x = np.random.default_rng(0).standard_normal((T, cfg.feat_dim), dtype=np.float32)
    queries = pred.classes + SENTENCES
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter(); pred.encode(x); t1 = time.perf_counter()
    df = pred.detect(queries, top_k=5); t2 = time.perf_counter()
    py_peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    processed = len(pred.windows) * pred.pyramid[0][0].shape[-1]  # window count x padded window length: the work done
    return dict(minutes=minutes, steps=T, windows=len(pred.windows), processed_steps=processed, queries=len(queries), rows=len(df),
                encode_s=t1 - t0, detect_s=t2 - t1, total_s=t2 - t0, s_per_hour=(t2 - t0) / minutes * 60,
                ms_per_processed_step=1e3 * (t2 - t0) / processed,
                peak_rss_mib_above_start=(rss1 - rss0) / 1024, peak_rss_mib=rss1 / 1024, python_peak_mib=py_peak / 2**20,
                threads=torch.get_num_threads(), load=round(os.getloadavg()[0], 2))


def linear_fit(xs, ys):
    "(intercept, slope, R^2) of the least-squares line."
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    b, a = np.polyfit(xs, ys, 1)
    r2 = 1 - ((ys - (a + b * xs)) ** 2).sum() / max(((ys - ys.mean()) ** 2).sum(), 1e-12)
    return float(a), float(b), float(r2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--minutes', type=float, nargs='+', default=None)
    ap.add_argument('--threads', type=int, default=None)
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--one', type=float, help=argparse.SUPPRESS)  # internal: measure one length in this process
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args(argv)
    if a.one is not None:
        print(json.dumps(one(a.one, a.quick, a.threads))); return 0
    minutes = a.minutes or ([1, 2, 4, 8] if a.quick else [1, 10, 60, 120])
    rows = []
    for m in minutes:
        if a.quick:                                                # tiny model: in this process (the peaks then accumulate)
            rows.append(one(m, True, a.threads)); continue
        cmd = [sys.executable, __file__, '--one', str(m)] + (['--quick'] if a.quick else []) + (['--threads', str(a.threads)] if a.threads else [])
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode: raise SystemExit(f'{m} min failed: {out.stderr.strip()[-2000:]}')
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    xs = [r['minutes'] for r in rows]
    fits = {k: linear_fit(xs, [r[k] for r in rows]) for k in ('total_s', 'encode_s', 'detect_s', 'peak_rss_mib_above_start')}
    (m1, t1), (m2, t2) = [(r['minutes'], r['total_s']) for r in rows[-2:]]
    work = linear_fit([r['processed_steps'] for r in rows], [r['total_s'] for r in rows])
    res = dict(rows=rows, fit={k: dict(intercept=a_, slope_per_minute=b, r2=r2) for k, (a_, b, r2) in fits.items()},
               fit_vs_processed_steps=dict(intercept=work[0], ms_per_step=1e3 * work[1], r2=work[2]),
               loglog_slope_last_two=float(np.log(t2 / t1) / np.log(m2 / m1)),
               s_per_hour_longest=rows[-1]['s_per_hour'], quick=a.quick)
    res['linear'] = bool(work[2] > 0.98)                           # linear in the work the windows do
    if a.json: print(json.dumps(res))
    else:
        print(f"{'min':>6s} {'steps':>6s} {'win':>4s} {'encode s':>9s} {'detect s':>9s} {'s/hour':>8s} {'peak MiB':>9s} {'load':>5s}")
        for r in rows:
            print(f"{r['minutes']:6g} {r['steps']:6d} {r['windows']:4d} {r['encode_s']:9.2f} {r['detect_s']:9.2f} "
                  f"{r['s_per_hour']:8.1f} {r['peak_rss_mib_above_start']:9.0f} {r['load']:5.2f}")
        f = res['fit']['total_s']
        w = res['fit_vs_processed_steps']
        print(f"time = {w['intercept']:.2f} s + {w['ms_per_step']:.2f} ms per processed step (R^2 {w['r2']:.4f})")
        print(f"time = {f['intercept']:.2f} + {f['slope_per_minute']:.3f} s/min (R^2 {f['r2']:.4f}); "
              f"log-log slope {res['loglog_slope_last_two']:.2f}; linear: {res['linear']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
