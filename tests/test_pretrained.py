"Pretrained folders (config.json + model.safetensors + model card) and the feature-spec check at every entry point."
import contextlib, io, json, os, shutil
from pathlib import Path
import numpy as np
import pytest
import torch
from unimd.core import UniMDError
from unimd.cli import main
from unimd.config import load_config
from unimd.features import save_features
from unimd.train import train
from unimd.synthetic import make_world
from unimd.predictor import Predictor
from unimd.pretrained import (from_pretrained, read_card, config_spec, check_feature_spec, CONFIG_FILE, WEIGHTS_FILE, CARD_FILE)

torch.set_num_threads(1)
TINY = ['model.text_encoder=hash', 'model.text_dim=32', 'model.feat_dim=16', 'model.channels=16', 'model.reg_mlp_hidden=16',
        'model.fpn_layers=1', 'model.max_seq_len=192', 'data.synthetic.feat_dim=16', 'data.synthetic.n_train=12',
        'data.synthetic.n_test=6', 'data.synthetic.n_classes=4', 'train.batch_size=4', 'train.lr=1e-3',
        'train.warmup_epochs=1', 'train.epochs=1', 'train.early_stop_epoch=0']


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "A finished tiny run, its pretrained folder, and a feature folder of test videos on the run's spec."
    d = tmp_path_factory.mktemp('pretrained')
    cfg = load_config(None, TINY)
    torch.manual_seed(0)
    res = train(cfg, d / 'run', progress=False)
    code, out, err = cli('export-pretrained', d / 'run', d / 'pt')
    assert code == 0 and 'tad + mr model, 4 classes, features 16-d from synthetic every 8 frames at 24 fps' in out, err
    world = make_world(cfg.data.synthetic)
    vids = list(world.split('test'))[:2]
    for v in vids: save_features(d / 'feats', v, world.features(v))
    g = world.grid
    spec = dict(extractor='synthetic', dim=16, fps=g.fps, stride=g.stride, frames_per_clip=g.frames_per_clip, normalize=False)
    (d / 'feats' / 'features.json').write_text(json.dumps(spec))
    return d, res, world, vids


def test_round_trip_gives_identical_predictions(run):
    d, res, world, vids = run
    queries = world.classes + ['someone opens the door', 'a person sits down']
    for v in vids:
        a = Predictor.from_checkpoint(d / 'run', device='cpu').encode(d / 'feats' / f'{v}.npy').detect(queries, top_k=10)
        b = Predictor.from_pretrained(d / 'pt', device='cpu').encode(d / 'feats' / f'{v}.npy').detect(queries, top_k=10)
        assert len(a) == 10 * len(queries) and a.equals(b)
    pt = from_pretrained(d / 'pt')
    ck = torch.load(d / 'run' / 'checkpoint.pt', weights_only=True)['ema']
    assert pt.model.state_dict().keys() == ck.keys() and all(torch.equal(pt.model.state_dict()[k], ck[k]) for k in ck)
    assert pt.classes == world.classes


def test_train_writes_the_pretrained_folder(run):
    d, res, world, vids = run
    written, exported = d / 'run' / 'pretrained', d / 'pt'
    assert sorted(p.name for p in written.iterdir()) == [CARD_FILE, CONFIG_FILE, WEIGHTS_FILE]
    assert (written / WEIGHTS_FILE).read_bytes() == (exported / WEIGHTS_FILE).read_bytes()
    assert json.loads((written / CONFIG_FILE).read_text())['metrics'] == res['final']


def test_folder_is_the_hub_layout_without_pickle(run):
    d, res, world, vids = run
    from safetensors import safe_open
    assert sorted(p.name for p in (d / 'pt').iterdir()) == [CARD_FILE, CONFIG_FILE, WEIGHTS_FILE]
    with safe_open(str(d / 'pt' / WEIGHTS_FILE), 'pt') as f: keys = set(f.keys())
    assert keys == set(from_pretrained(d / 'pt').model.state_dict())
    info = json.loads((d / 'pt' / CONFIG_FILE).read_text())
    assert info['config']['model']['feat_dim'] == 16 and info['classes'] == world.classes and info['metrics'] == res['final']


