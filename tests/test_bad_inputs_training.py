"""Bad input to training and to the trained-model loader: one line on stderr naming the file or value and the fix,
exit 2 (Ctrl-C: 130), no traceback, nothing half-written left behind. Tiny synthetic configs: each case takes seconds."""
import os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import torch
from unimd.cli import main
from cli_checks import fails, files_in
from unimd.config import load_config
from unimd.checkpoint import load_checkpoint, save_checkpoint
from unimd.features import save_features
from unimd.synthetic import make_world
from unimd.train import train

TINY = ['model.text_encoder=hash', 'model.text_dim=32', 'model.feat_dim=16', 'model.channels=16', 'model.reg_mlp_hidden=16',
        'model.fpn_layers=1', 'model.max_seq_len=192', 'data.synthetic.feat_dim=16', 'data.synthetic.n_train=12',
        'data.synthetic.n_test=4', 'data.synthetic.n_classes=4', 'train.batch_size=4', 'train.warmup_epochs=1',
        'train.epochs=1', 'train.early_stop_epoch=0']


def sets(*extra): return [x for s in TINY + list(extra) for x in ('--set', s)]


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "A finished tiny run: its folder and one test video's feature file."
    out = tmp_path_factory.mktemp('run')
    cfg = load_config(None, TINY)
    train(cfg, out, progress=False)
    world = make_world(cfg.data.synthetic)
    vid = next(v for v, x in world.videos.items() if x.subset == 'test')
    return out, save_features(tmp_path_factory.mktemp('feats'), vid, world.features(vid))


# ---------------------------------------------------------------- the config

def test_missing_config_lists_the_names(capsys, tmp_path):
    err = fails(capsys, ['train', '--config', 'nope.yaml', '--out', str(tmp_path / 'o')], "'nope.yaml' not found",
                'available: anet, charades', 'ego4d', 'synthetic')
    assert 'nope.yaml.yaml' not in err and not (tmp_path / 'o').exists()


def test_config_typo_and_bad_set(capsys, tmp_path):
    fails(capsys, ['train', '--config', 'synthetic', '--set', 'train.lrate=1', '--out', str(tmp_path / 'o')],
          'unknown config key train.lrate', 'did you mean train.lr?')
    fails(capsys, ['train', '--config', 'synthetic', '--set', 'train.lr', '--out', str(tmp_path / 'o')], 'section.key=value')
    assert not (tmp_path / 'o').exists()


# ---------------------------------------------------------------- checkpoints given to predict

