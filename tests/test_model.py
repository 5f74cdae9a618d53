"UniMD model: batched = loop oracle (outputs and gradients), padding invariance, shapes, sizes, input errors, configs."
import dataclasses, math
from pathlib import Path
import pytest
import torch
import torch.nn.functional as F
from unimd.core import UniMDError, Moment
from unimd.model import ModelConfig, UniMD, random_batch, grads_of, grad_err, max_rel_err, param_table
from unimd.heads import RegHead, qconv_batched, qconv_loop, head_grads
from unimd.vision import VisionEncoder, pad_video, n_params

ROOT = Path(__file__).resolve().parents[1]
SMALL = ModelConfig(feat_dim=24, text_encoder='minilm', text_dim=384, channels=16, reg_mlp_hidden=16, max_seq_len=64)


def ragged_batch(cfg=SMALL, lengths=(60, 37), n_queries=(7, 3), seed=1, dtype=torch.float32):
    "Two videos of different lengths and different numbers of real queries."
    b = random_batch(cfg, B=2, T=64, n_classes=5, n_sentences=2, lengths=list(lengths), seed=seed)
    qm = torch.arange(7)[None] < torch.tensor(n_queries)[:, None]
    return dataclasses.replace(b, feats=b.feats.to(dtype), qemb=(b.qemb * qm[..., None]).to(dtype), qmask=qm)


def twin_models(cfg=SMALL, dtype=torch.float32, train=False):
    torch.manual_seed(0)
    fast, slow = UniMD(cfg).to(dtype), UniMD(cfg, qconv='loop').to(dtype)
    slow.load_state_dict(fast.state_dict())
    return (fast.train(), slow.train()) if train else (fast.eval(), slow.eval())