def test_model_card_shows_feature_spec_and_metrics(run):
    d, res, world, vids = run
    meta = read_card(d / 'pt' / CARD_FILE)
    assert meta['library_name'] == 'unimd' and meta['unimd']['tasks'] == ['tad', 'mr']
    assert meta['unimd']['feature_spec'] == dict(extractor='synthetic', dim=16, fps=24.0, stride=8, frames_per_clip=16, normalize=False)
    assert meta['unimd']['metrics'].keys() == res['final'].keys()
    assert abs(meta['unimd']['metrics']['mr_R1@0.5'] - res['final']['mr_R1@0.5']) < 1e-3
    text = (d / 'pt' / CARD_FILE).read_text()
    assert '| fps | 24.0 |' in text and '| frames_per_clip | 16 |' in text and f"| tad_mAP | {res['final']['tad_mAP']:.2f} |" in text


def test_mismatched_feature_folder_is_refused_with_one_line(run, tmp_path):
    d, res, world, vids = run
    shutil.copytree(d / 'feats', tmp_path / 'f')
    spec = json.loads((d / 'feats' / 'features.json').read_text())
    (tmp_path / 'f' / 'features.json').write_text(json.dumps({**spec, 'fps': 30.0, 'stride': 16}))
    f = tmp_path / 'f' / f'{vids[0]}.npy'
    for model in (d / 'pt', d / 'run' / 'checkpoint.pt'):
        code, out, err = cli('predict', model, f, '-q', world.classes[0])
        assert code == 2 and err.count('\n') == 1 and 'fps=30.0, stride=16' in err and 'expects' in err and 'fps=24.0, stride=8' in err
        code, out, err = cli('predict', model, f, '-q', world.classes[0], '--ignore-feature-spec')
        assert code == 0 and world.classes[0] in out
    code, out, err = cli('predict', d / 'pt', d / 'feats' / f'{vids[0]}.npy', '-q', world.classes[0])
    assert code == 0 and out.count(world.classes[0]) == 5


def test_spec_check_names_every_differing_key(tmp_path):
    want = dict(extractor='clip-ViT-B-32-quickgelu-openai', dim=512, fps=24.0, stride=4, frames_per_clip=16, normalize=False)
    (tmp_path / 'features.json').write_text(json.dumps({**want, 'extractor': 'clip-ViT-L-14-openai', 'dim': 768, 'normalize': True}))
    with pytest.raises(UniMDError) as e: check_feature_spec(want, tmp_path, 'model M')
    msg = str(e.value)
    assert "extractor='clip-ViT-L-14-openai', dim=768, normalize=True, but model M expects extractor='clip-ViT-B-32-quickgelu-openai', dim=512, normalize=False" in msg
    assert check_feature_spec({**want, 'extractor': None, 'normalize': None, 'dim': 768}, tmp_path)['dim'] == 768   # unrecorded: not compared


def test_hub_id_loads_from_the_hub_cache_offline(run, tmp_path, monkeypatch):
    "The hub code path for real: `owner/name` resolves through huggingface_hub's cache (HF_HUB_OFFLINE=1: no network)."
    d, res, world, vids = run
    from huggingface_hub import constants
    if not constants.HF_HUB_OFFLINE: pytest.skip('needs HF_HUB_OFFLINE=1 (the test must not reach the network)')
    repo = tmp_path / 'models--unimd--tiny'
    commit = '0123456789abcdef0123456789abcdef01234567'
    (repo / 'refs').mkdir(parents=True); (repo / 'refs' / 'main').write_text(commit)
    shutil.copytree(d / 'pt', repo / 'snapshots' / commit)
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(tmp_path))
    pt = from_pretrained('unimd/tiny')
    assert pt.folder == repo / 'snapshots' / commit and pt.classes == world.classes
    with pytest.raises(UniMDError, match='only models already in the hub cache'): from_pretrained('unimd/absent')


def test_bad_folders(run, tmp_path):
    d, res, world, vids = run
    with pytest.raises(UniMDError, match='has no config.json'): from_pretrained(d / 'feats')
    shutil.copytree(d / 'pt', tmp_path / 'p')
    (tmp_path / 'p' / WEIGHTS_FILE).write_bytes(b'not safetensors')
    with pytest.raises(UniMDError, match='not a readable safetensors file'): from_pretrained(tmp_path / 'p')
    (tmp_path / 'p' / WEIGHTS_FILE).unlink()
    with pytest.raises(UniMDError, match='incomplete'): from_pretrained(tmp_path / 'p')
    code, out, err = cli('export-pretrained', tmp_path / 'nothing', tmp_path / 'x')
    assert code == 2 and 'not found' in err and not (tmp_path / 'x').exists()