def test_truncated_checkpoint(capsys, tmp_path, run):
    out, feats = run
    b = (out / 'checkpoint.pt').read_bytes()
    (tmp_path / 'cut.pt').write_bytes(b[:len(b) // 3])
    err = fails(capsys, ['predict', str(tmp_path / 'cut.pt'), str(feats)], 'cut.pt is truncated or damaged', 'copy it again')
    assert 'miniz' not in err and 'PytorchStreamReader' not in err


def test_yaml_given_as_checkpoint(capsys, tmp_path, run):
    _, feats = run
    (tmp_path / 'synthetic.yaml').write_text('model:\n  feat_dim: 16\n')
    err = fails(capsys, ['predict', str(tmp_path / 'synthetic.yaml'), str(feats)], 'synthetic.yaml is a text file', 'checkpoint.pt')
    assert 'weights_only' not in err                                   # never torch's advice to unpickle it


def test_checkpoint_of_another_shape(capsys, tmp_path, run):
    out, feats = run
    ck = load_checkpoint(out)
    ck['config']['model']['feat_dim'] = 24                              # the config says 24-d, the weights are 16-d
    save_checkpoint(ck, tmp_path / 'other.pt')
    fails(capsys, ['predict', str(tmp_path / 'other.pt'), str(feats)], 'tensor vision.embd.0.conv.weight', 'model.feat_dim')


# ---------------------------------------------------------------- what predict is given

def test_predict_non_video_and_top(capsys, tmp_path, run):
    out, feats = run
    (tmp_path / 'notes.txt').write_text('not a video')
    err = fails(capsys, ['predict', str(out), str(tmp_path / 'notes.txt'), '-q', 'open door'], 'notes.txt is neither a feature file')
    assert '-d' not in err                                             # no complaint about feature widths
    for top in ('-1', '0'): fails(capsys, ['predict', str(out), str(feats), '--top', top], f'--top-k {top}')


def test_predict_feature_file_that_is_not_an_array(capsys, tmp_path, run):
    out, _ = run
    (tmp_path / 'notes.npy').write_text('some text')
    torch.save({'layer': torch.nn.Linear(1, 1)}, tmp_path / 'module.pt')
    for name in ('notes.npy', 'module.pt'):
        err = fails(capsys, ['predict', str(out), str(tmp_path / name)], f'from {tmp_path / name}', 'not an array')
        assert 'allow_pickle' not in err and 'weights_only' not in err          # no advice to load it unsafely


# ---------------------------------------------------------------- training data

@pytest.fixture
def real_like(tmp_path, monkeypatch):
    "A 'charades' config whose annotations are a tiny synthetic world's (patched in) and whose features are .npy files."
    cfg = load_config(None, TINY)
    world = make_world(cfg.data.synthetic)
    monkeypatch.setattr('unimd.splits.real_videos', lambda dc, split: (world.split(split), world.classes))
    (tmp_path / 'feats').mkdir()
    g = world.grid
    argv = ['train', '--config', 'synthetic', '--no-progress', '--out', str(tmp_path / 'out')] + sets(
        'data.dataset=charades', 'data.num_classes=0', f'data.features={tmp_path / "feats"}', f'data.fps={g.fps}', f'data.feat_stride={g.stride}',
        f'data.frames_per_clip={g.frames_per_clip}', 'model.text_encoder=hash', 'model.text_dim=32')
    return world, tmp_path / 'feats', tmp_path / 'out', argv


def test_allow_missing_with_no_features_at_all(capsys, real_like):
    world, feats, out, argv = real_like
    fails(capsys, argv + ['--set', 'data.allow_missing=true'], 'none of the 12 train videos has features', str(feats))
    assert files_in(out) == []


def test_nan_training_feature(capsys, real_like):
    world, feats, out, argv = real_like
    for v, x in world.videos.items():
        f = world.features(v).copy()
        if x.subset == 'train': f[3] = np.nan
        save_features(feats, v, f)
    vid = next(iter(world.split('train')))
    fails(capsys, argv, f"features of video {vid!r} contain NaN/inf", str(feats / f'{vid}.npy'), 're-extract')
    assert files_in(out) == []                                          # no header-only log.csv, no checkpoint


def all_finite_checkpoint(out):
    ck = load_checkpoint(out / 'checkpoint.pt')
    return all(bool(torch.isfinite(t).all()) for sd in (ck['model'], ck['ema']) for t in sd.values() if t.dtype.is_floating_point)


def test_infinite_learning_rate_is_refused_before_training(capsys, tmp_path):
    out = tmp_path / 'out'
    # refused with the other config values before anything is built (a finite lr that diverges meets the trainer's guard below)
    fails(capsys, ['train', '--config', 'synthetic', '--no-progress', '--out', str(out)] + sets('train.lr=inf'),
          'train.lr', 'inf', 'out of range')
    assert not (out / 'checkpoint.pt').exists()


def test_non_finite_loss_keeps_the_last_good_checkpoint(capsys, tmp_path):
    "One step per epoch (one batch of all 12 videos); lr 1e36 / 4 at step 1 leaves finite but huge weights (checkpointed),"
    "whose forward at step 2 overflows: the run stops there and the step-1 checkpoint stays, finite."
    out = tmp_path / 'out'
    argv = ['train', '--config', 'synthetic', '--no-progress', '--out', str(out)] + sets(
        'train.batch_size=12', 'train.sampler=random', 'train.lr=1e36', 'train.warmup_epochs=4', 'train.epochs=2')
    err = fails(capsys, argv, 'step 2 of phase 1/1', 'became non-finite at lr 5e+35', 'lower train.lr (now 1e+36)',
                f"the last good checkpoint {out / 'checkpoint.pt'} (step 1 of phase 1) is kept")
    assert load_checkpoint(out / 'checkpoint.pt')['step'] == 1 and all_finite_checkpoint(out)
    assert not [p for p in out.iterdir() if p.name.endswith('.tmp')]


# ---------------------------------------------------------------- Ctrl-C

def test_ctrl_c_stops_with_a_checkpoint_and_resumes(tmp_path):
    out = tmp_path / 'out'
    cmd = ['unimd', 'train', '--config', 'synthetic', '--no-progress', '--out', str(out)] + sets('train.epochs=30')
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    t = time.time()
    while not ((out / 'log.csv').exists() and open(out / 'log.csv').read().count('\n') >= 3):
        assert p.poll() is None and time.time() - t < 120, p.communicate()
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    line, = err.strip().splitlines()
    step = load_checkpoint(out)['step']
    assert line == f'unimd train: stopped at step {step} (checkpoint saved in {out}); run the same command to resume'
    assert 'Traceback' not in err and step >= 2
    rows = open(out / 'log.csv').read().splitlines()
    assert len(rows) == step + 1                                        # the log ends where the checkpoint is
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)     # the same command
    while not (open(out / 'log.csv').read().count('\n') > step + 1):
        assert p.poll() is None and time.time() - t < 240, p.communicate()
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert err.splitlines()[0] == f"resuming {out / 'checkpoint.pt'} at step {step} of phase 1/1", err
    assert p.returncode == 130 and load_checkpoint(out)['step'] > step