@pytest.mark.parametrize('dtype,eps', [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_batched_model_equals_loop_oracle(dtype, eps):
    fast, slow = twin_models(dtype=dtype)
    b = ragged_batch(dtype=dtype)
    (o1, l1, g1), (o2, l2, g2) = grads_of(fast, b), grads_of(slow, b)
    assert sorted(g1) == sorted(g2) and len(g1) == len(list(fast.parameters()))
    assert max_rel_err(o1.cls_logits, o2.cls_logits) < eps
    assert max_rel_err(o1.reg, o2.reg) < eps
    for k in ('total', 'tad', 'mr', 'cls', 'reg'): assert max_rel_err(l1[k], l2[k]) < eps, k
    assert grad_err(g1, g2) < eps


def test_oracle_holds_in_training_mode():
    "Dropout in the query MLP and drop path draw the same random numbers in both models under the same seed."
    fast, slow = twin_models(dtype=torch.float64, train=True)
    b = ragged_batch(dtype=torch.float64)
    torch.manual_seed(5); o1, _, g1 = grads_of(fast, b)
    torch.manual_seed(5); o2, _, g2 = grads_of(slow, b)
    assert max_rel_err(o1.reg, o2.reg) < 1e-10 and grad_err(g1, g2) < 1e-10


@pytest.mark.parametrize('dtype,eps', [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_qconv_batched_equals_loop_with_padded_queries(dtype, eps):
    torch.manual_seed(0)
    feats = [torch.randn(3, 8, T, dtype=dtype) for T in (16, 8, 4)]
    w, b = torch.randn(3, 4, 2, 8, 3, dtype=dtype), torch.randn(3, 4, 2, dtype=dtype)
    qmask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]]).bool()
    fast, slow = qconv_batched(feats, w, b, qmask), qconv_loop(feats, w, b, qmask)
    assert fast.shape == slow.shape == (3, 28, 4, 2)
    sel = qmask[:, None].expand(-1, 28, -1)
    assert max_rel_err(fast[sel], slow[sel]) < eps
    assert slow[~sel].abs().sum() == 0


def test_reg_head_grads_match_oracle_for_every_input():
    torch.manual_seed(0)
    masks = [torch.arange(T)[None] < torch.tensor([[T], [max(T // 2, 1)]]) for T in (32, 16, 8, 4, 2, 1)]
    feats = [torch.randn(2, 16, m.shape[1]) * m[:, None] for m in masks]
    qemb, qmask = F.normalize(torch.randn(2, 5, 12), dim=-1), torch.tensor([[1] * 5, [1, 1, 0, 0, 0]]).bool()
    fast, slow = RegHead(16, 12, 6).eval(), RegHead(16, 12, 6, impl='loop').eval()
    slow.load_state_dict(fast.state_dict())
    (o1, g1), (o2, g2) = head_grads(fast, feats, masks, qemb, qmask), head_grads(slow, feats, masks, qemb, qmask)
    assert max_rel_err(o1, o2) < 1e-5
    assert all(max_rel_err(a, b) < 1e-5 for a, b in zip(g1, g2))


def level_slices(points):
    "Start and end index of each pyramid level in P."
    strides = points[:, 3]
    out, start = [], 0
    for s in strides.unique(sorted=True).tolist():
        n = int((strides == s).sum()); out.append((s, start, start + n)); start += n
    return out


def test_padding_and_batch_neighbours_do_not_change_a_video():
    torch.manual_seed(0)
    model = UniMD(SMALL).eval()
    n = 45
    v = torch.randn(SMALL.feat_dim, n)
    xa, ma = pad_video(v, 64, fill=5.)
    xb, mb = pad_video(v, 128, fill=float('nan'))
    other, mo = pad_video(torch.randn(SMALL.feat_dim, 128), 128)
    q = F.normalize(torch.randn(1, 4, SMALL.text_dim), dim=-1)
    a = random_batch(SMALL, B=1, T=64, n_classes=3, n_sentences=1)
    a = dataclasses.replace(a, feats=xa[None], mask=ma[None], qemb=q)
    bb = random_batch(SMALL, B=2, T=128, n_classes=3, n_sentences=1)
    bb = dataclasses.replace(bb, feats=torch.stack([other, xb]), mask=torch.stack([mo, mb]), qemb=torch.cat([q.flip(1), q]))
    with torch.no_grad(): oa, ob = model(a), model(bb)
    for (s, a0, a1), (_, b0, b1) in zip(level_slices(oa.points), level_slices(ob.points)):
        k = -(-n // int(s))                                                 # real steps at this level
        assert oa.pmask[0, a0:a0 + k].all() and not oa.pmask[0, a0 + k:a1].any()
        assert torch.allclose(oa.cls_logits[0, a0:a0 + k], ob.cls_logits[1, b0:b0 + k], atol=1e-5)
        assert torch.allclose(oa.reg[0, a0:a0 + k], ob.reg[1, b0:b0 + k], atol=1e-5)


def test_vision_pyramid_shapes_and_masks():
    enc = VisionEncoder(12, 16).eval()
    x, m = torch.randn(3, 12, 96), torch.arange(96)[None] < torch.tensor([[96], [50], [1]])
    with torch.no_grad(): feats, masks = enc(x, m)
    assert [f.shape for f in feats] == [(3, 16, 96 // s) for s in (1, 2, 4, 8, 16, 32)]
    assert [mk.sum(1).tolist() for mk in masks][-1] == [3, 2, 1]
    assert all(f.masked_select(~mk[:, None]).abs().sum() == 0 for f, mk in zip(feats, masks))


@pytest.mark.parametrize('kw', [{}, dict(reg_query_dependent=False), dict(reg_mlp_layers=1), dict(reg_mlp_layers=2),
                                dict(text_encoder='clip', text_dim=512), dict(convnext_depths=(2, 1, 1, 1, 1))])
def test_output_shapes_for_variants(kw):
    cfg = dataclasses.replace(SMALL, **kw)
    model = UniMD(cfg).eval()
    b = random_batch(cfg, B=2, T=64, n_classes=4, n_sentences=2, lengths=[64, 20])
    with torch.no_grad(): out = model(b)
    P = sum(64 // s for s in cfg.strides)
    assert out.cls_logits.shape == (2, P, 6) and out.reg.shape == (2, P, 6, 2)
    assert out.points.shape == (P, 4) and out.pmask.shape == (2, P)
    assert (out.reg >= 0).all() and out.reg[~out.pmask].abs().sum() == 0
    assert torch.isfinite(model.loss(out, b)['total'])
    if not cfg.reg_query_dependent: assert (out.reg[:, :, :1] == out.reg).all()


def test_detect_returns_moments_in_seconds_per_query():
    model = UniMD(SMALL).eval()
    b = random_batch(SMALL, B=2, T=64, n_classes=3, n_sentences=1, lengths=[64, 30])
    b = dataclasses.replace(b, t0=torch.tensor([0.5, 1.0], dtype=torch.float64), dt=torch.tensor([0.25, 2.0], dtype=torch.float64))
    with torch.no_grad(): dets = model.detect(model(b), b)
    assert [sorted(d) for d in dets] == [sorted(q) for q in b.qids]
    for d, dur in zip(dets, b.durations.tolist()):
        ms = [m for v in d.values() for m in v]
        assert ms and all(isinstance(m, Moment) and 0 <= m.start <= m.end <= dur for m in ms)


def test_official_parameter_count():
    model = UniMD(ModelConfig())
    assert abs(n_params(model) / 1e6 - 90.8) < 0.05
    table = param_table(model)
    assert abs(table['BiFPN (3 layers)'] - 65.8) < 0.05 and abs(table['regression head (eq. 8-9)'] - 3.68) < 0.01


def batch_with(**kw):
    return dataclasses.replace(random_batch(SMALL, B=2, T=64, n_classes=3, n_sentences=1), **kw)


@pytest.mark.parametrize('change,message', [
    (lambda b: dict(qemb=torch.randn(2, 4, 512)), 'text_dim=384'),
    (lambda b: dict(feats=torch.randn(2, 30, 64)), 'feat_dim=24'),
    (lambda b: dict(feats=b.feats[..., :16], mask=b.mask[:, :16]), 'T=16 feature steps'),
    (lambda b: dict(feats=b.feats[..., :48], mask=b.mask[:, :48]), 'multiple of its largest stride 32'),
    (lambda b: dict(qemb=b.qemb[:, :0], qmask=b.qmask[:, :0]), 'has no queries'),
    (lambda b: dict(qmask=torch.tensor([[True] * 4, [False] * 4])), 'video random1 has no queries'),
    (lambda b: dict(mask=torch.tensor([[False] * 64, [True] * 64])), 'video random0 has no real feature steps'),
])
def test_bad_input_errors(change, message):
    b = random_batch(SMALL, B=2, T=64, n_classes=3, n_sentences=1)
    with pytest.raises(UniMDError, match=message.replace('(', r'\(')):
        UniMD(SMALL)(dataclasses.replace(b, **change(b)))


def test_nan_features_error_names_video_and_step_but_nan_padding_is_fine():
    b = random_batch(SMALL, B=2, T=64, n_classes=3, n_sentences=1, lengths=[64, 40])
    x = b.feats.clone(); x[1, 0, 12] = float('nan')
    with pytest.raises(UniMDError, match='video random1 has non-finite features .* at step 12'):
        UniMD(SMALL)(dataclasses.replace(b, feats=x))
    x = b.feats.clone(); x[1, :, 40:] = float('nan')
    out = UniMD(SMALL).eval()(dataclasses.replace(b, feats=x))
    assert torch.isfinite(out.cls_logits).all() and torch.isfinite(out.reg).all()


def test_video_without_positives_trains_on_negatives():
    model = UniMD(SMALL)
    b = batch_with(segments=[[torch.zeros(0, 2)] * 4] * 2)
    l = model.loss(model(b), b)
    assert l['reg'].item() == 0 and l['cls'].item() > 0
    l['total'].backward()
    assert model.cls_head.bias.grad.abs() > 0


def test_configs_load_and_unknown_keys_are_rejected(tmp_path):
    for name in ('ego4d', 'charades', 'anet', 'synthetic'):
        cfg = ModelConfig.from_yaml(ROOT / 'configs' / f'{name}.yaml')
        assert cfg.max_seq_len % 32 == 0 and cfg.regression_ranges[-1][1] == math.inf
    assert ModelConfig.from_yaml(ROOT / 'configs' / 'ego4d.yaml') == ModelConfig()
    assert ModelConfig.from_yaml(ROOT / 'configs' / 'charades.yaml').feat_dim == 2560
    p = tmp_path / 'bad.yaml'
    p.write_text('model:\n  feat_dim: 10\n  chanels: 64\n')
    with pytest.raises(UniMDError, match=r"bad.yaml: unknown model key\(s\) \['chanels'\]"): ModelConfig.from_yaml(p)
    p.write_text('model: [1, 2]\n')
    with pytest.raises(UniMDError, match='no `model:` section'): ModelConfig.from_yaml(p)
    with pytest.raises(UniMDError, match='set text_dim: 384'): ModelConfig(text_encoder='minilm')
