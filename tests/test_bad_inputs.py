"""Bad input at the command line: one line on stderr naming the file or value and the fix, exit code 2, no traceback,
nothing half-written left behind. (Training and checkpoint cases: test_bad_inputs_training.py; evaluation cases:
test_bad_inputs_evaluate.py; the app on a busy port: test_demo.py.)"""
import json, os, signal, subprocess
from pathlib import Path
import numpy as np
import pytest
from unimd.cli import main
from cli_checks import fails, files_in, hostile_feature_files, SECRET
from unimd.config import update_config
from unimd.demo import demo_config
from unimd.train import train

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get('UNIMD_DATA', ROOT.parent / 'shared' / 'data'))


def torch_cuda():
    import torch
    return torch.cuda.is_available()


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    "A checkpoint of a tiny synthetic model (one epoch)."
    cfg = update_config(demo_config(quick=True), {'data': {'synthetic': dict(n_train=16, n_test=4, n_classes=4)},
                                                  'train': dict(warmup_epochs=1, epochs=0)})
    out = tmp_path_factory.mktemp('run')
    train(cfg, out, progress=False)
    return out / 'checkpoint.pt'


# ---------------------------------------------------------------- every command

def test_unknown_command(capsys):
    fails(capsys, ['nope'], "'nope'", 'unimd --help')


@pytest.mark.parametrize('value', ['0', '-1', 'two'])
def test_threads_must_be_positive(capsys, value):
    fails(capsys, ['stats', '--threads', value], value, '--threads 1')


def test_output_cut_short_is_no_traceback(tmp_path):
    "`unimd COMMAND | head`: the reader goes away before we write; we stop quietly, as `yes | head` does."
    if not (DATA / 'charades').is_dir(): pytest.skip(f'needs the annotation files in {DATA} (data/README.md)')
    p = subprocess.Popen(['unimd', 'stats', '--dataset', 'charades', '--json'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, 'UNIMD_DATA': str(DATA)})
    p.stdout.close()                                   # nobody reads: the first write fails with EPIPE
    err = p.stderr.read().decode(); p.wait(timeout=120)
    assert p.returncode == 128 + signal.SIGPIPE and err == '', err


# ---------------------------------------------------------------- stats

