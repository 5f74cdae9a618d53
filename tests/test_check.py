"Tests for unimd.check: a feature folder written by each test, checked against hand-made annotations and real configs."
import os
from pathlib import Path
import numpy as np
import pytest
from unimd.core import Video, UniMDError
from unimd.features import FeatureGrid, save_features
from unimd.check import folder_ids, check_feature_folder, implied_stride, cli_check, config_videos

GRID = FeatureGrid(30, 16, 16)          # the Ego4D / ActivityNet grid: 16-frame clips every 16 frames at 30 fps
DIM = 16


def videos(n=6):
    return {f'clip{i}': Video(f'clip{i}', 20.0 + 5 * i) for i in range(n)}


def feats(v, dim=DIM, factor=1, seed=0):
    return np.random.default_rng(seed).standard_normal((factor * GRID.num_steps(v.duration), dim)).astype(np.float32)


def write(folder, vids, fmt='npy', **kw):
    for vid, v in vids.items(): save_features(folder, vid, feats(v, **kw), fmt=fmt)
    return folder


def test_clean_folder_passes(tmp_path):
    vs = videos()
    rep = check_feature_folder(write(tmp_path, vs), vs, GRID, DIM)
    assert rep.ok and rep.errors == [] and rep.warnings == []
    assert (rep.n_videos, rep.n_files, len(rep.shapes)) == (6, 6, 6)
    assert rep.shapes['clip0'] == (GRID.num_steps(20.0), DIM)
    assert 'OK: ready to train' in rep.summary()


def test_pt_and_h5_files_are_read(tmp_path):
    vs = videos(4)
    write(tmp_path, dict(list(vs.items())[:2]), fmt='pt')
    write(tmp_path, dict(list(vs.items())[2:]), fmt='h5')
    assert check_feature_folder(tmp_path, vs, GRID, DIM).ok


def test_missing_files_are_named(tmp_path):
    vs = videos()
    write(tmp_path, vs)
    os.remove(tmp_path / 'clip3.npy'); os.remove(tmp_path / 'clip5.npy')
    rep = check_feature_folder(tmp_path, vs, GRID, DIM)
    assert not rep.ok
    assert '2 of 6 annotated videos have no feature file: clip3, clip5' in rep.errors[0]
    assert len(rep.shapes) == 4                      # the others are still read and checked


def test_v_prefix_hint(tmp_path):
    vs = {'v_abcdefghijk': Video('v_abcdefghijk', 30.0)}
    save_features(tmp_path, 'abcdefghijk', feats(vs['v_abcdefghijk']))
    rep = check_feature_folder(tmp_path, vs, GRID, DIM)
    assert "exist under another name, e.g. 'abcdefghijk' for 'v_abcdefghijk'" in rep.errors[0]


def test_nan_inf_and_bad_shape(tmp_path):
    vs = videos()
    write(tmp_path, vs)
    x = feats(vs['clip1']); x[2, 3] = np.inf; save_features(tmp_path, 'clip1', x)
    np.save(tmp_path / 'clip2.npy', np.zeros(5, np.float32))          # 1-d: not [T, D]
    (tmp_path / 'clip4.npy').write_bytes(b'not a numpy file')
    rep = check_feature_folder(tmp_path, vs, GRID, DIM)
    assert len(rep.errors) == 1 and rep.errors[0].startswith('3 of 6 feature files cannot be used')
    assert 'clip1' in rep.errors[0] and 'NaN/inf' in rep.errors[0] and 'clip2' in rep.errors[0]
    assert set(rep.shapes) == {'clip0', 'clip3', 'clip5'}


def test_width_against_model_and_between_videos(tmp_path):
    vs = videos()
    write(tmp_path, vs)
    rep = check_feature_folder(tmp_path, vs, GRID, feat_dim=1024)
    assert rep.errors == [f'features are {DIM}-d but the model expects 1024-d (model.feat_dim): wrong feature type, or --set model.feat_dim={DIM}']
    save_features(tmp_path, 'clip2', feats(vs['clip2'], dim=DIM + 1))
    rep = check_feature_folder(tmp_path, vs, GRID, feat_dim=None)
    assert len(rep.errors) == 1 and f'clip2: {DIM + 1}' in rep.errors[0]


