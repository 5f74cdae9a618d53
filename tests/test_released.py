"Released data (issue 10): features, annotation files and query embeddings as the official loaders read them (unimd.released)."
import json
import numpy as np
import pytest
import torch
from unimd.core import UniMDError
from unimd.config import load_config

off = pytest.importorskip('unimd.official')
rel = pytest.importorskip('unimd.released')
try: FIX = off.official_fixtures()
except UniMDError as e: pytest.skip(f'official fixtures missing: {e}', allow_module_level=True)


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
        x = rel.official_features(load_features(D / 'anet' / 'features', vid))
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
        rt = rel.ReleasedText(['class'], rel.released_class_queries(D / 'anet/tad_classifier.npz', 'average'),
                              D / 'anet/mr_query_feats', suffix='_validationV2')
        torch.testing.assert_close(rt.encode(['class']), it['tad']['q_feats'])
        torch.testing.assert_close(rt.encode(it['mr']['queries']), it['mr']['q_feats'])
    with pytest.raises(UniMDError, match="'rows', 'columns' or 'average'"): rel.released_class_queries(D / 'anet/tad_classifier.npz', 'mean')


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
        spell = rel.ego4d_query_key if ds == 'ego4d' else str.strip
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
    from unimd.ablation import evaluate_checkpoint, STUDY_METRICS                # a study scores the run with the same encoder
    from unimd.splits import load_split
    split = load_split(load_config('ego4d', sets).data, 'test')
    cols = evaluate_checkpoint(tmp_path / 'run', split.videos, split.features, 'ego4d')
    assert cols == {c: final[k] for c, k in STUDY_METRICS['ego4d'].items()} and len(cols) == 4


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
