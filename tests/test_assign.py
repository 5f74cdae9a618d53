"Label assignment: points, centre sampling, multi-label per-query targets, against the plain-loop oracle."
import pytest, torch
from unimd.core import UniMDError
from unimd.assign import (STRIDES, REGRESSION_RANGES, level_lengths, make_points, segment_positive, assign_targets,
                          assign_targets_loop)


def points(T):
    return make_points(level_lengths(T), STRIDES, REGRESSION_RANGES)


def random_segments(g, B, Q, T, n_max=4):
    "Ground truth on a 0.25-step grid (exact in float32): empty, zero-length, nested, before and beyond the video."
    out = []
    for _ in range(B):
        row = []
        for _ in range(Q):
            n = int(torch.randint(0, n_max + 1, (1,), generator=g))
            a = torch.randint(-8 * 4, T * 4, (n,), generator=g) / 4
            L = torch.randint(0, T * 5, (n,), generator=g) / 4
            if n > 1 and bool(torch.rand(1, generator=g) < 0.3): L[0] = 0                # a zero-length segment
            row.append(torch.stack([a, a + L], 1))
        out.append(row)
    return out


def test_points_layout():
    pts = points(64)
    assert pts.shape == (126, 4)
    assert pts[:64, 0].tolist() == list(range(64))
    assert pts[64:96, 0].tolist() == list(range(0, 64, 2))
    assert pts[-2:, 0].tolist() == [0, 32] and pts[-1, 2] == float('inf')
    for lvl, (lo, hi) in enumerate(REGRESSION_RANGES):
        rows = pts[pts[:, 3] == 2 ** lvl]
        assert (rows[:, 1] == lo).all() and (rows[:, 2] == hi).all()


def test_points_errors():
    with pytest.raises(UniMDError, match='multiple of the largest stride'): level_lengths(48)
    with pytest.raises(UniMDError, match='one of each'): make_points([4, 2], [1, 2, 4], [(0, 4), (4, 8), (8, 16)])


def test_hand_cases():
    pts = points(32)
    pos = segment_positive(pts, torch.tensor([[10., 14.], [0., 20.], [5., 5.], [-40., 80.]]))
    at = lambda k: [(int(pts[p, 3]), int(pts[p, 0])) for p in pos[:, k].nonzero()[:, 0]]
    assert at(0) == [(1, 11), (1, 12), (1, 13)]
    assert at(1) == [(4, 8), (4, 12), (8, 16)]                                             # 16 = range end, included
    assert at(2) == []                                                                     # zero length: no inside
    assert at(3) == [(16, 16), (32, 0)]                                                    # longer than the video


def test_multilabel_and_shortest():
    pts = points(32)
    segs = [[torch.tensor([[10., 14.]]), torch.tensor([[10., 14.]]), torch.tensor([[9.5, 14.5], [10., 14.]])]]
    cls_t, reg_t = assign_targets(pts, segs, torch.ones(1, 3, dtype=torch.bool))
    assert cls_t[0, 12].tolist() == [1, 1, 1]                                              # one point, three queries
    assert reg_t[0, 12, 2].tolist() == [2, 2]                                              # the shorter segment
    assert reg_t[0, 11, 2].tolist() == [1, 3]


def test_equal_lengths_keep_first():
    pts = points(32)
    segs = [[torch.tensor([[10., 14.], [11., 15.]])]]                                     # same length, both cover t=12
    cls_t, reg_t = assign_targets(pts, segs, torch.ones(1, 1, dtype=torch.bool))
    c2, r2 = assign_targets_loop(pts, segs, torch.ones(1, 1, dtype=torch.bool))
    assert reg_t[0, 12, 0].tolist() == [2, 2] and torch.equal(reg_t, r2) and torch.equal(cls_t, c2)


@pytest.mark.parametrize('seed', range(6))
def test_matches_loop_oracle(seed):
    g = torch.Generator().manual_seed(seed)
    T, B, Q = 128, 3, 4
    pts = points(T)
    segs = random_segments(g, B, Q, T)
    qmask = torch.rand(B, Q, generator=g) > 0.25
    qmask[:, 0] = True
    cls_t, reg_t = assign_targets(pts, segs, qmask)
    c2, r2 = assign_targets_loop(pts, segs, qmask)
    assert cls_t.shape == (B, len(pts), Q) and reg_t.shape == (B, len(pts), Q, 2)
    assert torch.equal(cls_t, c2)
    torch.testing.assert_close(reg_t, r2, atol=1e-6, rtol=0)
    assert (reg_t[cls_t > 0] >= 0).all() and (reg_t[cls_t == 0] == 0).all()


def test_radius_changes_positives():
    pts = points(64)
    segs = [[torch.tensor([[0., 60.]])]]
    q = torch.ones(1, 1, dtype=torch.bool)
    n = [int(assign_targets(pts, segs, q, center_radius=r)[0].sum()) for r in (0.5, 1.5, 3.0)]
    assert n[0] < n[1] <= n[2]
    assert torch.equal(assign_targets(pts, segs, q, 3.0)[0], assign_targets_loop(pts, segs, q, 3.0)[0])


def test_edge_cases():
    pts = points(32)
    q = torch.ones(2, 2, dtype=torch.bool)
    none = [[torch.zeros(0, 2), torch.zeros(0, 2)], [torch.zeros(0, 2)]]                  # fewer lists than slots too
    cls_t, reg_t = assign_targets(pts, none, q)
    assert cls_t.shape == (2, len(pts), 2) and cls_t.sum() == 0 and reg_t.abs().sum() == 0
    padded = [[torch.tensor([[10., 14.]]), torch.tensor([[10., 14.]])], [[[10., 14.]], []]]
    cls_t, _ = assign_targets(pts, padded, torch.tensor([[True, False], [True, True]]))
    assert cls_t[0, :, 1].sum() == 0 and cls_t[0, :, 0].sum() == 3 and cls_t[1, :, 0].sum() == 3
    zero = [[torch.tensor([[7., 7.]])]]
    assert assign_targets(pts, zero, torch.ones(1, 1, dtype=torch.bool))[0].sum() == 0
    assert assign_targets(pts, [[torch.tensor([[10., 14.]], dtype=torch.float64)]], q[:1, :1])[0].sum() == 3


def test_bad_input():
    pts = points(32)
    q = torch.ones(1, 1, dtype=torch.bool)
    with pytest.raises(UniMDError, match='video 0, query 0'): assign_targets(pts, [[torch.tensor([[5., 2.]])]], q)
    with pytest.raises(UniMDError, match='not finite'): assign_targets(pts, [[torch.tensor([[float('inf'), 2.]])]], q)
    with pytest.raises(UniMDError, match='one list of segments per video'): assign_targets(pts, [], q)
    with pytest.raises(UniMDError, match='query slots'): assign_targets(pts, [[[], []]], q)
