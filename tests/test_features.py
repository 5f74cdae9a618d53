"Feature grid, feature files, resampling, random cropping and collate (unimd.features)."
import numpy as np
import pytest
import torch
from unimd.core import TAD, MR, UniMDError, Action, Sentence, Video
from unimd.features import (FeatureGrid, load_features, save_features, resample, concat_features, random_crop,
                            kept_fraction, crop_length, VideoItem, collate)
from unimd.text import HashTextEncoder


def test_grid_centres_and_round_trip():
    g = FeatureGrid(fps=30, stride=16, frames_per_clip=16)          # the paper's Ego4D / ANet grid
    assert g.t0 == pytest.approx(16 / 60) and g.dt == pytest.approx(16 / 30)
    assert g.to_seconds(3) == pytest.approx((3 * 16 + 8) / 30)      # step 3 is centred on its clip
    secs = np.array([[0.0, 5.5], [12.25, 30.0]])
    np.testing.assert_allclose(g.to_seconds(g.to_steps(secs)), secs)
    assert g.num_steps(10.0) == (300 - 16) // 16 + 1
    assert FeatureGrid(24, 4, 16).num_steps(0.1) == 1                # never zero steps
    with pytest.raises(UniMDError, match='positive'): FeatureGrid(0, 4, 16)


@pytest.mark.parametrize('fmt', ['npy', 'pt', 'h5'])
def test_feature_file_round_trip(tmp_path, fmt):
    x = np.random.default_rng(0).normal(size=(11, 6)).astype(np.float32)
    path = save_features(tmp_path, 'v1', x, fmt)
    assert path.name == f'v1.{fmt}'
    np.testing.assert_array_equal(load_features(tmp_path, 'v1'), x)
    assert [p.name for p in tmp_path.iterdir()] == [f'v1.{fmt}']    # no temporary files left behind


def test_pt_dict_and_one_h5_for_all_videos(tmp_path):
    import h5py
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    torch.save({'feats': torch.from_numpy(x)}, tmp_path / 'a.pt')
    np.testing.assert_array_equal(load_features(tmp_path, 'a'), x)
    with h5py.File(tmp_path / 'all.h5', 'w') as f: f['a'], f['b'] = x, x[:2]
    np.testing.assert_array_equal(load_features(tmp_path / 'all.h5', 'b'), x[:2])
    with pytest.raises(UniMDError, match="no entry for video 'c'"): load_features(tmp_path / 'all.h5', 'c')


def test_missing_and_broken_feature_files(tmp_path):
    save_features(tmp_path, 'ok', np.zeros((3, 2)))
    with pytest.raises(UniMDError) as e: load_features(tmp_path, 'gone')
    assert "'gone'" in str(e.value) and str(tmp_path / 'gone') in str(e.value)
    with pytest.raises(UniMDError, match='does not exist'): load_features(tmp_path / 'nope', 'ok')
    bad = np.zeros((5, 2)); bad[3, 1] = np.nan
    save_features(tmp_path, 'nan', bad)
    with pytest.raises(UniMDError, match=r"'nan'.*NaN/inf at 1 steps \(first \[3\]\)"): load_features(tmp_path, 'nan')
    np.save(tmp_path / 'flat.npy', np.zeros(5))
    with pytest.raises(UniMDError, match=r'shape \(5,\)'): load_features(tmp_path, 'flat')
    (tmp_path / 'junk.npy').write_bytes(b'not a numpy file')
    with pytest.raises(UniMDError, match='junk'): load_features(tmp_path, 'junk')
    with pytest.raises(UniMDError, match='unknown feature format'): save_features(tmp_path, 'x', np.zeros((1, 1)), 'csv')


def test_resample_matches_torch_and_concat():
    x = np.random.default_rng(1).normal(size=(37, 5)).astype(np.float32)
    for T_new in (1, 10, 37, 80):
        ref = torch.nn.functional.interpolate(torch.tensor(x).T[None], size=T_new, mode='linear', align_corners=False)[0].T
        np.testing.assert_allclose(resample(x, T_new), ref.numpy(), atol=1e-5)
    with pytest.raises(UniMDError): resample(x, 0)
    a, b = np.zeros((177, 4), np.float32), np.ones((180, 3), np.float32)   # I3D (stride 4, 16 frames) + CLIP (every 4)
    c = concat_features(a, b)
    assert c.shape == (177, 7) and (c[:, 4:] == 1).all()
    assert isinstance(concat_features(torch.zeros(5, 2), torch.ones(9, 1)), torch.Tensor)


