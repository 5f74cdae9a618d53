"Decoding: batched Soft-NMS against the per-query loop, score voting, per-video cap, edge cases."
import math
import pytest, torch
from unimd.core import UniMDError
from unimd.assign import STRIDES, REGRESSION_RANGES, level_lengths, make_points
from unimd.decode import soft_nms, soft_nms_loop, score_voting, decode, decode_loop


def candidates(seed, Q, N, T=300., dtype=torch.float64, zero_frac=0.1):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(Q, N, generator=g, dtype=dtype) * T
    d = torch.rand(Q, N, 2, generator=g, dtype=dtype) * 40
    scores = 10 ** (-3.5 * torch.rand(Q, N, generator=g, dtype=dtype))
    scores[torch.rand(Q, N, generator=g) < zero_frac] = 0                                  # padded / filtered slots
    return torch.stack([t - d[..., 0], t + d[..., 1]], -1), scores


@pytest.mark.parametrize('method', ['gaussian', 'linear', 'hard'])
@pytest.mark.parametrize('seed', range(3))
def test_soft_nms_matches_loop_float64(method, seed):
    segs, scores = candidates(seed, 8, 300)
    fast = soft_nms(segs, scores, 0.7, 0.3, 0.001, 500, method)
    ref = soft_nms_loop(segs, scores, 0.7, 0.3, 0.001, 500, method)
    assert torch.equal(fast[2], ref[2])                                                    # same picks, same order
    torch.testing.assert_close(fast[1], ref[1], atol=1e-9, rtol=0)
    torch.testing.assert_close(fast[0], ref[0], atol=1e-9, rtol=0)


@pytest.mark.parametrize('seed', range(3))
def test_soft_nms_matches_loop_float32(seed):
    "float32: near-ties can swap two neighbouring picks, so compare the kept sets and their scores to 1e-5."
    segs, scores = candidates(seed, 20, 400, dtype=torch.float32)
    (_, s1, i1), (_, s2, i2) = soft_nms(segs, scores, 0.9, 0.1, 0.001, 400), soft_nms_loop(segs, scores, 0.9, 0.1, 0.001, 400)
    for q in range(20):
        a = sorted((int(i), float(s)) for i, s in zip(i1[q], s1[q]) if i >= 0)
        b = sorted((int(i), float(s)) for i, s in zip(i2[q], s2[q]) if i >= 0)
        assert [i for i, _ in a] == [i for i, _ in b]
        assert max((abs(x[1] - y[1]) for x, y in zip(a, b)), default=0) < 1e-5


def test_soft_nms_hand_case():
    segs = torch.tensor([[[0., 10.], [0., 5.], [20., 30.]]])
    _, sc, idx = soft_nms(segs, torch.tensor([[0.9, 0.8, 0.6]]), sigma=0.5)
    assert idx.tolist() == [[0, 2, 1]]
    torch.testing.assert_close(sc, torch.tensor([[0.9, 0.6, 0.8 * math.exp(-0.25 / 0.5)]]))


def test_soft_nms_cap_is_prefix_and_order():
    segs, scores = candidates(7, 5, 200)
    full = soft_nms(segs, scores, 0.5, 0.1, 0.001, 10_000)
    capped = soft_nms(segs, scores, 0.5, 0.1, 0.001, 30)
    assert torch.equal(capped[2], full[2][:, :30]) and torch.equal(capped[1], full[1][:, :30])
    kept = full[2] >= 0
    assert (kept[:, :-1] >= kept[:, 1:]).all()                                             # empty slots at the end
    assert (full[1][kept] >= 0.001).all() and (full[1][~kept] == 0).all()


def test_soft_nms_edge_cases():
    e = soft_nms(torch.zeros(3, 0, 2), torch.zeros(3, 0))
    assert e[1].shape == (3, 0) and e[2].shape == (3, 0)
    assert soft_nms(torch.zeros(0, 4, 2), torch.zeros(0, 4))[2].shape == (0, 0)
    assert (soft_nms(torch.rand(2, 5, 2), torch.zeros(2, 5))[2] == -1).all()               # no candidate
    zero_len = torch.tensor([[[3., 3.], [3., 3.], [1., 4.]]])                               # union 0: no NaN
    _, sc, idx = soft_nms(zero_len, torch.tensor([[0.9, 0.8, 0.7]]))
    assert torch.isfinite(sc).all() and idx.tolist() == [[0, 1, 2]]
    torch.testing.assert_close(sc, soft_nms_loop(zero_len, torch.tensor([[0.9, 0.8, 0.7]]))[1])
    below = soft_nms(torch.tensor([[[0., 1.], [2., 3.]]]), torch.tensor([[0.5, 0.0005]]), min_score=0.001)
    assert below[2].tolist() == [[0, -1]]
    with pytest.raises(UniMDError, match='sigma > 0'): soft_nms(zero_len, torch.ones(1, 3), sigma=0)


