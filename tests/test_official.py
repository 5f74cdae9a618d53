"Official interop (issue 10): compat mode against the official code's fixtures, checkpoint loading, released data, bad input."
import dataclasses, json
from pathlib import Path
import numpy as np
import pytest
import torch
from unimd.core import UniMDError
from unimd.model import ModelConfig, UniMD
from unimd.config import load_config

off = pytest.importorskip('unimd.official')
try: FIX = off.official_fixtures()
except UniMDError as e: pytest.skip(f'official fixtures missing: {e}', allow_module_level=True)
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


def test_eval_outputs_equal_official_per_level(small, fixture):
    batch, exp = fixture
    for b in range(2):                                                    # video 1 is padded 173 -> 256
        with torch.no_grad(): out = small(one_video(batch, b))
        one = {k: [t[b:b + 1] for t in v] for k, v in exp['eval'].items() if k.endswith(('logits', 'offsets'))}
        errs = off.level_errors(out, one, 20)
        assert max(max(v) for v in errs.values()) < 1e-5, errs
        assert out.cls_logits[0][~out.pmask[0]].abs().sum() == 0 and out.reg[0][~out.pmask[0]].abs().sum() == 0


def test_batched_forward_matches_too(small, fixture):
    batch, exp = fixture
    with torch.no_grad(): out = small(batch)                              # both videos in one forward
    errs = off.level_errors(out, exp['eval'], 20)
    assert max(max(v) for v in errs.values()) < 1e-5, errs


@pytest.mark.parametrize('mode', ['bn_batch_stats', 'bn_running_stats'])
def test_train_losses_equal_official(small, fixture, mode):
    batch, exp = fixture
    L, e = off.train_losses(small, batch, mode == 'bn_batch_stats'), exp['train'][mode]
    pairs = [(L['cls_tad'], e['losses']['tad']['cls_loss']), (L['reg_tad'], e['losses']['tad']['reg_loss']),
             (L['cls_mr'], e['losses']['mr']['cls_loss']), (L['reg_mr'], e['losses']['mr']['reg_loss']),
             (L['total'], e['losses']['total']), (L['norm_tad'], e['loss_normalizer']['after_tad']),
             (L['norm_mr'], e['loss_normalizer']['after_mr'])]
    assert max(abs(float(a) - b) / abs(b) for a, b in pairs) < 1e-5, pairs


def test_detections_equal_official_postprocessing(small, fixture):
    batch, _ = fixture
    with torch.no_grad(): out = torch.no_grad()(lambda: [small(one_video(batch, b)) for b in range(2)])()
    dets = [small.detect(o, one_video(batch, b))[0] for b, o in enumerate(out)]
    official = json.loads((FIX / 'ego4d_small' / 'expected_detections.json').read_text())
    err = off.detection_errors(dets, batch, official, 20)
    assert err['count_mismatches'] == 0 and err['n'] == 1203 + 179 + 859 + 132, err
    assert err['boundary_s'] < 1e-4 and err['score'] < 1e-5, err


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


@pytest.mark.parametrize('tsv,config', [('charades_i3dclip.tsv', 'charades'), ('charades_i3d.tsv', 'charades_i3d'), ('anet.tsv', 'anet')])
def test_full_size_shapes_load_with_nothing_missing(tsv, config):
    sd = {k: torch.empty(s, device='meta') for k, (s, _) in official_shapes(tsv).items()}
    cfg = off.official_config(sd, config)
    with torch.device('meta'): model = UniMD(cfg.model)
    r = model.load_state_dict(off.map_official(sd, model), strict=True, assign=True)
    assert (r.missing_keys, r.unexpected_keys) == ([], []) and cfg.model.feat_dim == sd['backbone.embd.0.conv.weight'].shape[1]


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


def test_unused_tensors_named():
    sd = off.read_official(CKPT)
    unused = off.unused_official(sd)
    assert {'cls_head.norm.1.weight', 'reg_head.query_norm.2.bias'} <= set(unused)
    assert sum(k.endswith('num_batches_tracked') for k in unused) == 10 and len(unused) == 14


def test_default_mode_unchanged():
    m, o = UniMD(ModelConfig(feat_dim=16, channels=16, reg_mlp_hidden=16, max_seq_len=64)), UniMD(
        ModelConfig(feat_dim=16, channels=16, reg_mlp_hidden=16, max_seq_len=64, compat='official'))
    assert [len(f.a) for f in m.vision.fpn[0].bu_fuse] == [3, 3, 3, 3, 2] and [len(f.a) for f in o.vision.fpn[0].bu_fuse] == [3, 3, 3, 2, 2]
    assert not any(isinstance(x, torch.nn.BatchNorm1d) for x in m.modules()) and m.vision.embd[0].zero_input
    assert sum(isinstance(x, torch.nn.BatchNorm1d) for x in o.modules()) == 10 and not o.vision.embd[0].zero_input