def test_random_crop_invariants():
    rng = np.random.default_rng(0)
    feats = np.arange(500, dtype=np.float32)[:, None]
    for trial in range(200):
        segs = [np.sort(rng.uniform(-5, 505, size=(rng.integers(0, 4), 2)), axis=1) for _ in range(4)]
        max_len = int(rng.integers(50, 400))
        fc, sc, st = random_crop(feats, segs, max_len, rng=np.random.default_rng(trial))
        L = len(fc)
        assert L == max_len and fc[0, 0] == st and 0 <= st <= 500 - L
        for orig, new in zip(segs, sc):
            keep = kept_fraction(orig, st, st + L) >= 0.5
            assert len(new) == keep.sum()                                  # no instance lost that overlapped enough
            assert ((new >= 0) & (new <= L)).all()                         # all segments inside the window
            np.testing.assert_allclose(new, orig[keep].clip(st, st + L) - st)
        every = np.concatenate(segs)
        possible = len(every) and any(kept_fraction(every, s0, s0 + L).max() >= 0.5 for s0 in range(0, 501 - L))
        assert any(len(s) for s in sc) or not possible                     # an empty window only when unavoidable


def test_random_crop_short_videos_and_determinism():
    feats, segs = np.zeros((100, 2)), [np.array([[10., 90.]])]
    lens = {len(random_crop(feats, segs, 288, rng=np.random.default_rng(s))[0]) for s in range(100)}
    assert min(lens) >= 90 and max(lens) <= 100 and len(lens) > 3        # crop_ratio [0.9, 1.0] of a short video
    assert crop_length(100, 288, None) == 100 and crop_length(1000, 288) == 288
    a = random_crop(np.zeros((400, 1)), segs, 128, rng=np.random.default_rng(7))
    b = random_crop(np.zeros((400, 1)), segs, 128, rng=np.random.default_rng(7))
    assert a[2] == b[2]
    assert len(a[1][0]) == 1                                                 # the only instance is kept when it can be
    np.testing.assert_allclose(kept_fraction(np.array([[0., 10.], [4., 4.]]), 5, 20), [0.5, 0.0])


def _video():
    return Video('v', 30.0, actions=[Action('open door', 1, 4), Action('sit', 5, 20), Action('open door', 22, 28)],
                 sentences=[Sentence('v#0', 'a person opens the door then sits.', ((1.0, 20.0),)),
                            Sentence('v#1', 'person sits.', ((5.0, 20.0),))])


def test_video_item_queries_and_crop_keep_seconds():
    g = FeatureGrid(8, 4, 8)                                                 # t0 = dt = 0.5 s
    it = VideoItem.from_video(_video(), np.zeros((g.num_steps(30.0), 3)), g, ['open door', 'sit', 'drink'])
    assert [q.task for q in it.queries] == [TAD] * 3 + [MR] * 2
    np.testing.assert_array_equal(it.segments[0], [[1, 4], [22, 28]])
    assert [q.qid for q in VideoItem.from_video(_video(), it.feats, g, ['sit'], tasks=(TAD,)).queries] == ['sit']
    mr_only = Video('m', 30.0, sentences=_video().sentences)
    assert all(q.task == MR for q in VideoItem.from_video(mr_only, it.feats, g, ['sit']).queries)
    for seed in range(20):
        cr = it.crop(30, rng=np.random.default_rng(seed))
        lo, hi = cr.t0, cr.t0 + len(cr.feats) * g.dt
        assert len(cr.feats) == 30 and cr.offset >= 0
        assert all(((s >= lo - 1e-9) & (s <= hi + 1e-9)).all() for s in cr.segments)
        b = collate([cr], HashTextEncoder(16))
        for q, s in enumerate(cr.segments):                                  # batch steps map back to the same seconds
            np.testing.assert_allclose(b.seconds(b.segments[0][q].double(), 0).numpy(), s, atol=1e-5)
    with pytest.raises(UniMDError, match='2 segment lists'): VideoItem('x', torch.zeros(3, 2), g, 1.0, [], [1, 2])


