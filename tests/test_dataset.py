"`unimd dataset`: a table of moments and a folder of videos or features -> annotation files and a config that check, train and predict take."
import contextlib, io, json, os
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from unimd.core import UniMDError
from unimd.cli import main
from unimd.features import save_features
from unimd.dataset import read_rows, read_custom, assign_splits, video_duration

torch.set_num_threads(1)
SPEC = dict(extractor='test-features', dim=16, fps=10.0, stride=5, frames_per_clip=5, normalize=False)


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def feats(tmp_path):
    "Six videos' features (16-d, one step every 0.5 s; lengths 20-30 steps), each step marking where its 'wave' action is."
    rng, rows = np.random.default_rng(0), []
    for i in range(6):
        T = 20 + 2 * i
        x = rng.normal(0, 0.1, (T, 16)).astype(np.float32)
        a = 2 + i % 5; x[a:a + 6, 0] += 3.0                       # the action is visible in feature 0
        save_features(tmp_path / 'f', f'v{i}', x)
        rows += [(f'v{i}.mp4', a * 0.5 + 0.25, (a + 6) * 0.5 + 0.25, 'wave', ''),
                 (f'v{i}.mp4', a * 0.5 + 0.25, (a + 6) * 0.5 + 0.25, '', 'someone waves at the camera')]
    (tmp_path / 'f' / 'features.json').write_text(json.dumps(SPEC))
    pd.DataFrame(rows, columns=['video', 'start', 'end', 'label', 'sentence']).to_csv(tmp_path / 'rows.csv', index=False)
    return tmp_path


def test_dataset_then_check_train_predict(feats):
    d = feats
    code, out, err = cli('dataset', d / 'rows.csv', '--features', d / 'f', '--out', d / 'ds')
    assert code == 0 and '6 videos (5 train, 1 test), 1 classes, 6 sentences' in out, err
    cfg = yaml.safe_load((d / 'ds' / 'config.yaml').read_text())
    keys = ('dataset', 'fps', 'feat_stride', 'frames_per_clip', 'num_classes')
    assert [cfg['data'][k] for k in keys] == ['custom', 10.0, 5, 5, 1] and cfg['data']['features'] == str((d / 'f').resolve())
    assert cfg['model']['feat_dim'] == 16 and cfg['model']['max_seq_len'] == 32 and cfg['model']['text_dim'] == 384
    tr, classes = read_custom(d / 'ds', 'train')
    assert classes == ['wave'] and len(tr) == 5 and all(v.duration == pytest.approx((len(np.load(d / 'f' / f'{k}.npy')) - 1) * 0.5 + 0.5) for k, v in tr.items())
    assert cli('check', '--config', d / 'ds' / 'config.yaml', '--no-progress')[0] == 0
    sets = ['model.text_encoder=hash', 'model.text_dim=32', 'model.channels=16', 'model.reg_mlp_hidden=16', 'model.fpn_layers=1',
            'train.batch_size=2', 'train.warmup_epochs=1', 'train.epochs=2', 'train.early_stop_epoch=0', 'train.lr=1e-3']
    sets_ = sum([['--set', s] for s in sets], [])
    code, out, err = cli('train', '--config', d / 'ds' / 'config.yaml', '--out', d / 'bad', '--set', 'data.feat_stride=10', *sets_)
    assert code == 2 and err.count('\n') == 1 and 'stride=5, but the config expects stride=10' in err and not (d / 'bad').exists()
    code, out, err = cli('train', '--config', d / 'ds' / 'config.yaml', '--out', d / 'run', '--no-progress', *sets_)
    assert code == 0 and 'tad_mAP' in out and 'mr_R1@0.5' in out, err
    assert cli('export-pretrained', d / 'run', d / 'pt')[0] == 0 and (d / 'run' / 'pretrained' / 'model.safetensors').is_file()
    test_vid = next(iter(read_custom(d / 'ds', 'test')[0]))
    code, out, err = cli('predict', d / 'pt', d / 'f' / f'{test_vid}.npy', '-q', 'wave', '-q', 'someone waves at the camera', '--top-k', '2')
    assert code == 0 and out.count('wave') == 4, err
    meta = yaml.safe_load((d / 'pt' / 'README.md').read_text().split('---\n')[1])
    assert meta['unimd']['feature_spec'] == SPEC and meta['unimd']['dataset'] == 'custom'


def test_durations_from_videos_and_json_rows(tmp_path):
    from unimd.extract import make_test_video
    make_test_video(tmp_path / 'v' / 'clip.webm', np.zeros((30, 32, 32, 3), np.uint8), fps=10, codec='libvpx')
    assert video_duration('clip', tmp_path / 'v') == pytest.approx(3.0, abs=0.05)
    (tmp_path / 'rows.json').write_text(json.dumps([dict(video='clip.webm', start=0.5, end=9, label='x', split='test'),
                                                    dict(video='other', start=1, end=2, sentence='a b', split='training', duration=7.5)]))
    code, out, err = cli('dataset', tmp_path / 'rows.json', '--videos', tmp_path / 'v', '--out', tmp_path / 'ds')
    assert code == 0 and '2 videos (1 train, 1 test), 1 classes, 1 sentences' in out and 'next: unimd extract' in out, err
    te, _ = read_custom(tmp_path / 'ds', 'test'); tr, _ = read_custom(tmp_path / 'ds', 'train')
    assert te['clip'].actions[0].end == pytest.approx(3.0, abs=0.05)        # clipped to the video's end
    assert tr['other'].duration == 7.5 and tr['other'].sentences[0].windows == ((1.0, 2.0),)


