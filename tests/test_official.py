"Official interop (issue 10): compat mode against the official code's fixtures, checkpoint loading, bad input (the released data: test_released.py)."
import copy, dataclasses, json
from pathlib import Path
import numpy as np
import pytest
import torch
from unimd.core import UniMDError
from unimd.model import ModelConfig, UniMD
from unimd.config import load_config

from unimd.official_model import OfficialUniMD, UnzeroedConv1d
from unimd.vision import MaskedConv1d

off = pytest.importorskip('unimd.official')
try: FIX, MISSING = off.official_fixtures(), ''
except UniMDError as e: FIX, MISSING = Path('/nonexistent'), str(e)
needs_fixtures = pytest.mark.skipif(bool(MISSING), reason=f'official fixtures missing (../shared/official): {MISSING}')
SMALL_SETS = ['model.feat_dim=64', 'model.max_seq_len=256', 'data.num_classes=20']
CKPT = FIX / 'ego4d_small' / 'checkpoint.pth.tar'


@pytest.fixture(scope='module', params=['ours', 'official_yaml'])
def small(request):
    "The fixture checkpoint, loaded with our Ego4D config (+ --set) and with the official config file as it is."
    if request.param == 'ours': return off.load_official(CKPT, 'ego4d', SMALL_SETS)
    return off.load_official(CKPT, FIX / 'ego4d_small' / 'official_config.yaml')


@pytest.fixture(scope='module')
def fixture():
    inputs = torch.load(FIX / 'ego4d_small' / 'inputs.pt', weights_only=False)
    return off.fixture_batch(inputs), torch.load(FIX / 'ego4d_small' / 'expected.pt', weights_only=False)


def one_video(batch, b):
    return dataclasses.replace(batch, **{f: getattr(batch, f)[b:b + 1] for f in ('feats', 'mask', 'qemb', 'qmask', 'qtask',
                               't0', 'dt', 'durations')}, segments=batch.segments[b:b + 1], vids=batch.vids[b:b + 1],
                               qids=batch.qids[b:b + 1])


@needs_fixtures
def test_eval_outputs_equal_official_per_level(small, fixture):
    batch, exp = fixture
    for b in range(2):                                                    # video 1 is padded 173 -> 256
        with torch.no_grad(): out = small(one_video(batch, b))
        one = {k: [t[b:b + 1] for t in v] for k, v in exp['eval'].items() if k.endswith(('logits', 'offsets'))}
        errs = off.level_errors(out, one, 20)
        assert max(max(v) for v in errs.values()) < 1e-5, errs
        assert out.cls_logits[0][~out.pmask[0]].abs().sum() == 0 and out.reg[0][~out.pmask[0]].abs().sum() == 0


@needs_fixtures
def test_batched_forward_matches_too(small, fixture):
    batch, exp = fixture
    with torch.no_grad(): out = small(batch)                              # both videos in one forward
    errs = off.level_errors(out, exp['eval'], 20)
    assert max(max(v) for v in errs.values()) < 1e-5, errs


@needs_fixtures
@pytest.mark.parametrize('mode', ['bn_batch_stats', 'bn_running_stats'])
def test_train_losses_equal_official(small, fixture, mode):
    batch, exp = fixture
    L, e = off.train_losses(small, batch, mode == 'bn_batch_stats'), exp['train'][mode]
    pairs = [(L['cls_tad'], e['losses']['tad']['cls_loss']), (L['reg_tad'], e['losses']['tad']['reg_loss']),
             (L['cls_mr'], e['losses']['mr']['cls_loss']), (L['reg_mr'], e['losses']['mr']['reg_loss']),
             (L['total'], e['losses']['total']), (L['norm_tad'], e['loss_normalizer']['after_tad']),
             (L['norm_mr'], e['loss_normalizer']['after_mr'])]
    assert max(abs(float(a) - b) / abs(b) for a, b in pairs) < 1e-5, pairs


@needs_fixtures
def test_detections_equal_official_postprocessing(small, fixture):
    "Per query as sets (near-tied scores may come in either order on another CPU): every detection has its official partner."
    batch, _ = fixture
    with torch.no_grad(): out = [small(one_video(batch, b)) for b in range(2)]
    dets = [small.detect(o, one_video(batch, b))[0] for b, o in enumerate(out)]
    official = json.loads((FIX / 'ego4d_small' / 'expected_detections.json').read_text())
    err = off.detection_errors(dets, batch, official, 20)
    assert err['count_mismatches'] == 0 and err['n'] == 1203 + 179 + 859 + 132 and not err['unmatched'], err
    assert err['boundary_s'] < 1e-4 and err['score'] < 1e-5, err