def test_imported_official_checkpoint_exports(tmp_path):
    "A released official checkpoint, imported (`unimd import-official`), becomes a pretrained folder with the same weights."
    off = pytest.importorskip('unimd.official')
    try: fix = off.official_fixtures()
    except UniMDError as e: pytest.skip(f'official fixtures missing: {e}')
    from unimd.checkpoint import load_trained
    ck = off.import_official(fix / 'ego4d_small' / 'checkpoint.pth.tar', 'ego4d', tmp_path / 'small.pt',
                             ['model.feat_dim=64', 'model.max_seq_len=256', 'data.num_classes=20'])
    code, out, err = cli('export-pretrained', ck, tmp_path / 'pt')
    assert code == 0 and 'features 64-d' in out and 'every 16 frames at 30 fps' in out, err
    pt, (model, cfg, _) = from_pretrained(tmp_path / 'pt'), load_trained(ck)
    assert all(torch.equal(pt.model.state_dict()[k], v) for k, v in model.state_dict().items())
    assert pt.origin.startswith('Imported from the official checkpoint `checkpoint.pth.tar`')
    assert pt.origin in (tmp_path / 'pt' / CARD_FILE).read_text() and read_card(tmp_path / 'pt' / CARD_FILE)['unimd']['dataset'] == 'ego4d'


def test_export_pretrained_never_overwrites_without_force(run, tmp_path):
    d = run[0]
    out = tmp_path / 'mine'; out.mkdir(); (out / 'README.md').write_text('my own notes')
    code, _, err = cli('export-pretrained', d / 'run', out)
    assert code == 2 and 'already holds files' in err and '--force' in err and err.count('\n') == 1, err
    assert (out / 'README.md').read_text() == 'my own notes' and sorted(p.name for p in out.iterdir()) == ['README.md']
    code, _, err = cli('export-pretrained', d / 'run', out, '--force')
    assert code == 0, err
    assert read_card(out / CARD_FILE)['library_name'] == 'unimd' and 'arxiv:2404.04933' in read_card(out / CARD_FILE)['tags']
    code, _, err = cli('export-pretrained', d / 'run', d / 'run', '--force')
    assert code == 2 and 'holds) the input' in err, err


def test_unimd_model_is_a_hub_mixin(run):
    from huggingface_hub import ModelHubMixin
    from unimd.model import UniMD
    d = run[0]
    assert issubclass(UniMD, ModelHubMixin) and all(hasattr(UniMD, m) for m in ('from_pretrained', 'save_pretrained', 'push_to_hub'))
    m = UniMD.from_pretrained(d / 'pt')                # the folder `unimd export-pretrained` wrote, read by the mixin
    pt = from_pretrained(d / 'pt')
    assert m.cfg == pt.model.cfg and all(torch.equal(m.state_dict()[k], v) for k, v in pt.model.state_dict().items())


def test_push_says_in_one_line_why_it_cannot(run, monkeypatch):
    import subprocess, sys, time
    d = run[0]
    env = {**os.environ, 'HF_HUB_OFFLINE': '1'}
    r = subprocess.run(['unimd', 'push', str(d / 'pt'), 'me/unimd-test'], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and 'HF_HUB_OFFLINE=1' in r.stderr and r.stderr.count('\n') == 1, r.stderr
    # online but no hub: a closed local port answers at once (nothing leaves the machine)
    env = {**os.environ, 'HF_HUB_OFFLINE': '0', 'HF_ENDPOINT': 'http://127.0.0.1:9', 'HF_TOKEN': 'hf_test'}
    t = time.time()
    r = subprocess.run(['unimd', 'push', str(d / 'pt'), 'me/unimd-test'], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and 'could not be reached' in r.stderr and r.stderr.count('\n') == 1, r.stderr
    assert time.time() - t < 60


def test_a_synthetic_model_refuses_a_real_video_in_one_line(run, tmp_path):
    "The demo's models know the SYNTHETIC world only: a video gets one line saying so and the way forward."
    from unimd.extract import make_test_video
    d = run[0]
    video = make_test_video(tmp_path / 'kitchen.mkv', np.random.default_rng(0).integers(0, 255, (24, 32, 32, 3), dtype=np.uint8))
    code, out, err = cli('predict', d / 'pt', video, '-q', 'open a door')
    assert code == 2 and "SYNTHETIC world's rendered features" in err and 'Your own video' in err and err.count('\n') == 1, err
    assert out == ''
