"""Batched Soft-NMS (`unimd.decode.soft_nms`) against the per-query loop reference (`soft_nms_loop`), same run, same data.

The shape is one Ego4D Moment Queries test video as the official configuration decodes it:
- 110 class queries;
- candidates: an MQ clip is 8 minutes, 900 feature steps (VideoMAE, 16 frames at 30 fps), so 900+450+225+113+57+29 =
  1774 valid points over the 6 levels. With a score threshold of 0.001 and a per-query pre-NMS top-k of 2000, a query
  keeps every point whose score passes the threshold, so 1774 is the per-query count when they all do: the worst case,
  and the "about 2000" of the task. Segments are built as `decode` builds them, t - d_s*stride .. t + d_e*stride with
  distances of 0.25-4 strides (what the regression ranges train), and scores are log-uniform in [0.001, 1] (what passes
  the threshold spans three decades);
- Ego4D's test settings: Gaussian, sigma 0.9, min_score 0.001, up to 2000 kept per query.

Usage: python benchmarks/soft_nms.py [--json] [--candidates 1774] [--queries 110] [--threads 1]
Prints s_per_video (batched), s_per_video_loop (reference) and their ratio, plus a third timing: the batched function
called once per query (what batching over queries alone buys, with the same kernel).
"""
import argparse, json, sys, time
import torch
from unimd.assign import make_points, level_lengths, STRIDES, REGRESSION_RANGES
from unimd.decode import soft_nms, soft_nms_loop
from timing import timed


def ego4d_candidates(queries: int, steps: int, candidates: int, seed: int = 0):
    "Candidate lists [Q, N, 2] and scores [Q, N] built from the points of a `steps`-long clip, as `decode` builds them."
    g = torch.Generator().manual_seed(seed)
    T = -(-steps // 32) * 32
    pts = make_points(level_lengths(T), STRIDES, REGRESSION_RANGES)
    pts = pts[pts[:, 0] < steps]                                                        # valid points only
    pick = torch.stack([torch.randperm(len(pts), generator=g)[:candidates] for _ in range(queries)])   # [Q, N]
    t, stride = pts[pick, 0], pts[pick, 3]                                              # [Q, N]
    d = 0.25 + 3.75 * torch.rand(queries, pick.shape[1], 2, generator=g)                # [Q, N, 2] in strides
    segs = torch.stack([t - d[..., 0] * stride, t + d[..., 1] * stride], -1)            # [Q, N, 2]
    scores = 10 ** (-3 * torch.rand(queries, pick.shape[1], generator=g))               # [Q, N]
    return segs, scores, len(pts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--queries', type=int, default=110)
    ap.add_argument('--steps', type=int, default=900)
    ap.add_argument('--candidates', type=int, default=1774, help='per query (at most the number of valid points)')
    ap.add_argument('--sigma', type=float, default=0.9)
    ap.add_argument('--min-score', type=float, default=0.001)
    ap.add_argument('--max-out', type=int, default=2000)
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    segs, scores, n_points = ego4d_candidates(a.queries, a.steps, a.candidates, a.seed)
    args = (a.sigma, 0.1, a.min_score, a.max_out)

    t_fast, (_, s_fast, i_fast) = timed(lambda: soft_nms(segs, scores, *args), a.repeat)
    t_loop, (_, s_loop, i_loop) = timed(lambda: soft_nms_loop(segs, scores, *args), max(1, a.repeat - 1))
    t_per_q, _ = timed(lambda: [soft_nms(segs[q:q + 1], scores[q:q + 1], *args) for q in range(a.queries)], 1)

    # same kept candidates with the same scores (compared as sets: float32 near-ties may swap two adjacent picks)
    key = lambda i, s: sorted((int(x), float(y)) for x, y in zip(i, s) if x >= 0)
    same = [[x for x, _ in key(i_fast[q], s_fast[q])] == [x for x, _ in key(i_loop[q], s_loop[q])]
            for q in range(a.queries)]
    diff = max((abs(x[1] - y[1]) for q in range(a.queries)
                for x, y in zip(key(i_fast[q], s_fast[q]), key(i_loop[q], s_loop[q]))), default=0.0)
    res = dict(queries=a.queries, candidates=int(scores.shape[1]), valid_points=n_points, sigma=a.sigma,
               min_score=a.min_score, max_out=a.max_out, threads=a.threads,
               kept_per_query=round(float((i_fast >= 0).sum(1).float().mean()), 1),
               s_per_video=round(t_fast, 4), s_per_video_loop=round(t_loop, 4), ratio=round(t_loop / t_fast, 2),
               s_per_video_batched_kernel_per_query=round(t_per_q, 4),
               same_kept_sets=all(same), max_score_diff=diff, torch=torch.__version__)
    if a.json: print(json.dumps(res))
    else:
        for k, v in res.items(): print(f'{k:>38}: {v}')
    return 0 if all(same) and diff < 1e-5 else 1


if __name__ == '__main__':
    sys.exit(main())