@needs_fixtures
def test_candidates_equal_official_as_sets_even_one_ulp_away(small, fixture):
    "The Soft-NMS input as sets; with every weight one ulp larger (another processor's rounding) too."
    batch, exp = fixture
    nudged = copy.deepcopy(small)
    with torch.no_grad():
        for t in [*nudged.parameters(), *(x for x in nudged.buffers() if x.is_floating_point())]: t.mul_(1 + 2 ** -23)
    for model in (small, nudged):
        with torch.no_grad(): outs = [model(one_video(batch, b)) for b in range(2)]
        out = type(outs[0])(*(torch.cat([o[i] for o in outs]) if i != 2 else outs[0][2] for i in range(4)))
        assert max(max(v) for v in off.level_errors(out, exp['eval'], 20).values()) < 1e-5
        bad = off.candidate_errors(out, exp['eval']['pre_nms'], model.cfg, 20)
        assert not bad, bad                                               # names the video, task and first rows without a partner


@needs_fixtures
def test_state_dict_not_ema_changes_outputs(small, fixture, tmp_path):
    "The loader must read state_dict_ema: state_dict (noisy biases) gives other outputs."
    ck = torch.load(CKPT, weights_only=True)
    torch.save({'state_dict': ck['state_dict']}, tmp_path / 'noema.pth.tar')
    other = off.load_official(tmp_path / 'noema.pth.tar', 'ego4d', SMALL_SETS)
    batch, _ = fixture
    with torch.no_grad(): a, b = small(one_video(batch, 0)), other(one_video(batch, 0))
    assert (a.cls_logits - b.cls_logits).abs().max() > 1e-3


def official_shapes(tsv):
    rows = [l.split('\t') for l in (FIX / 'names_shapes' / tsv).read_text().splitlines()[1:]]
    shape = lambda s: () if s == 'scalar' else tuple(int(x) for x in s.split('x'))
    return {r[0].removeprefix('module.'): (shape(r[3]), r[2]) for r in rows if r[1] in ('parameter', 'buffer')}


@needs_fixtures
def test_full_size_random_weights_load(tmp_path):
    "Random tensors with the Ego4D release's names and shapes: a strict load, every weight in place."
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(s, generator=g) if dt == 'float32' else torch.tensor(7) for k, (s, dt) in official_shapes('ego4d.tsv').items()}
    cfg = off.official_config(sd, 'ego4d')
    model = UniMD(cfg.model)
    r = model.load_state_dict(off.map_official(sd, model), strict=True)
    assert (r.missing_keys, r.unexpected_keys) == ([], [])
    assert torch.equal(model.reg_head.kernels.fcs[2][1].weight, sd['reg_head.query_fcs.2.1.weight'])
    assert torch.equal(model.vision.fpn[1].bu_fuse[3].a, sd['neck.bifpn_list.1.p7_w2_att'])


@needs_fixtures
@pytest.mark.parametrize('tsv,config', [('charades_i3dclip.tsv', 'charades'), ('charades_i3d.tsv', 'charades_i3d'), ('anet.tsv', 'anet')])
def test_full_size_shapes_load_with_nothing_missing(tsv, config):
    sd = {k: torch.empty(s, device='meta') for k, (s, _) in official_shapes(tsv).items()}
    cfg = off.official_config(sd, config)
    with torch.device('meta'): model = UniMD(cfg.model)
    r = model.load_state_dict(off.map_official(sd, model), strict=True, assign=True)
    assert (r.missing_keys, r.unexpected_keys) == ([], []) and cfg.model.feat_dim == sd['backbone.embd.0.conv.weight'].shape[1]


@needs_fixtures
def test_bad_checkpoints_one_line_errors(tmp_path):
    (tmp_path / 'cut.pth.tar').write_bytes(CKPT.read_bytes()[:50_000])
    (tmp_path / 'a.yaml').write_text('model: {}\n')
    torch.save({'optimizer': None}, tmp_path / 'other.pt')
    cases = [(tmp_path / 'cut.pth.tar', 'ego4d', 'truncated or damaged'), (tmp_path / 'a.yaml', 'ego4d', 'not a torch checkpoint'),
             (tmp_path / 'other.pt', 'ego4d', 'no state_dict_ema or state_dict'), (CKPT, 'ego4d', 'takes 64-d features'),
             (CKPT, 'charades_i3d', "config 'charades_i3d' has model.feat_dim 2048"), (tmp_path / 'nope.pth', 'ego4d', 'not found')]
    for path, config, msg in cases:
        with pytest.raises(UniMDError) as e: off.load_official(path, config)
        assert msg in str(e.value) and '\n' not in str(e.value) and str(path) in str(e.value), str(e.value)


