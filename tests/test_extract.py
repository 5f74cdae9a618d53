"Feature extraction from video files: frame timing, CLIP features, the on-disk format, bad input, the CLI."
import json, os
import numpy as np
import pytest
import torch
import torch.nn.functional as F

av = pytest.importorskip('av', reason='PyAV is not installed: pip install av')
from unimd.core import UniMDError
from unimd.features import FeatureGrid, load_features
from unimd.extract import (CHARADES_CLIP_GRID, VideoReader, ClipImageEncoder, make_test_video, gray_ramp, extract_features,
                           extract_video, feature_grid, read_feature_meta, cli_extract, clip_preprocess, find_videos)


class MeanLevel:
    "Probe encoder: each frame's mean grey level / 3, i.e. the frame index in a gray_ramp video."
    dim, name = 1, 'mean-level'
    def __init__(self, fail_after=None): self.calls, self.fail_after = 0, fail_after
    def encode_images(self, frames):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after: raise UniMDError('encoder broke')
        return torch.as_tensor(frames).float().mean((1, 2, 3))[:, None] / 3


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp('videos')
    make_test_video(d / 'ramp24.mkv', gray_ramp(72), fps=24)
    make_test_video(d / 'ramp30.mkv', gray_ramp(60), fps=30)
    make_test_video(d / 'ramp25.mp4', gray_ramp(50, 64, 96), fps=25, codec='mpeg4')
    return d


@pytest.fixture(scope='module')
def clip():
    return ClipImageEncoder(pretrained=None, device='cpu', batch_size=4)


def frame_ids(x): return np.round(x[:, 0]).astype(int).tolist()


def test_charades_grid_takes_the_middle_frame_of_each_snippet(videos):
    x = extract_features(videos / 'ramp24.mkv', MeanLevel(), progress=False)
    assert len(x) == CHARADES_CLIP_GRID.num_steps(3.0) == 15
    assert frame_ids(x) == [4 * i + 8 for i in range(15)]


@pytest.mark.parametrize('name,fps,n', [('ramp30.mkv', 30, 60), ('ramp25.mp4', 25, 50)])
def test_other_frame_rates_are_sampled_by_time(videos, name, fps, n):
    x = extract_features(videos / name, MeanLevel(), batch_size=3, progress=False)
    g = CHARADES_CLIP_GRID
    assert len(x) == g.num_steps(n / fps)
    want = np.floor(fps * g.to_seconds(np.arange(len(x))) + 1e-6).astype(int)
    got = np.asarray(frame_ids(x))
    assert np.abs(got - want).max() <= (1 if name.endswith('.mp4') else 0)    # mpeg4 is lossy: a level may be off by one


def test_other_grid(videos):
    g = FeatureGrid(fps=30, stride=16, frames_per_clip=16)                    # the Ego4D/ANet grid
    x = extract_features(videos / 'ramp30.mkv', MeanLevel(), grid=g, progress=False)
    assert frame_ids(x) == [8, 24, 40]                                        # 60 frames: clips at 0, 16, 32


def test_clip_features_written_where_datasets_read_them(videos, clip, tmp_path):
    out, g = tmp_path / 'feats', FeatureGrid(30, 16, 16)                      # 3 steps: CLIP on a CPU is slow
    p = extract_video(videos / 'ramp30.mkv', out, clip, grid=g, progress=False)
    assert p == out / 'ramp30.npy'
    x = load_features(out, 'ramp30')
    assert x.shape == (3, 512) and x.dtype == np.float32 and np.isfinite(x).all()
    assert feature_grid(out) == g
    assert read_feature_meta(out)['extractor'] == 'clip-ViT-B-32-quickgelu-random'
    assert sorted(os.listdir(out)) == ['features.json', 'ramp30.npy']
    # the same frames through open_clip's own PIL pipeline give the same embeddings
    from PIL import Image
    import open_clip
    tf = open_clip.image_transform(224, is_train=False)
    with VideoReader(videos / 'ramp30.mkv') as r:
        frames = [f for i, f in r.frames_at(g) if i in (0, 2)]
    with torch.no_grad(): ref = clip._model.encode_image(torch.stack([tf(Image.fromarray(f)) for f in frames]))
    assert F.cosine_similarity(torch.from_numpy(x[[0, 2]]), ref).min() > 0.999


def test_normalize_and_skip_existing(videos, tmp_path):
    probe = MeanLevel()
    extract_video(videos / 'ramp24.mkv', tmp_path, probe, progress=False)
    calls = probe.calls
    extract_video(videos / 'ramp24.mkv', tmp_path, probe, progress=False)     # already there: nothing recomputed
    assert probe.calls == calls
    extract_video(videos / 'ramp24.mkv', tmp_path, probe, progress=False, overwrite=True)
    assert probe.calls == 2 * calls
    x = extract_features(videos / 'ramp24.mkv', MeanLevel(), normalize=True, progress=False)
    assert np.allclose(np.linalg.norm(x, axis=1), 1)


def test_preprocess_matches_open_clip_transform():
    from PIL import Image
    import open_clip
    img = np.random.default_rng(0).integers(0, 256, (60, 100, 3), dtype=np.uint8)
    img = np.array(Image.fromarray(img).resize((300, 200)))                   # portrait and landscape both
    for a in (img, img.transpose(1, 0, 2).copy()):
        ours, ref = clip_preprocess(a[None])[0], open_clip.image_transform(224, is_train=False)(Image.fromarray(a))
        assert ours.shape == ref.shape == (3, 224, 224)
        assert (ours - ref).abs().mean() < 0.02