def test_feature_grid_and_features_equal_official_items():
    items = torch.load(FIX / 'official_items.pt', weights_only=False)
    from unimd.features import FeatureGrid, load_features
    D = FIX / 'data'
    files = {'ego4d': 'ego4d/mq_annotations.json', 'charades_clip': 'charades_clip/Charades_v1_test.json', 'anet': 'anet/tad.json'}
    for ds, f in files.items():
        db = json.loads((D / f).read_text())['database']
        for vid, it in items[ds]['items'].items():
            t = it['tad']
            anns = db[vid.removeprefix('v_') if ds == 'anet' else vid]['annotations']
            secs = list(dict.fromkeys(tuple(a['segment']) for a in anns)) if ds == 'anet' else [a['segment'] for a in anns]
            grid = FeatureGrid(float(t['fps']), int(t['feat_stride']), int(t['feat_num_frames']))
            np.testing.assert_allclose(grid.to_steps(np.array(secs)), t['segments'].numpy(), atol=1e-4)
    for vid, it in items['anet']['items'].items():
        x = off.official_features(load_features(D / 'anet' / 'features', vid))
        torch.testing.assert_close(x.T, it['tad']['feats'], atol=1e-6, rtol=0)


def test_npz_features_equal_npy():
    from unimd.features import load_features
    vid = '6b647c2d-0065-424e-b002-51b252c017ca'
    npz = FIX / 'data' / 'ego4d' / 'features' / f'{vid}.npz'
    assert np.array_equal(load_features(npz.parent, vid), np.load(npz)['features'])


def test_released_embeddings_as_the_loaders_use_them():
    items = torch.load(FIX / 'official_items.pt', weights_only=False)
    D = FIX / 'data'
    for vid, it in items['anet']['items'].items():
        rt = off.ReleasedText(['class'], off.released_class_queries(D / 'anet/tad_classifier.npz', 'average'),
                              D / 'anet/mr_query_feats', suffix='_validationV2')
        torch.testing.assert_close(rt.encode(['class']), it['tad']['q_feats'])
        torch.testing.assert_close(rt.encode(it['mr']['queries']), it['mr']['q_feats'])
    with pytest.raises(UniMDError, match="'rows', 'columns' or 'average'"): off.released_class_queries(D / 'anet/tad_classifier.npz', 'mean')


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


OFFICIAL_FILES = {  # dataset: (our config, its grid, the official annotation files, items' MR query spelling)
    'ego4d': ('ego4d', ['data.fps=30', 'data.feat_stride=16'], 'ego4d/mq_annotations.json', 'ego4d/nlq_annotations.json'),
    'charades_clip': ('charades', ['data.fps=24', 'data.feat_stride=4'], 'charades_clip/Charades_v1_{split}.json',
                      'charades_clip/charades_sta_{split}.json'),
    'anet': ('anet', ['data.fps=30', 'data.feat_stride=16', 'data.num_classes=1'], 'anet/tad.json', 'anet/captions_val_2.json'),
}


@pytest.mark.parametrize('ds', list(OFFICIAL_FILES))
def test_official_annotation_files_give_the_official_items(ds):
    "data.tad_file / data.mr_file read the official JSONs; the items' segments (grid units), labels and query order are the official ones."
    from unimd.features import VideoItem
    from unimd.splits import real_videos, data_grid
    config, grid_sets, tad, mr = OFFICIAL_FILES[ds]
    D = FIX / 'data'
    cfg = load_config(config, grid_sets + [f'data.tad_file={D / tad}', f'data.mr_file={D / mr}'])
    videos, classes = real_videos(cfg.data, 'test')
    items = torch.load(FIX / 'official_items.pt', weights_only=False)[ds]['items']
    assert list(videos) == list(items)
    grid = data_grid(cfg.data)
    for vid, it in items.items():
        ours = VideoItem.from_video(videos[vid], np.zeros((8, 4), np.float32), grid, classes)
        segs = {q.qid if q.task == 'mr' else q.text: grid.to_steps(s) for q, s in zip(ours.queries, ours.segments)}
        t, m = it['tad'], it['mr']
        for c, name in enumerate(classes):                                # each class query: the official segments of its label, in order
            np.testing.assert_allclose(segs[name], t['segments'][t['labels'] == c].numpy().reshape(-1, 2), atol=1e-5)
        assert sum(len(segs[c]) for c in classes) == len(t['labels'])
        sents = videos[vid].sentences
        spell = off.ego4d_query_key if ds == 'ego4d' else str.strip
        assert [spell(s.text) for s in sents] == [spell(q) for q in m['queries']]
        np.testing.assert_allclose(np.concatenate([segs[s.qid] for s in sents]), m['segments'].numpy(), atol=1e-5)