@needs_fixtures
def test_structural_mismatch_names_tensor_and_key():
    sd = off.read_official(CKPT)
    model = off.load_official(CKPT, 'ego4d', SMALL_SETS)
    bad = dict(sd, **{'cls_head.head.0.conv.weight': sd['cls_head.head.0.conv.weight'][..., :1]})
    with pytest.raises(UniMDError) as e: off.map_official(bad, model, 'x.pth')
    assert 'cls_head.head.0.conv.weight' in str(e.value) and 'model.head_kernel' in str(e.value)
    with pytest.raises(UniMDError) as e: off.map_official({**sd, 'neck.bifpn_list.3.p3_w1_att': sd['neck.bifpn_list.0.p3_w1_att']}, model)
    assert 'neck.bifpn_list.3.p3_w1_att' in str(e.value) and 'model.fpn_layers' in str(e.value)
    with pytest.raises(UniMDError) as e: off.map_official({k: v for k, v in sd.items() if 'reg_head.scale.5' not in k}, model)
    assert 'reg_head.scales.5.scale' in str(e.value) and 'model.convnext_depths' in str(e.value)


def test_layers_read_from_shapes_generalise():
    "A different official architecture (4 stages, 2 BiFPN layers, kernel 5, 1-layer heads) loads: nothing tuned to Ego4D."
    small = ModelConfig(feat_dim=12, channels=8, head_dim=512, reg_mlp_hidden=16, convnext_depths=(1, 2, 1, 1), fpn_layers=2,
                        fpn_kernel=5, head_convs=1, n_stem=1, max_seq_len=64, compat='official',
                        regression_ranges=((0, 4), (4, 8), (8, 16), (16, 32), (32, 10000)))
    ref = UniMD(small)
    sd = {off.official_name(k): v for k, v in ref.state_dict().items() if k != 'criterion.normalizer'}   # official names
    w = off.official_widths(sd)
    assert (w['convnext_depths'], w['fpn_layers'], w['fpn_kernel'], w['head_convs'], w['n_stem']) == ((1, 2, 1, 1), 2, 5, 1, 1)
    model = UniMD(dataclasses.replace(small, **w))
    model.load_state_dict(off.map_official(sd, model))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))


@needs_fixtures
def test_unused_tensors_named():
    sd = off.read_official(CKPT)
    unused = off.unused_official(sd)
    assert {'cls_head.norm.1.weight', 'reg_head.query_norm.2.bias'} <= set(unused)
    assert sum(k.endswith('num_batches_tracked') for k in unused) == 10 and len(unused) == 14


def test_compat_picks_the_model_class():
    "UniMD(cfg) builds MODELS[cfg.compat]: the paper's model by default, OfficialUniMD (23a) for compat: official."
    m, o = UniMD(ModelConfig(feat_dim=16, channels=16, reg_mlp_hidden=16, max_seq_len=64)), UniMD(
        ModelConfig(feat_dim=16, channels=16, reg_mlp_hidden=16, max_seq_len=64, compat='official'))
    assert type(m) is UniMD and type(o) is OfficialUniMD and o.cfg.compat == 'official'
    assert [len(f.a) for f in m.vision.fpn[0].bu_fuse] == [3, 3, 3, 3, 2] and [len(f.a) for f in o.vision.fpn[0].bu_fuse] == [3, 3, 3, 2, 2]
    assert not any(isinstance(x, (torch.nn.BatchNorm1d, UnzeroedConv1d)) for x in m.modules())
    assert sum(isinstance(x, torch.nn.BatchNorm1d) for x in o.modules()) == 10
    assert {type(x) for x in o.modules() if isinstance(x, MaskedConv1d)} == {UnzeroedConv1d}
    assert list(m.state_dict()) != list(o.state_dict()) and 'vision.fpn.0.lat.0.norm.running_mean' in o.state_dict()
    assert type(copy.deepcopy(o)) is OfficialUniMD                        # a copy stays what it is


@needs_fixtures
def test_import_official_cli_then_detect(tmp_path, capsys):
    from unimd.cli import main
    out = tmp_path / 'small.pt'
    sets = sum((['--set', s] for s in SMALL_SETS + ['model.text_encoder=hash']), [])
    assert main(['import-official', str(CKPT), '--config', 'ego4d', '--out', str(out)] + sets) == 0 and out.is_file()
    feats = FIX / 'data' / 'ego4d' / 'features' / 'f5a42ef7-9961-4264-87dd-d1a8261cbb7c.npy'
    capsys.readouterr()
    assert main(['predict', str(out), str(feats), '-q', 'where did i put the green mug?', '--top', '2', '--device', 'cpu']) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 3 and all('green mug?   mr' in r for r in rows[1:])      # a header and two moments
    assert main(['import-official', str(CKPT), '--config', 'ego4d', '--out', str(tmp_path / 'bad.pt')]) == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err and 'model.feat_dim' in err and err.count('\n') == 1 and not (tmp_path / 'bad.pt').exists()