def test_corrupt_and_unsupported_files_fail_cleanly(videos, tmp_path):
    junk = tmp_path / 'junk.mp4'; junk.write_bytes(os.urandom(5000))
    text = tmp_path / 'notes.avi'; text.write_text('not a video at all\n' * 100)
    wav = tmp_path / 'sound.wav'
    with av.open(str(wav), 'w') as c:                                         # audio only
        s = c.add_stream('pcm_s16le', rate=8000)
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.int16), format='s16', layout='mono'); fr.sample_rate = 8000
        for p in list(s.encode(fr)) + list(s.encode()): c.mux(p)
    half = tmp_path / 'half.mkv'; b = (videos / 'ramp24.mkv').read_bytes(); half.write_bytes(b[:len(b) // 2])
    out = tmp_path / 'out'
    for f, msg in [(junk, 'not a video FFmpeg can read'), (text, 'not a video FFmpeg can read'),
                   (wav, 'no video stream'), (half, 'truncated'), (tmp_path / 'nope.mp4', 'not found')]:
        with pytest.raises(UniMDError, match=msg) as e: extract_video(f, out, MeanLevel(), progress=False)
        assert f.name in str(e.value)
    assert not out.exists()                                                   # no partial output of any kind


def test_video_shorter_than_one_clip(tmp_path):
    make_test_video(tmp_path / 'short.mkv', gray_ramp(12), fps=24)             # 12 frames < 16
    with pytest.raises(UniMDError, match='shorter than one clip'):
        extract_video(tmp_path / 'short.mkv', tmp_path / 'out', MeanLevel(), progress=False)
    assert not (tmp_path / 'out').exists()
    x = extract_features(tmp_path / 'short.mkv', MeanLevel(), grid=FeatureGrid(24, 4, 1), progress=False)
    assert len(x) == 3                                                          # one-frame clips fit: frames 0, 4, 8


def test_error_mid_extraction_leaves_nothing(videos, tmp_path):
    with pytest.raises(UniMDError, match='encoder broke'):
        extract_video(videos / 'ramp24.mkv', tmp_path / 'out', MeanLevel(fail_after=1), batch_size=4, progress=False)
    assert not (tmp_path / 'out').exists() or os.listdir(tmp_path / 'out') == []


def test_folder_holds_one_feature_type(videos, tmp_path):
    extract_video(videos / 'ramp24.mkv', tmp_path, MeanLevel(), progress=False)
    with pytest.raises(UniMDError, match="frames_per_clip=16"):
        extract_video(videos / 'ramp30.mkv', tmp_path, MeanLevel(), grid=FeatureGrid(30, 16, 8), progress=False)
    assert sorted(os.listdir(tmp_path)) == ['features.json', 'ramp24.npy']
    assert json.loads((tmp_path / 'features.json').read_text())['fps'] == 24.0


def test_offline_without_weights_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1'); monkeypatch.setenv('HF_HOME', str(tmp_path)); monkeypatch.delenv('HF_HUB_CACHE', raising=False)
    with pytest.raises(UniMDError, match='HF_HUB_OFFLINE=1'): ClipImageEncoder(pretrained='openai', device='cpu')
    with pytest.raises(UniMDError, match='not found'): ClipImageEncoder(pretrained=str(tmp_path / 'clip.bin'))


def test_cli(videos, tmp_path, capsys):
    out = tmp_path / 'feats'
    assert cli_extract([str(videos / 'ramp30.mkv'), '--out', str(out), '--pretrained', 'random', '--device', 'cpu',
                        '--no-progress', '--fps', '30', '--stride', '16', '--frames-per-clip', '16']) == 0
    assert sorted(os.listdir(out)) == ['features.json', 'ramp30.npy']
    assert load_features(out, 'ramp30').shape == (3, 512)
    assert feature_grid(out) == FeatureGrid(30, 16, 16)
    assert 'ramp30.npy' in capsys.readouterr().out


def test_cli_reports_every_failure(videos, tmp_path, capsys):
    bad = tmp_path / 'in'; bad.mkdir()
    (bad / 'broken.mp4').write_bytes(b'\0' * 100)
    with pytest.raises(UniMDError, match='1 of 2 videos failed'):
        cli_extract([str(bad / 'broken.mp4'), str(videos / 'ramp24.mkv'), '--out', str(tmp_path / 'o'), '--no-progress'],
                    encoder=MeanLevel())
    assert 'broken.mp4' in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path / 'o')) == ['features.json', 'ramp24.npy']
    assert [p.name for p in find_videos([str(videos)])] == ['ramp24.mkv', 'ramp25.mp4', 'ramp30.mkv']
    with pytest.raises(UniMDError, match='no video files'): find_videos([str(tmp_path / 'o')])
    (bad / 'x').mkdir(); make_test_video(bad / 'x' / 'broken.mkv', gray_ramp(20), fps=24)
    with pytest.raises(UniMDError, match='both be written as broken.npy'): find_videos([str(bad)])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_gpu_matches_cpu(videos, clip):
    gpu = ClipImageEncoder(pretrained=None, device='cuda')
    gpu._model.load_state_dict(clip._model.state_dict())
    a = extract_features(videos / 'ramp30.mkv', clip, progress=False)
    b = extract_features(videos / 'ramp30.mkv', gpu, progress=False)
    assert F.cosine_similarity(torch.from_numpy(a), torch.from_numpy(b)).min() > 0.999