def test_stats_without_annotations_names_the_file_and_readme(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv('UNIMD_DATA', str(tmp_path))
    fails(capsys, ['stats', '--dataset', 'charades'], str(tmp_path / 'charades'), 'data/README.md')


# ---------------------------------------------------------------- extract

def test_extract_offline_without_weights_names_the_flag(capsys, tmp_path, monkeypatch):
    (tmp_path / 'v.mp4').write_bytes(b'')
    monkeypatch.setenv('HF_HUB_OFFLINE', '1'); monkeypatch.setenv('HF_HOME', str(tmp_path / 'hf'))
    monkeypatch.delenv('HF_HUB_CACHE', raising=False)
    err = fails(capsys, ['extract', str(tmp_path / 'v.mp4'), '--out', str(tmp_path / 'f'), '--device', 'cpu'], 'HF_HUB_OFFLINE', '--pretrained')
    assert 'get_text_encoder' not in err
    assert files_in(tmp_path / 'f') == []


def test_extract_non_video_leaves_nothing(capsys, tmp_path):
    pytest.importorskip('av', reason='PyAV is not installed: pip install av')
    (tmp_path / 'notes.mp4').write_text('not a video')
    fails(capsys, ['extract', str(tmp_path / 'notes.mp4'), '--out', str(tmp_path / 'f'), '--pretrained', 'random', '--device', 'cpu'],
          'notes.mp4', 'not a video')
    assert files_in(tmp_path / 'f') == []


def test_extract_missing_video(capsys, tmp_path):
    fails(capsys, ['extract', str(tmp_path / 'nope.mp4'), '--out', str(tmp_path / 'f')], 'nope.mp4', 'not found')


# ---------------------------------------------------------------- predict and app

def test_predict_missing_checkpoint(capsys, tmp_path):
    fails(capsys, ['predict', str(tmp_path / 'none.pt'), str(tmp_path / 'x.npy'), '-q', 'a'], 'none.pt', 'unimd train')


def test_app_missing_checkpoint(capsys, tmp_path):
    fails(capsys, ['app', '--checkpoint', str(tmp_path / 'none.pt')], 'none.pt', 'unimd train')


@pytest.mark.parametrize('bad, words', [
    (np.full((40, 128), np.nan, np.float32), ('NaN', 're-extract')),
    (np.zeros((40, 7), np.float32), ('7-d', '128-d')),
])
def test_predict_bad_feature_file(capsys, tmp_path, ckpt, bad, words):
    np.save(tmp_path / 'v.npy', bad)
    fails(capsys, ['predict', str(ckpt), str(tmp_path / 'v.npy'), '-q', 'a person sits'], 'v', *words)


def test_predict_missing_feature_file(capsys, tmp_path, ckpt):
    fails(capsys, ['predict', str(ckpt), str(tmp_path / 'gone.npy'), '-q', 'a person sits'], 'gone.npy')


# ---------------------------------------------------------------- demo

def test_demo_out_is_a_file(capsys, tmp_path):
    (tmp_path / 'results.txt').write_text('mine')
    fails(capsys, ['demo', '--out', str(tmp_path / 'results.txt')], 'results.txt', 'folder')
    assert (tmp_path / 'results.txt').read_text() == 'mine'


# ---------------------------------------------------------------- evaluate (files that cannot be read)

def test_evaluate_missing_and_malformed_files(capsys, tmp_path):
    (tmp_path / 'gt.json').write_text('{"database": {')
    fails(capsys, ['evaluate', 'tad', '--benchmark', 'activitynet', '--gt', str(tmp_path / 'nope.json'), '--pred', str(tmp_path / 'gt.json')],
          'nope.json')
    fails(capsys, ['evaluate', 'tad', '--benchmark', 'activitynet', '--gt', str(tmp_path / 'gt.json'), '--pred', str(tmp_path / 'gt.json')],
          'gt.json', 'JSON')


# ---------------------------------------------------------------- check

def test_check_missing_feature_folder_and_config(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv('UNIMD_DATA', str(tmp_path))                # no annotations: that is said first, naming the file
    fails(capsys, ['check', '--config', 'charades', '--features', str(tmp_path / 'nowhere')], 'Charades_v1_classes.txt', 'data/README.md')
    fails(capsys, ['check', '--config', 'nope'], "'nope'", 'charades')
    if not (DATA / 'charades').is_dir(): return
    monkeypatch.setenv('UNIMD_DATA', str(DATA))
    fails(capsys, ['check', '--config', 'charades', '--features', str(tmp_path / 'nowhere')], 'nowhere', 'does not exist')


# ---------------------------------------------------------------- hostile feature files: predict, check, training

HOSTILE = ['external_storage', 'dev_zero_storage', 'external_link', 'soft_link', 'virtual', 'hollow', 'huge_header', 'fifo', 'dev_zero']


@pytest.fixture(scope='module')
def hostile(tmp_path_factory):
    return hostile_feature_files(tmp_path_factory.mktemp('hostile'))


@pytest.mark.parametrize('name', [h for h in HOSTILE if h != 'fifo'])
def test_predict_refuses_a_hostile_feature_file(capsys, ckpt, hostile, name):
    "Each file is refused before its data is read: one line naming it and what it does, no secret, no +615 MB."
    import resource
    path, words = hostile[name]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fails(capsys, ['predict', str(ckpt), str(path), '-q', 'a person sits'], str(path), *words)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000     # KB: nothing big was read


@pytest.mark.parametrize('name', ['v.npy', 'v.mp4', 'v.h5'])
def test_predict_on_a_fifo_answers_at_once(tmp_path, ckpt, name):
    "A named pipe (as features or as a video) would block a reader forever: refused from its stat, within seconds."
    os.mkfifo(tmp_path / name)
    r = subprocess.run(['unimd', 'predict', str(ckpt), str(tmp_path / name), '-q', 'a person sits'],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'Traceback' not in r.stderr, r.stderr
    assert f'{tmp_path / name} is a FIFO (named pipe), not a regular file' in r.stderr


def test_check_reports_hostile_files_without_reading_them(hostile):
    "`unimd check` lists each hostile file as an error, in a folder and as one .h5 keyed by video id."
    from unimd.check import check_feature_folder
    from unimd.core import Video
    from unimd.features import FeatureGrid
    grid, vids = FeatureGrid(30, 16, 16), {'v': Video('v', 10.0)}
    for name in HOSTILE:
        path, words = hostile[name]
        for where in ([path.parent, path] if path.suffix == '.h5' else [path.parent]):
            rep = check_feature_folder(where, vids, grid, 4)
            assert not rep.ok and any(all(w in e for w in words) for e in rep.errors), (name, rep.errors)
            assert SECRET not in ' '.join(rep.errors + rep.warnings)


def test_training_reader_refuses_hostile_files(hostile):
    "Training reads features through splits.feature_reader (plain and l2-normalised): the same refusals."
    from unimd.config import DataConfig
    from unimd.core import UniMDError
    from unimd.splits import feature_reader
    for name in HOSTILE:
        path, words = hostile[name]
        for l2 in (False, True):
            with pytest.raises(UniMDError) as e: feature_reader(DataConfig(features=str(path.parent), l2_features=l2))('v')
            assert all(w in str(e.value) for w in words) and SECRET not in str(e.value), (name, str(e.value))


# ---------------------------------------------------------------- predict: values that are no answer

@pytest.fixture
def feats_npy(tmp_path):
    np.save(tmp_path / 'v.npy', np.random.default_rng(0).normal(size=(40, 128)).astype(np.float32))
    return str(tmp_path / 'v.npy')


@pytest.mark.parametrize('value', ['-5', '0', 'nan', 'inf'])
def test_predict_duration_must_be_positive(capsys, ckpt, feats_npy, value):
    fails(capsys, ['predict', str(ckpt), feats_npy, '-q', 'a person sits', '--duration', value],
          f'--duration {float(value)}', 'positive number')


@pytest.mark.parametrize('device', ['tpu', 'banana', 'cuda:99'] + ([] if torch_cuda() else ['cuda']))
def test_predict_and_extract_unknown_or_absent_device(capsys, ckpt, feats_npy, tmp_path, device):
    fails(capsys, ['predict', str(ckpt), feats_npy, '-q', 'a person sits', '--device', device], f'--device {device}', 'cpu')
    (tmp_path / 'v.mp4').write_bytes(b'')
    fails(capsys, ['extract', str(tmp_path / 'v.mp4'), '--out', str(tmp_path / 'f'), '--device', device], f'--device {device}', 'cpu')


def test_predict_with_nan_weights(capsys, ckpt, feats_npy, tmp_path):
    "A diverged checkpoint: one line naming it, not an empty table with exit 0."
    import torch
    ck = torch.load(ckpt, weights_only=True)
    name = next(k for k, t in ck['ema'].items() if t.is_floating_point())
    ck['ema'][name] = torch.full_like(ck['ema'][name], float('nan'))
    torch.save(ck, tmp_path / 'nan.pt')
    fails(capsys, ['predict', str(tmp_path / 'nan.pt'), feats_npy, '-q', 'a person sits'], 'nan.pt', 'NaN or inf', name)


def test_predict_checkpoint_that_is_a_zip_of_other_files(capsys, feats_npy, tmp_path):
    import zipfile
    with zipfile.ZipFile(tmp_path / 'model.pt', 'w') as z: z.writestr('weights/readme.txt', 'see the website')
    fails(capsys, ['predict', str(tmp_path / 'model.pt'), feats_npy, '-q', 'a'], 'model.pt is a zip archive of other files',
          'readme.txt', 'not a torch checkpoint')


def test_import_official_refuses_a_binary_classes_file(tmp_path, capsys):
    "A binary --classes file is one line naming it (it was a UnicodeDecodeError traceback), before any checkpoint is read."
    from unimd.cli import main
    (tmp_path / 'classes.bin').write_bytes(b'\x89PNG\r\n\x1a\n\xff\xfe\x00')
    code = main(['import-official', str(tmp_path / 'missing.pth.tar'), '--config', 'ego4d', '--classes',
                 str(tmp_path / 'classes.bin'), '--out', str(tmp_path / 'out.pt')])
    err = capsys.readouterr().err
    assert code == 2 and 'not UTF-8 text' in err and err.count('\n') == 1, err
    assert not (tmp_path / 'out.pt').exists()
