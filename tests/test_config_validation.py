"""Config values are checked in one place (unimd.config.BOUNDS, RULES and the YAML reader): every source of a config
(a YAML file, --set, a checkpoint's stored config, a pretrained config.json) gets one line naming the source, the key,
the value and the valid range, exit 2, and nothing is built. The probes the issue lists run the real command in a
fresh process (a hang or a traceback shows there); the others call the same command in this process (faster)."""
import dataclasses, json, math, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch
from unimd.config import BOUNDS, Config, config_dict

ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'OMP_NUM_THREADS': '1'}


def unimd(*args, cwd):
    "The `unimd` command in a fresh process: (exit code, stdout, stderr lines). A hang is a failure (timeout)."
    r = subprocess.run([sys.executable, '-c', 'import sys; from unimd.cli import main; sys.exit(main())', *map(str, args)],
                       cwd=cwd, env=ENV, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, [l for l in r.stderr.splitlines() if l.strip()]


def unimd_here(capsys, *args):
    "The same command in this process (unimd.cli.main): (exit code, stdout, stderr lines)."
    from unimd.cli import main
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, [l for l in err.splitlines() if l.strip()]


def assert_one_line(rc, out, err, *expected):
    assert rc == 2 and out == '' and len(err) == 1, (rc, out, err[-5:])
    assert 'Traceback' not in err[0] and len(err[0]) < 400, err[0][:500]
    for e in expected: assert e in err[0], err[0]


SET_PROBES = [  # (--set value, what the one line must say): the values the issue lists, in a fresh process each
    ('model.channels=0', 'model.channels = 0 is out of range: give an integer in [1, 8192]'),
    ('model.channels=-16', 'model.channels = -16 is out of range'),
    ('train.lr=nan', 'train.lr = nan is out of range: give a number in (0, 3e+38]'),
    ('train.lr=-1', 'train.lr = -1.0 is out of range'),
    ('data.synthetic.n_train=0', 'data.synthetic.n_train = 0 is out of range: give an integer in [1, 100000]'),
    ('train.num_workers=-1', 'train.num_workers = -1 is out of range: give an integer in [0, 256]'),
    ('model.drop_path=5', 'model.drop_path = 5.0 is out of range: give a number in [0, 0.99]'),
    ('train.seed=1e23', 'train.seed = 99999999999999991611392 is out of range: give an integer in [0, 4294967295]'),
    ('train.epochs=-5', 'train.epochs = -5 is out of range'),
    ('model.fpn_layers=1000000', 'model.fpn_layers = 1000000 is out of range: give an integer in [0, 32]'),
    ('model.regression_ranges=[[0,4],[5,8],[8,16],[16,32],[32,64],[64,.inf]]', 'model.regression_ranges = ([0, 4], [5, 8]'),
    ('model.regression_ranges=[[4,0],[0,8],[8,16],[16,32],[32,64],[64,.inf]]', 'contiguous'),
    ('model.channels=4096', 'model describes 5,562M parameters, over the 1,000M allowed'),
]
MORE_SET_PROBES = [  # ... and more, in this process
    ('model.embd_kernel=4', 'model.embd_kernel = 4 is out of range: give an odd integer in [1, 31]'),
    ('model.regression_ranges=[[-4,4],[4,8],[8,16],[16,32],[32,64],[64,.inf]]', '0 <= lo < hi'),
    ('model.regression_ranges=[[0,4],[4,.inf]]', 'regression_ranges has 2 entries but the pyramid has 6 levels'),
    ('train.mode=cotrian', "train.mode = 'cotrian' is not valid: did you mean cotrain?"),
    ('train.lrate=0.1', 'unknown config key train.lrate: did you mean train.lr?'),
    ('data.crop_ratio=[1.0,0.5]', 'data.crop_ratio = [1.0, 0.5] is out of range'),
    ('train.warmup_epochs=0 train.epochs=0', 'train for at least one epoch'),
    ('train.seed=' + '7' * 100_000, 'train.seed: a value cannot be read'),   # 100 KB: quoted in a few dozen characters
    ('train.seed=' + 'x' * 100_000, "train.seed must be a int like 0, got 'xxxx"),
]


@pytest.mark.parametrize('sets,expected', SET_PROBES, ids=[s[:40] for s, _ in SET_PROBES])
def test_bad_set_value_is_one_line(tmp_path, sets, expected):
    args = [a for s in sets.split(' ') for a in ('--set', s)]
    rc, out, err = unimd('train', '--config', 'synthetic', *args, '--out', tmp_path / 'run', cwd=tmp_path)
    assert_one_line(rc, out, err, 'unimd train: error: --set', expected)
    assert not (tmp_path / 'run').exists()                              # nothing written


@pytest.mark.parametrize('sets,expected', MORE_SET_PROBES, ids=[s[:40] for s, _ in MORE_SET_PROBES])
def test_more_bad_set_values_are_one_line(tmp_path, capsys, sets, expected):
    args = [a for s in sets.split(' ') for a in ('--set', s)]
    rc, out, err = unimd_here(capsys, 'train', '--config', 'synthetic', *args, '--out', tmp_path / 'run')
    assert_one_line(rc, out, err, 'unimd train: error: --set', expected)
    assert not (tmp_path / 'run').exists()


def test_bad_value_in_a_yaml_file_names_the_file(tmp_path, capsys):
    (tmp_path / 'mine.yaml').write_text('model:\n  channels: -16\ntrain:\n  lr: 3.0e-4\n')
    rc, out, err = unimd_here(capsys, 'train', '--config', tmp_path / 'mine.yaml', '--out', tmp_path / 'run')
    assert_one_line(rc, out, err, 'mine.yaml: model.channels = -16 is out of range', '(default 512)')
    (tmp_path / 'mine.yaml').write_text('data:\n  features: [a, b]\n')          # a list where a path goes
    rc, out, err = unimd_here(capsys, 'train', '--config', tmp_path / 'mine.yaml', '--out', tmp_path / 'run')
    assert_one_line(rc, out, err, "mine.yaml: data.features must be a str like '', got ['a', 'b']")


def alias_bomb(levels):
    "YAML whose `levels` nested aliases stand for 9 ** levels values, in a few hundred bytes."
    names = 'abcdefghij'
    text = 'a: &a [1,1,1,1,1,1,1,1,1]\n' + ''.join(f'{c}: &{c} [{",".join(["*" + p] * 9)}]\n' for p, c in zip(names, names[1:levels]))
    return text


@pytest.mark.parametrize('levels', [7, 9])
def test_yaml_alias_bomb_is_refused(tmp_path, levels):
    "227 bytes (7 levels) once gave a 3 MB error line and 650 MB of memory; 9 levels a MemoryError traceback."
    text = alias_bomb(levels)
    assert len(text) < 330
    (tmp_path / 'bomb.yaml').write_text(text)
    rc, out, err = unimd('train', '--config', tmp_path / 'bomb.yaml', '--out', tmp_path / 'run', cwd=tmp_path)
    assert_one_line(rc, out, err, 'bomb.yaml: its aliases (*name) expand to more than 10,000 values')


def test_alias_bomb_in_a_set_value_is_refused(tmp_path, capsys):
    value = '[' + ','.join(['&a [1,1,1,1,1,1,1,1,1]'] + ['*a'] * 2) + ']'   # fine: a few aliases
    rc, out, err = unimd_here(capsys, 'train', '--config', 'synthetic', '--set', f'train.eval_epochs={value}', '--out', tmp_path / 'r')
    assert_one_line(rc, out, err, 'train.eval_epochs = [[1, 1, 1', 'is out of range')   # read, then refused by its range
    bomb = alias_bomb(9).replace('\n', ', ').rstrip(', ')
    rc, out, err = unimd_here(capsys, 'train', '--config', 'synthetic', '--set', 'train.eval_epochs={' + bomb + '}', '--out', tmp_path / 'r')
    assert_one_line(rc, out, err, '--set train.eval_epochs: its aliases (*name) expand to more than 10,000 values')


def test_huge_config_file_is_refused_before_reading(tmp_path, capsys):
    (tmp_path / 'big.yaml').write_text('train:\n  lr: 3.0e-4\n' + '# padding\n' * 200_000)
    rc, out, err = unimd_here(capsys, 'train', '--config', tmp_path / 'big.yaml', '--out', tmp_path / 'run')
    assert_one_line(rc, out, err, 'big.yaml is over 1,048,576 bytes')


BAD_STORED = [  # (section, key, value, what the one line must say): the two in a fresh process, the rest here
    ('model', 'fpn_layers', 10**6, 'model.fpn_layers = 1000000 is out of range'),
    ('model', 'channels', -4, 'model.channels = -4 is out of range'),
    ('model', 'regression_ranges', [[0, 4], [4, 2]] * 3, 'model.regression_ranges = ([0, 4], [4, 2]'),
    ('train', 'lr', math.nan, 'train.lr = nan is out of range'),
    ('data', 'synthetic', {'n_classes': 1000}, 'data.synthetic.n_classes = 1000 is out of range: give an integer in [1, 48]'),
]


def stored_config(section, key, value):
    c = config_dict(Config())
    c[section][key] = value
    return c


@pytest.fixture
def features(tmp_path):
    np.save(tmp_path / 'f.npy', np.zeros((50, 128), np.float32))
    return tmp_path / 'f.npy'


@pytest.mark.parametrize('section,key,value,expected', BAD_STORED, ids=[k for _, k, _, _ in BAD_STORED])
def test_bad_value_in_a_checkpoint_is_one_line(tmp_path, capsys, features, section, key, value, expected):
    "Before: fpn_layers 1e6 hung at 1.7 GB building the model; channels -4 gave a RuntimeError traceback."
    torch.save({'config': stored_config(section, key, value), 'model': {}, 'ema': {}}, tmp_path / 'ck.pt')
    args = ('predict', tmp_path / 'ck.pt', features, '-q', 'a person')
    rc, out, err = unimd(*args, cwd=tmp_path) if key in ('fpn_layers', 'channels') else unimd_here(capsys, *args)
    assert_one_line(rc, out, err, 'ck.pt (its stored config): ', expected)


@pytest.mark.parametrize('section,key,value,expected', BAD_STORED, ids=[k for _, k, _, _ in BAD_STORED])
def test_bad_value_in_a_pretrained_config_json_is_one_line(tmp_path, capsys, features, section, key, value, expected):
    (tmp_path / 'pre').mkdir()
    (tmp_path / 'pre' / 'config.json').write_text(json.dumps({'config': stored_config(section, key, value)}))
    args = ('predict', tmp_path / 'pre', features, '-q', 'a person')
    rc, out, err = unimd(*args, cwd=tmp_path) if key in ('fpn_layers', 'channels') else unimd_here(capsys, *args)
    assert_one_line(rc, out, err, 'config.json: ', expected)


def config_classes(cls=Config):
    "Every config dataclass reachable from Config (Config itself, its sections, their nested sections)."
    out = [cls]
    for f in dataclasses.fields(cls):
        default = getattr(cls(), f.name)
        if dataclasses.is_dataclass(default): out += config_classes(type(default))
    return out


def test_every_config_field_has_a_row_in_bounds():
    "A field added to a config dataclass (by any notebook) must get its type and range in unimd.config.BOUNDS (17_config)."
    classes = config_classes()
    assert {c.__name__ for c in classes} == {'Config', 'ModelConfig', 'TrainConfig', 'DataConfig', 'SyntheticConfig'}
    for cls in classes:
        fields = {f.name for f in dataclasses.fields(cls)}
        rows = set(BOUNDS.get(cls, {}))
        assert fields == rows, f'{cls.__name__}: fields without a BOUNDS row {sorted(fields - rows)}, rows without a field {sorted(rows - fields)}'
        for name in fields:                                             # every default is valid
            assert BOUNDS[cls][name].ok(getattr(cls(), name)), f'{cls.__name__}.{name} default out of its own range'


@pytest.mark.parametrize('name', ['synthetic', 'ego4d', 'charades', 'anet'])
def test_named_configs_pass_the_checks(name):
    from unimd.config import load_config
    assert load_config(name).model.channels >= 1