def test_score_voting():
    cand = torch.tensor([[[0., 10.], [1., 11.], [5., 15.]]])
    sc = torch.tensor([[0.9, 0.8, 0.7]])
    w = torch.tensor([0.9 * 1, 0.8 * 9 / 11, 0.])
    torch.testing.assert_close(score_voting(torch.tensor([[0., 10.]]), cand, sc, 0.7),
                               (w[:, None] * cand[0]).sum(0, keepdim=True) / w.sum())
    assert score_voting(torch.tensor([[0., 10.]]), cand, sc, 1.01).tolist() == [[0., 10.]]  # nobody votes: unchanged


def head_outputs(seed, B=2, Q=6, T=128):
    g = torch.Generator().manual_seed(seed)
    pts = make_points(level_lengths(T), STRIDES, REGRESSION_RANGES)
    P = len(pts)
    logits = torch.randn(B, P, Q, generator=g) * 2 - 3
    reg = torch.rand(B, P, Q, 2, generator=g) * 4
    pmask = torch.ones(B, P, dtype=torch.bool)
    pmask[-1] = pts[:, 0] < T * 3 // 4
    qmask = torch.rand(B, Q, generator=g) > 0.3
    qmask[:, 0] = True
    return logits, reg, pts, pmask, qmask


@pytest.mark.parametrize('kw', [dict(), dict(max_seg=25, pre_nms_topk=50, sigma=0.9),
                                dict(voting_thresh=0, method='hard', iou_threshold=0.5),
                                dict(score_thresh=0.2, duration_thresh=2.0, voting_thresh=0.5)])
def test_decode_matches_loop(kw):
    logits, reg, pts, pmask, qmask = head_outputs(0)
    fast, ref = decode(logits, reg, pts, pmask, qmask, **kw), decode_loop(logits, reg, pts, pmask, qmask, **kw)
    for b in range(len(fast)):
        for q in range(len(fast[b])):
            assert fast[b][q].shape == ref[b][q].shape
            torch.testing.assert_close(fast[b][q], ref[b][q].float(), atol=1e-4, rtol=0)


def test_decode_contract():
    logits, reg, pts, pmask, qmask = head_outputs(1)
    out = decode(logits, reg, pts, pmask, qmask, max_seg=30)
    assert len(out) == 2 and all(len(v) == logits.shape[2] for v in out)
    for b in range(2):
        assert sum(len(r) for r in out[b]) <= 30
        for q, r in enumerate(out[b]):
            assert r.shape[1] == 3
            if not qmask[b, q]: assert len(r) == 0
            assert (r[:, 2].diff() <= 0).all() and (r[:, 1] > r[:, 0]).all()
    none = decode(logits, reg, pts, torch.zeros_like(pmask), qmask)
    assert all(len(r) == 0 for v in none for r in v)
    empty = decode(logits, reg, pts, pmask, torch.zeros_like(qmask))
    assert all(len(r) == 0 for v in empty for r in v)


def test_decode_segments_in_level0_steps():
    "Without voting, the kept moment is exactly t - d_s * stride .. t + d_e * stride."
    pts = make_points(level_lengths(64), STRIDES, REGRESSION_RANGES)
    P = len(pts)
    logits = torch.full((1, P, 1), -20.)
    reg = torch.zeros(1, P, 1, 2)
    p = 64 + 32 + 5                                                                         # level 2, t = 20, stride 4
    logits[0, p, 0], reg[0, p, 0] = 3.0, torch.tensor([1.5, 2.0])
    out = decode(logits, reg, pts, torch.ones(1, P, dtype=torch.bool), torch.ones(1, 1, dtype=torch.bool), voting_thresh=0)
    torch.testing.assert_close(out[0][0], torch.tensor([[20 - 6., 20 + 8., 1 / (1 + math.exp(-3))]]))
