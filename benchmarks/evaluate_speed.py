"""Fast evaluation (`unimd.evaluate`) against the plain-loop reference (`tests/reference_eval.py`), same run, same data.

The data is synthetic at Charades test scale: 1,863 videos of 10-50 s, about 9 ground-truth actions per video
(~17k, lengths as Charades: 2-20 s) over 157 classes, and ~23k predictions (noisy copies of half the ground truth
plus random segments, some of them in the wrong class), scores rounded to 3 decimals so that ties occur.
Timed: ActivityNet-style TAD mAP (tIoU 0.5:0.05:0.95) and Charades_v1_localize frame mAP, each from `TadTable`s
(file parsing excluded). The fast path takes the best of --repeat runs; the reference runs once. Both must agree to 1e-6.

Usage: python benchmarks/evaluate_speed.py [--json] [--videos 1863] [--repeat 3] [--seed 0]
"""
import argparse, json, sys, time
from pathlib import Path
import numpy as np
from unimd.evaluate import TAD_THRESHOLDS, tad_table, tad_average_precision, charades_map

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests'))
import reference_eval as ref
from timing import timed


def charades_like(videos=1863, classes=157, seed=0):
    "Ground-truth rows (vid, label, s, e), prediction rows (vid, label, s, e, score) and {vid: duration}."
    rng = np.random.default_rng(seed)
    gt, pred, durations = [], [], {}
    for v in range(videos):
        vid, dur = f'V{v:05d}', float(rng.uniform(10, 50))
        durations[vid] = round(dur, 2)
        for _ in range(rng.poisson(9)):
            s = float(rng.uniform(0, dur - 2)); e = min(dur, s + float(rng.uniform(2, 20)))
            label = f'c{rng.integers(classes):03d}'
            gt.append((vid, label, round(s, 1), round(e, 1)))
            if rng.random() < 0.5:                                  # a noisy detection of this instance
                j = rng.normal(0, 1.5, 2)
                lab = label if rng.random() < 0.8 else f'c{rng.integers(classes):03d}'
                pred.append((vid, lab, round(s + j[0], 2), round(e + j[1], 2), round(float(rng.random()), 3)))
        for _ in range(rng.poisson(8)):                             # background false positives
            s = float(rng.uniform(0, dur - 1))
            pred.append((vid, f'c{rng.integers(classes):03d}', round(s, 2), round(s + float(rng.uniform(1, 15)), 2),
                         round(float(rng.random()) * 0.7, 3)))
    return gt, pred, durations


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--videos', type=int, default=1863)
    ap.add_argument('--classes', type=int, default=157)
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args(argv)
    gt, pred, durations = charades_like(a.videos, a.classes, a.seed)
    g, p = tad_table([(*r, 1.0) for r in gt], durations), tad_table(pred)
    th = TAD_THRESHOLDS['activitynet']
    tad_fast_s, (ap_fast, _) = timed(lambda: tad_average_precision(g, p, th), a.repeat)
    tad_ref_s, (ap_ref, _) = timed(lambda: ref.tad_ap(gt, pred, list(th)), 1)
    frame_fast_s, fm_fast = timed(lambda: charades_map(g, p), a.repeat)
    frame_ref_s, fm_ref = timed(lambda: ref.charades_map(gt, durations, pred), 1)
    tad_diff = float(np.abs(ap_fast - np.array(ap_ref)).max())
    frame_diff = abs(fm_fast - fm_ref)
    assert tad_diff < 1e-6 and frame_diff < 1e-6, (tad_diff, frame_diff)
    res = dict(videos=len(durations), gt=len(gt), predictions=len(pred), classes=a.classes,
               tad_map=100 * float(ap_fast.mean()), frame_map=100 * fm_fast,
               tad_s=tad_fast_s, tad_ref_s=tad_ref_s, tad_speedup=tad_ref_s / tad_fast_s,
               frame_s=frame_fast_s, frame_ref_s=frame_ref_s, frame_speedup=frame_ref_s / frame_fast_s,
               total_s=tad_fast_s + frame_fast_s, max_abs_diff=max(tad_diff, frame_diff))
    if a.json: print(json.dumps(res))
    else:
        print(f"{res['videos']} videos, {res['gt']} GT, {res['predictions']} predictions, {a.classes} classes")
        print(f"TAD mAP (ActivityNet thresholds) {res['tad_map']:.3f}: fast {tad_fast_s:.3f} s, "
              f"reference {tad_ref_s:.2f} s, {res['tad_speedup']:.0f}x")
        print(f"Charades frame mAP {res['frame_map']:.3f}: fast {frame_fast_s:.3f} s, "
              f"reference {frame_ref_s:.2f} s, {res['frame_speedup']:.0f}x")
        print(f"fast total {res['total_s']:.3f} s; fast == reference to {res['max_abs_diff']:.1e}")


if __name__ == '__main__':
    main()