def released_ego4d(tmp_path):
    "The fixture's Ego4D data folder as a user has it, with clip f5a42ef7 moved to the training subset (the fixture holds validation only)."
    D = FIX / 'data' / 'ego4d'
    for name in ('mq_annotations.json', 'nlq_annotations.json'):
        db = json.loads((D / name).read_text())
        db['database']['f5a42ef7-9961-4264-87dd-d1a8261cbb7c']['subset'] = 'training'
        (tmp_path / name).write_text(json.dumps(db))
    return ['model.text_encoder=released', 'model.feat_dim=64', 'model.max_seq_len=256', 'model.channels=32',
            'model.reg_mlp_hidden=32', 'data.num_classes=20', f'data.features={D / "features"}',
            f'data.tad_file={tmp_path / "mq_annotations.json"}', f'data.mr_file={tmp_path / "nlq_annotations.json"}',
            f'data.text_classes={D / "mq_classifier.npz"}', f'data.text_queries={D / "nlq_query_feats"}',
            'train.batch_size=1', 'train.warmup_epochs=0', 'train.epochs=2', 'train.early_stop_epoch=0', 'train.ema_decay=0.5']


def test_train_and_evaluate_with_the_released_embeddings(tmp_path, capsys):
    "unimd train --config ego4d --set model.text_encoder=released ...: no CLIP weights; trains, evaluates, predicts from the release."
    from unimd.cli import main
    sets = released_ego4d(tmp_path)
    argv = ['train', '--config', 'ego4d', '--out', str(tmp_path / 'run'), '--no-progress', '--threads', '1']
    assert main(argv + sum((['--set', s] for s in sets), [])) == 0
    final = json.loads((tmp_path / 'run' / 'metrics.json').read_text())['final']
    assert all(0 <= final[k] <= 100 for k in ('tad_mAP', 'mr_R1@0.3', 'mr_R5@0.5'))
    preds = (tmp_path / 'run' / 'predictions_mr.jsonl').read_text()
    assert '6b647c2d' in preds and 'f5a42ef7' not in preds                       # evaluated on the validation clip
    feats = FIX / 'data' / 'ego4d' / 'features' / '6b647c2d-0065-424e-b002-51b252c017ca.npy'
    capsys.readouterr()
    assert main(['predict', str(tmp_path / 'run' / 'checkpoint.pt'), str(feats), '-q', 'did i close the fridge?', '--top', '1', '--device', 'cpu']) == 0
    assert 'fridge' in capsys.readouterr().out
    assert main(['predict', str(tmp_path / 'run' / 'checkpoint.pt'), str(feats), '-q', 'a sentence nobody embedded', '--device', 'cpu']) == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err and 'nlq_query_feats' in err and 'model.text_encoder: clip' in err and err.count('\n') == 1


@pytest.mark.parametrize('key, value, says', [('data.text_queries', 'nope', 'data.text_queries'),
                                               ('data.text_classes', 'nope.npz', 'not an official classifier file'),
                                               ('data.tad_file', 'nope.json', 'data.tad_file')])
def test_released_files_missing_one_line(tmp_path, capsys, key, value, says):
    from unimd.cli import main
    sets = [s for s in released_ego4d(tmp_path) if not s.startswith(key + '=')] + [f'{key}={tmp_path / value}']
    argv = ['train', '--config', 'ego4d', '--out', str(tmp_path / 'run'), '--no-progress'] + sum((['--set', s] for s in sets), [])
    assert main(argv) == 2 and not (tmp_path / 'run' / 'checkpoint.pt').exists()
    err = capsys.readouterr().err
    assert says in err and value in err and 'Traceback' not in err and err.count('\n') == 1


def test_charades_release_as_its_loader_reads_it():
    "data.feature_suffix + data.features_clip: load_split gives the official I3D+CLIP features; data.l2_features the Ego4D ones."
    from unimd.splits import load_split
    D = FIX / 'data' / 'charades_clip'
    cfg = load_config('charades', [f'data.tad_file={D}/Charades_v1_{{split}}.json', f'data.mr_file={D}/charades_sta_{{split}}.json',
                                   f'data.features={D}/i3d', 'data.feature_suffix=_rgb_flow', f'data.features_clip={D}/clip', 'data.num_classes=3'])
    split = load_split(cfg.data, 'test')
    items = torch.load(FIX / 'official_items.pt', weights_only=False)
    for vid, it in items['charades_clip']['items'].items():
        torch.testing.assert_close(torch.from_numpy(split.features(vid)).T, it['tad']['feats'], atol=1e-6, rtol=0)
    E = FIX / 'data' / 'ego4d'
    ego = load_split(load_config('ego4d', [f'data.tad_file={E}/mq_annotations.json', f'data.features={E}/features', 'data.l2_features=true',
                                           'data.num_classes=20']).data, 'test')
    for vid, it in items['ego4d']['items'].items():
        torch.testing.assert_close(torch.from_numpy(ego.features(vid)).T, it['tad']['feats'], atol=1e-6, rtol=0)
    with pytest.raises(UniMDError, match='no features in'):
        load_split(load_config('charades', [f'data.tad_file={D}/Charades_v1_{{split}}.json', f'data.features={D}/i3d',
                                            'data.num_classes=3']).data, 'test')                  # no suffix: the I3D files are not found