def test_wrong_stride_is_an_error_with_the_implied_stride(tmp_path):
    vs = videos()
    write(tmp_path, vs, factor=2)                     # extracted every 8 frames, config says 16
    rep = check_feature_folder(tmp_path, vs, GRID, DIM)
    assert not rep.ok and 'imply a stride of about 8' in rep.errors[0]


def test_a_few_off_grid_videos_are_warnings(tmp_path):
    vs = videos()
    write(tmp_path, vs)
    save_features(tmp_path, 'clip4', feats(vs['clip4'], factor=2))
    rep = check_feature_folder(tmp_path, vs, GRID, DIM)
    assert rep.ok and len(rep.warnings) == 1 and 'clip4' in rep.warnings[0]
    small = feats(vs['clip0'])[:-2]                  # two steps short: within tolerance
    save_features(tmp_path, 'clip0', small)
    assert check_feature_folder(tmp_path, vs, GRID, DIM).warnings == rep.warnings


def test_fixed_length_features_are_recognised(tmp_path):
    vs = videos()
    for vid in vs: save_features(tmp_path, vid, np.ones((100, DIM), np.float32))
    rep = check_feature_folder(tmp_path, vs, GRID, DIM)
    assert 'resampled to a fixed length' in rep.errors[0]


def test_sample_reads_a_seeded_subset(tmp_path):
    vs = videos(10)
    write(tmp_path, vs)
    a = check_feature_folder(tmp_path, vs, GRID, DIM, sample=3, seed=1)
    b = check_feature_folder(tmp_path, vs, GRID, DIM, sample=3, seed=1)
    assert len(a.shapes) == 3 and set(a.shapes) == set(b.shapes) and a.n_videos == 10


def test_single_h5_file_and_missing_folder(tmp_path):
    import h5py
    vs = videos(3)
    with h5py.File(tmp_path / 'all.h5', 'w') as f:
        for vid, v in vs.items(): f.create_dataset(vid, data=feats(v))
    assert folder_ids(tmp_path / 'all.h5') == set(vs)
    assert check_feature_folder(tmp_path / 'all.h5', vs, GRID, DIM).ok
    with pytest.raises(UniMDError, match='does not exist'): check_feature_folder(tmp_path / 'nope', vs, GRID, DIM)


def test_implied_stride_inverts_num_steps():
    for d in (7.3, 30.0, 480.0):
        assert abs(implied_stride(d, GRID.num_steps(d), GRID) - 16) < 16 * 0.1


def test_cli_usage_errors(tmp_path):
    with pytest.raises(UniMDError, match='renders its own features'): cli_check(['--config', 'synthetic', '--features', str(tmp_path)])
    with pytest.raises(UniMDError, match='no feature folder'): cli_check(['--config', 'ego4d'])


def charades_data():
    root = Path(os.environ.get('UNIMD_DATA', Path(__file__).resolve().parents[2] / 'shared' / 'data'))
    if not (root / 'charades' / 'Charades_v1_test.csv').exists(): pytest.skip(f'no Charades annotations under {root}')
    os.environ['UNIMD_DATA'] = str(root)


def test_cli_on_real_charades_annotations(tmp_path, capsys):
    charades_data()
    from unimd.config import load_config
    from unimd.splits import data_grid
    cfg = load_config('charades', ['model.feat_dim=4'])
    vs, grid = config_videos(cfg.data, ['test']), data_grid(cfg.data)
    for vid, v in vs.items(): np.save(tmp_path / f'{vid}.npy', np.zeros((grid.num_steps(v.duration), 4), np.float32))
    argv = ['--config', 'charades', '--features', str(tmp_path), '--split', 'test', '--set', 'model.feat_dim=4', '--no-progress']
    assert cli_check(argv) == 0
    assert f'{len(vs)} annotated videos, {len(vs)} feature files, {len(vs)} read' in capsys.readouterr().out
    gone = sorted(vs)[7]
    os.remove(tmp_path / f'{gone}.npy')
    assert cli_check(argv + ['--sample', '20']) == 1
    assert f'no feature file: {gone}' in capsys.readouterr().out
    assert cli_check(argv[:-3] + ['--no-progress']) == 1      # the default 2560-d model does not fit 4-d features