def test_collate_shapes_and_masks():
    g, enc = FeatureGrid(8, 4, 8), HashTextEncoder(32)
    a = VideoItem.from_video(_video(), torch.randn(59, 6), g, ['open door', 'sit', 'drink'])
    b = VideoItem.from_video(Video('w', 20.0, actions=[Action('sit', 0, 20)]), torch.randn(33, 6), g, ['open door', 'sit', 'drink'])
    bt = collate([a, b], enc)
    assert bt.feats.shape == (2, 6, 64) and bt.feats.dtype == torch.float32
    assert bt.mask.sum(1).tolist() == [59, 33] and not bt.mask[1, 33:].any()
    assert torch.equal(bt.feats[0, :, :59], a.feats.T) and bt.feats[1, :, 33:].abs().sum() == 0
    assert bt.qemb.shape == (2, 5, 32) and bt.qmask.sum(1).tolist() == [5, 3]
    assert bt.qtask.tolist() == [[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]]
    assert torch.allclose(bt.qemb[0, 1], bt.qemb[1, 1]) and bt.qemb[1, 3:].abs().sum() == 0
    assert torch.allclose(bt.qemb[0, :5].norm(dim=1), torch.ones(5))
    assert torch.equal(bt.segments[0][0], torch.tensor([[1., 7.], [43., 55.]]))   # (s - 0.5) / 0.5
    assert [len(s) for s in bt.segments[1]] == [0, 1, 0, 0, 0]
    assert bt.qids == [['open door', 'sit', 'drink', 'v#0', 'v#1'], ['open door', 'sit', 'drink']]
    assert bt.vids == ['v', 'w'] and bt.durations.tolist() == [30.0, 20.0]
    assert bt.t0.tolist() == [0.5, 0.5] and bt.dt.tolist() == [0.5, 0.5]
    assert collate([a, b], enc, max_len=100).feats.shape[-1] == 128
    assert collate([a], enc, max_len=10).feats.shape[-1] == 64                # never shorter than the longest video
    with pytest.raises(UniMDError, match='no videos'): collate([], enc)
    c = VideoItem('x', torch.zeros(5, 4), g, 2.0, [], [])
    with pytest.raises(UniMDError, match='feature dims'): collate([a, c], enc)


def test_hash_text_encoder():
    enc = HashTextEncoder(64)
    e = enc.encode(['open door', 'a person opens the door.', 'eat sandwich'])
    assert e.shape == (3, 64) and torch.allclose(e.norm(dim=1), torch.ones(3))
    assert e[0] @ e[1] > e[0] @ e[2]
    assert torch.equal(enc.encode(['hold cup']), HashTextEncoder(64).encode(['hold cup']))
    assert not torch.equal(enc.encode(['take cup then open door']), enc.encode(['open door then take cup']))
    assert enc.dim == 64 and enc.name == 'hash64'


def test_honest_files_of_every_layout_still_read(tmp_path):
    "The size checks do not refuse real files: Fortran order, float16, gzip'd and chunked .h5, compressed .npz, dict .pt."
    import h5py
    x = np.random.default_rng(1).normal(size=(300, 8)).astype(np.float32)
    np.save(tmp_path / 'f.npy', np.asfortranarray(x)); np.save(tmp_path / 'h.npy', x.astype(np.float16))
    np.savez_compressed(tmp_path / 'z.npz', features=np.zeros((20000, 64), np.float32))      # deflate packs zeros ~1000x
    with h5py.File(tmp_path / 'g.h5', 'w') as f: f.create_dataset('v', data=x, chunks=(7, 8), compression='gzip')
    torch.save({'feats': torch.from_numpy(x), 'other': 3}, tmp_path / 'd.pt')
    np.testing.assert_array_equal(load_features(tmp_path / 'f.npy', 'v'), x)
    np.testing.assert_allclose(load_features(tmp_path / 'h.npy', 'v'), x, atol=1e-2)
    assert load_features(tmp_path / 'z.npz', 'v').shape == (20000, 64)
    np.testing.assert_array_equal(load_features(tmp_path / 'g.h5', 'v'), x)
    np.testing.assert_array_equal(load_features(tmp_path / 'd.pt', 'v'), x)


def test_files_that_lie_about_their_size_are_refused_unread(tmp_path):
    "A zip member claiming more than deflate can pack, a cut-short .npy, a legacy-format .pt: one line each."
    x = np.ones((50, 4), np.float32)
    np.save(tmp_path / 'cut.npy', x)
    (tmp_path / 'cut.npy').write_bytes((tmp_path / 'cut.npy').read_bytes()[:-10])
    with pytest.raises(UniMDError, match=r"claim shape \(50, 4\) \(800 B\) but the file holds 790 B"): load_features(tmp_path / 'cut.npy', 'v')
    np.savez_compressed(tmp_path / 'bomb.npz', features=np.zeros((256, 4), np.float32))    # ~4 KB packed into ~50 B
    raw = bytearray((tmp_path / 'bomb.npz').read_bytes())            # forge it: claim 2 GB uncompressed in both zip headers
    for sig, at in ((b'PK\x03\x04', 22), (b'PK\x01\x02', 24)):
        k = raw.find(sig); raw[k + at:k + at + 4] = (2 ** 31 - 1).to_bytes(4, 'little')
    (tmp_path / 'bomb.npz').write_bytes(bytes(raw))
    with pytest.raises(UniMDError, match="member 'features.npy' claims 2 GB from"): load_features(tmp_path / 'bomb.npz', 'v')
    torch.save(torch.from_numpy(x), tmp_path / 'old.pt', _use_new_zipfile_serialization=False)
    with pytest.raises(UniMDError, match='not a torch zip file'): load_features(tmp_path / 'old.pt', 'v')