def test_one_line_errors_and_nothing_written(feats):
    d = feats
    bad = [('video,start,end,label\nv0.mp4,3,1,wave\n', 'line 2: start 3.0 and end 1.0'),
           ('video,start,end\nv0.mp4,1,3\n', 'need video, start, end and label and/or sentence'),
           ('video,start,end,label\nv0.mp4,99,100,wave\n', 'after the end of the video'),
           ('video,start,end,label\nv9.mp4,1,2,wave\n', "no duration for video 'v9'"),
           ('video,start,end,label,split\nv0.mp4,1,2,wave,train\nv0.mp4,2,3,wave,test\n', 'both train and test')]
    for i, (text, msg) in enumerate(bad):
        (d / f'bad{i}.csv').write_text(text)
        code, out, err = cli('dataset', d / f'bad{i}.csv', '--features', d / 'f', '--out', d / f'out{i}')
        assert code == 2 and err.count('\n') == 1 and msg in err, (msg, err)
        assert not (d / f'out{i}').exists()
    code, out, err = cli('dataset', d / 'rows.csv', '--out', d / 'x')
    assert code == 2 and '--videos' in err
    with pytest.raises(UniMDError, match='lacks train_tad.json, train_mr.jsonl, classes.txt'): read_custom(d / 'f', 'train')


def test_seeded_split_keeps_one_test_video_at_least():
    rows = [dict(video=f'v{i}', split=None) for i in range(3)]
    s = assign_splits(rows, 0.1, seed=3)
    assert list(s.values()).count('test') == 1 and s == assign_splits(rows, 0.1, seed=3)
    assert set(assign_splits(rows[:1], 0.5).values()) == {'train'}                  # one video: nothing to test on
    assert list(assign_splits(rows * 2, 0.0).values()).count('test') == 0


@pytest.mark.parametrize('text, msg', [
    ('video,start,end,label,duration\nv0.mp4,1,2,wave,abc\n', "line 2: duration 'abc' must be the video's length in seconds"),
    ('video,start,end,label,duration\nv0.mp4,1,2,wave,nan\n', "line 2: duration 'nan' must be"),
    ('video,start,end,label,duration\nv0.mp4,1,2,wave,inf\n', "line 2: duration 'inf' must be"),
    ('video,start,end,label\nv0.mp4,1,2,"open\ndoor"\n', "label 'open\\ndoor' holds a line break"),
    ('video,start,end,label\na/v0.mp4,1,2,wave\nb/v0.mp4,2,3,wave\n', "rows name 'a/v0.mp4' and 'b/v0.mp4', which would both be video 'v0'"),
])
def test_bad_rows_are_one_line(feats, text, msg):
    "Durations that are no length, a class name over two lines, two files merged into one video: one line, nothing written."
    (feats / 'bad.csv').write_text(text)
    code, out, err = cli('dataset', feats / 'bad.csv', '--features', feats / 'f', '--out', feats / 'out')
    assert code == 2 and err.count('\n') == 1 and msg in err and 'Traceback' not in err, (msg, err)
    assert not (feats / 'out').exists()


def test_dataset_never_writes_over_a_dataset_or_its_input(feats):
    d = feats
    assert cli('dataset', d / 'rows.csv', '--features', d / 'f', '--out', d / 'ds')[0] == 0
    (d / 'ds' / 'classes.txt').write_text('my edited classes\n')
    code, out, err = cli('dataset', d / 'rows.csv', '--features', d / 'f', '--out', d / 'ds')
    assert code == 2 and err.count('\n') == 1 and 'train_tad.json already exists' in err and '--force' in err
    assert (d / 'ds' / 'classes.txt').read_text() == 'my edited classes\n'               # nothing already written is lost
    assert cli('dataset', d / 'rows.csv', '--features', d / 'f', '--out', d / 'ds', '--force')[0] == 0
    assert (d / 'ds' / 'classes.txt').read_text() == 'wave\n'
    (d / 'ds2').mkdir()
    pd.read_csv(d / 'rows.csv').to_json(d / 'ds2' / 'train_tad.json', orient='records')      # the rows, saved where an output goes
    before = (d / 'ds2' / 'train_tad.json').read_text()
    code, out, err = cli('dataset', d / 'ds2' / 'train_tad.json', '--features', d / 'f', '--out', d / 'ds2', '--force')
    assert code == 2 and 'is also an input of this command' in err
    assert (d / 'ds2' / 'train_tad.json').read_text() == before
    (d / 'afile').write_text('x')
    code, out, err = cli('dataset', d / 'rows.csv', '--features', d / 'f', '--out', d / 'afile')
    assert code == 2 and 'afile is a file' in err