def test_finetune_from_an_imported_checkpoint(tmp_path):
    "import-official writes a checkpoint and its config; unimd train --config that --set train.init=it starts from its weights."
    from unimd.train import train
    sets = ['model.text_encoder=hash', 'model.text_dim=512']
    cfg = load_config('synthetic', sets)
    torch.manual_seed(0)
    ref = UniMD(dataclasses.replace(cfg.model, compat='official', head_dim=512))
    for p in ref.parameters(): p.data.normal_()                               # far from any fresh init
    sd = {'module.' + off.official_name(k): v for k, v in ref.state_dict().items() if k != 'criterion.normalizer'}
    torch.save({'epoch': 1, 'state_dict_ema': sd}, tmp_path / 'syn.pth.tar')
    off.import_official(tmp_path / 'syn.pth.tar', 'synthetic', tmp_path / 'syn.pt', sets)
    run_cfg = load_config(str(tmp_path / 'syn.yaml'), [f'train.init={tmp_path / "syn.pt"}'])
    assert run_cfg.model.compat == 'official' and run_cfg.model.head_dim == 512
    train(run_cfg, tmp_path / 'run', progress=False, stop_after=1)
    after = torch.load(tmp_path / 'run' / 'checkpoint.pt', weights_only=True)['model']
    w = 'reg_head.kernels.fcs.0.1.weight'
    assert (after[w] - ref.state_dict()[w]).abs().max() < 1e-2                  # one step away from the imported weights
    bad = load_config('synthetic', sets + [f'train.init={tmp_path / "syn.pt"}'])    # our layout: no BatchNorm, 3-input fusions
    with pytest.raises(UniMDError, match='train.init'): train(bad, tmp_path / 'run2', progress=False, stop_after=1)


@needs_fixtures
def test_predictor_feeds_features_as_the_official_checkpoint_expects(tmp_path):
    "Predictor on an imported official checkpoint with data.l2_features: the top detections of official_predict; without it, others."
    from unimd.predictor import Predictor
    from unimd.splits import load_split
    from unimd.splits import text_encoder
    E = FIX / 'data' / 'ego4d'
    sets = SMALL_SETS + ['model.text_encoder=hash', 'data.fps=30', 'data.feat_stride=16', f'data.features={E / "features"}',
                         f'data.tad_file={E / "mq_annotations.json"}', f'data.mr_file={E / "nlq_annotations.json"}']
    split = load_split(load_config('ego4d', sets).data, 'test')
    top = {}
    for l2 in ('true', 'false'):
        ck = off.import_official(CKPT, 'ego4d', tmp_path / f'l2_{l2}.pt', sets + [f'data.l2_features={l2}'], split.classes)
        p = Predictor.from_checkpoint(ck, device='cpu')
        for vid, video in split.videos.items():
            texts = [s.text for s in video.sentences]
            df = p.encode(E / 'features' / f'{vid}.npy', duration=video.duration).detect(split.classes + texts, top_k=3)
            top[l2, vid] = {(r.query, r.rank): (r.start, r.end, r.score) for r in df.itertuples()}
    model = off.load_official(CKPT, 'ego4d', sets)
    preds = off.official_predict(model, split, text_encoder(model.cfg, model.run_config.data, split.classes), ('tad', 'mr'))
    for vid, video in split.videos.items():
        names = {**{c: c for c in split.classes}, **{s.qid: s.text for s in video.sentences}}
        full = {names[q]: [(m.score, m.start, m.end) for m in ms] for task in preds for q, ms in preds[task].get(vid, {}).items()}
        for l2 in ('true', 'false'):
            mine = {}
            for (q, r), (a, e, sc) in sorted(top[l2, vid].items()): mine.setdefault(q, []).append((sc, a, e))
            # as sets: near-tied moments may rank in either order; each of the top 3 has a partner in the official list
            res = {q: off.match_sets(rows, full.get(q, []), (1e-5, 1e-4, 1e-4)) for q, rows in mine.items()}
            scores_ok = all(len(rows) == len(full.get(q, [])[:3]) and np.allclose(sorted(r[0] for r in rows), sorted(r[0] for r in full[q][:3]),
                                                                                  atol=1e-5) for q, rows in mine.items())
            if l2 == 'true':
                assert set(mine) == {q for q, ms in full.items() if ms} and len(mine) > 7, (sorted(mine), sorted(full))
                assert scores_ok and not any(r['n_unmatched'] for r in res.values()), {q: r for q, r in res.items() if r['n_unmatched']}
            else:
                assert not scores_ok or any(r['n_unmatched'] for r in res.values())   # unnormalised features: other moments
