"Eq. 10: focal and DIoU terms, per-task normalisers, label smoothing, batches without positives."
import math
import pytest, torch, torchvision
from unimd.core import UniMDError
from unimd.assign import STRIDES, REGRESSION_RANGES, level_lengths, make_points, assign_targets
from unimd.losses import sigmoid_focal_loss, diou_loss_1d, UniMDLoss


def batch(seed=0, T=64):
    "Targets from real label assignment, random head outputs, padded steps and queries, both tasks."
    g = torch.Generator().manual_seed(seed)
    pts = make_points(level_lengths(T), STRIDES, REGRESSION_RANGES)
    P = len(pts)
    segs = [[torch.tensor([[10., 14.], [30., 50.]]), torch.zeros(0, 2), torch.tensor([[8., 20.]]), torch.tensor([[2., 9.]])],
            [torch.tensor([[0., 40.]]), torch.tensor([[20., 28.]]), torch.zeros(0, 2), torch.zeros(0, 2)]]
    qmask = torch.tensor([[True, True, True, True], [True, True, True, False]])
    qtask = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 0]])
    pmask = torch.ones(2, P, dtype=torch.bool)
    pmask[1] = pts[:, 0] < 48
    cls_t, reg_t = assign_targets(pts, segs, qmask)
    logits = (torch.randn(2, P, 4, generator=g) * 2).requires_grad_()
    reg = (torch.rand(2, P, 4, 2, generator=g) * 3).requires_grad_()
    return logits, reg, cls_t, reg_t, pmask, qmask, qtask


def loop_loss(logits, reg, cls_t, reg_t, pmask, qmask, qtask, eps=0.0, lambdas=(3., 1.), norms=(100., 100.)):
    "Eq. 10 pair by pair: sums per task, each over its (given) normaliser."
    B, P, Q = logits.shape
    parts = {0: [0.0, 0.0], 1: [0.0, 0.0]}
    for b in range(B):
        n_task = {k: int(((qtask[b] == k) & qmask[b]).sum()) for k in (0, 1)}
        for q in range(Q):
            if not qmask[b, q]: continue
            k = int(qtask[b, q])
            for p in range(P):
                if not pmask[b, p]: continue
                y = float(cls_t[b, p, q]) * (1 - eps) + eps / (n_task[k] + 1)
                x = float(logits[b, p, q])
                pr = 1 / (1 + math.exp(-x))
                ce = -(y * math.log(pr) + (1 - y) * math.log(1 - pr))
                p_t = pr * y + (1 - pr) * (1 - y)
                parts[k][0] += (0.25 * y + 0.75 * (1 - y)) * ce * (1 - p_t) ** 2
                if cls_t[b, p, q] > 0:
                    (ps, pe), (gs, ge) = reg[b, p, q].tolist(), reg_t[b, p, q].tolist()
                    inter = min(ps, gs) + min(pe, ge)
                    union = ps + pe + gs + ge - inter
                    rho = 0.5 * ((pe - ps) - (ge - gs))
                    parts[k][1] += 1 - inter / union + (rho / (max(ps, gs) + max(pe, ge))) ** 2
    tad, mr = sum(parts[0]) / norms[0], sum(parts[1]) / norms[1]
    return dict(tad=tad, mr=mr, total=lambdas[0] * tad + lambdas[1] * mr)


def test_focal_hand_and_torchvision():
    p = 1 / (1 + math.exp(-0.5))
    got = sigmoid_focal_loss(torch.tensor([0.5, 0.5]), torch.tensor([1., 0.]))
    torch.testing.assert_close(got, torch.tensor([0.25 * (1 - p) ** 2 * -math.log(p), 0.75 * p ** 2 * -math.log(1 - p)]))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 9, generator=g) * 4, (torch.rand(200, 9, generator=g) > 0.7).float()
    for a, gm in ((0.25, 2.0), (0.5, 1.0), (-1, 2.0)):
        torch.testing.assert_close(sigmoid_focal_loss(x, y, a, gm), torchvision.ops.sigmoid_focal_loss(x, y, a, gm))


def test_diou():
    x = torch.tensor([[1., 3.], [0.2, 9.], [4., 0.]])
    assert diou_loss_1d(x, x).abs().max() < 1e-7
    torch.testing.assert_close(diou_loss_1d(torch.tensor([[1., 1.]]), torch.tensor([[1., 3.]])), torch.tensor([0.5625]))
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(100, 2, generator=g) * 5, torch.rand(100, 2, generator=g) * 5
    torch.testing.assert_close(diou_loss_1d(a, b), diou_loss_1d(b, a))
    assert (diou_loss_1d(a, b) >= 0).all() and (diou_loss_1d(a, b) <= 2).all()


def test_diou_gradients_finite_on_degenerate_segments():
    pred = torch.tensor([[0., 0.], [0., 2.], [3., 0.]], requires_grad=True)
    loss = diou_loss_1d(pred, torch.tensor([[0., 0.], [0., 0.], [1., 1.]])).sum()
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()


@pytest.mark.parametrize('eps', [0.0, 0.1])
def test_matches_pairwise_loop(eps):
    args = batch(0)
    out = UniMDLoss(label_smoothing=eps)(*args)
    norms = (float(out['norm_tad']), float(out['norm_mr']))
    ref = loop_loss(*[a.detach() if torch.is_tensor(a) else a for a in args], eps=eps, norms=norms)
    for k in ('tad', 'mr', 'total'): assert abs(out[k].item() - ref[k]) < 1e-4 * max(1, abs(ref[k])), k
    torch.testing.assert_close(out['total'], out['cls'] + out['reg'])


def test_normaliser_ema_per_task():
    logits, reg, cls_t, reg_t, pmask, qmask, qtask = batch(0)
    crit = UniMDLoss()
    out = crit(logits, reg, cls_t, reg_t, pmask, qmask, qtask)
    pos = cls_t.bool() & pmask[..., None] & qmask[:, None]
    n_tad, n_mr = int((pos & (qtask[:, None] == 0)).sum()), int((pos & (qtask[:, None] == 1)).sum())
    assert (int(out['npos_tad']), int(out['npos_mr'])) == (n_tad, n_mr) and n_tad > 0 and n_mr > 0
    torch.testing.assert_close(crit.normalizer, torch.tensor([90 + 0.1 * n_tad, 90 + 0.1 * n_mr]))
    crit(logits, reg, cls_t, reg_t, pmask, qmask & (qtask == 1), qtask)                  # MR-only batch
    assert abs(float(crit.normalizer[0]) - (90 + 0.1 * n_tad)) < 1e-4                     # TAD count untouched
    before = crit.normalizer.clone()
    crit.eval()
    crit(logits, reg, cls_t, reg_t, pmask, qmask, qtask)
    assert torch.equal(crit.normalizer, before)
    assert 'normalizer' in crit.state_dict()


def test_no_positives_trains_and_reg_is_zero():
    logits, reg, cls_t, reg_t, pmask, qmask, qtask = batch(1)
    out = UniMDLoss()(logits, reg, torch.zeros_like(cls_t), torch.zeros_like(reg_t), pmask, qmask, qtask)
    out['total'].backward()
    assert out['reg'].item() == 0 and torch.isfinite(out['total'])
    assert torch.isfinite(logits.grad).all() and torch.isfinite(reg.grad).all() and logits.grad.abs().sum() > 0
    assert reg.grad.abs().sum() == 0


def test_gradients_masked_and_finite():
    logits, reg, cls_t, reg_t, pmask, qmask, qtask = batch(2)
    UniMDLoss(label_smoothing=0.1)(logits, reg, cls_t, reg_t, pmask, qmask, qtask)['total'].backward()
    assert torch.isfinite(logits.grad).all() and torch.isfinite(reg.grad).all()
    assert logits.grad[1, :, 3].abs().sum() == 0                                            # padded query
    assert logits.grad[1, ~pmask[1]].abs().sum() == 0                                       # padded steps
    assert reg.grad[cls_t == 0].abs().sum() == 0                                            # regression on positives only


def test_two_forwards_one_backward():
    "Gradient accumulation: the in-place normaliser update must not break the first graph."
    args = batch(3)
    crit = UniMDLoss()
    (crit(*args)['total'] + crit(*args)['total']).backward()
    assert torch.isfinite(args[0].grad).all()


def test_lambdas_and_single_task_batches():
    args = batch(0)
    out = UniMDLoss(lambda_tad=3, lambda_mr=1)(*args)
    torch.testing.assert_close(out['total'], 3 * out['tad'] + out['mr'])
    logits, reg, cls_t, reg_t, pmask, qmask, qtask = args
    tad_only = UniMDLoss()(logits, reg, cls_t, reg_t, pmask, qmask & (qtask == 0), qtask)
    assert tad_only['mr'].item() == 0 and tad_only['tad'].item() > 0


def test_bad_qtask():
    logits, reg, cls_t, reg_t, pmask, qmask, qtask = batch(0)
    with pytest.raises(UniMDError, match='qtask must be 0'):
        UniMDLoss()(logits, reg, cls_t, reg_t, pmask, qmask, torch.full_like(qtask, 2))
