"The SYNTHETIC world (unimd.synthetic): determinism, Charades-like statistics, consistency, learnable features."
import numpy as np
import pytest
from unimd.core import TAD, MR, UniMDError
from unimd.features import FeatureGrid, collate, load_features
from unimd.text import HashTextEncoder
from unimd.synthetic import SyntheticConfig, make_world, world_stats, fig2_stats, CLASS_POOL


@pytest.fixture(scope='module')
def world(): return make_world()


@pytest.fixture(scope='module')
def big(): return make_world(SyntheticConfig(seed=3, n_train=3000, n_test=0))


def test_deterministic_by_seed(world):
    again = make_world()
    assert again.videos == world.videos and again.classes == world.classes
    np.testing.assert_array_equal(again.prototypes, world.prototypes)
    vids = list(world.videos)
    for vid in reversed(vids[-5:]): again.features(vid)                     # render in another order first
    for vid in vids[-5:] + vids[:3]: np.testing.assert_array_equal(again.features(vid), world.features(vid))
    other = make_world(SyntheticConfig(seed=1))
    assert other.videos != world.videos
    assert not np.array_equal(other.features('syn00000')[:5], world.features('syn00000')[:5])


def test_charades_like_statistics(big):
    st = world_stats(big.videos)
    assert st['actions_per_video'] == pytest.approx(6.75, abs=0.25)      # Charades: 6.75 instances per video
    assert st['sentences_per_video'] == pytest.approx(2.42, abs=0.1)     # Charades-STA: 2.42 sentences per video
    assert st['instance_length'] == pytest.approx(0.44, abs=0.02)        # ~44% of the video
    assert st['full_length_instances'] == pytest.approx(0.12, abs=0.03)
    assert st['frac_with_mr'] == pytest.approx(0.67, abs=0.01)           # Charades-STA covers 67% of Charades
    assert st['frac_tad_only'] > 0.2 and st['frac_mr_only'] > 0.05      # the samplers get both kinds of videos
    assert st['duration'] == pytest.approx(30.0, abs=1.0)


def test_fig2_benefits_present(world):
    f2 = fig2_stats(world)
    assert f2['cooccurring_instances'] > 0.5                            # (a) co-occurring actions
    assert f2['ordered_pairs_per_video'] > 1                             # (b) ordered actions
    assert f2['negatives_per_sentence'] > 2                              # (c) TAD instances as negatives
    assert f2['sentences_with_opposite_action'] > 0.1                    # (c) opposite verb, same object
    assert f2['tad_instances_per_sentence'] > 2                          # (d) > 200% more events
    texts = [s.text for v in world.videos.values() for s in v.sentences]
    assert any(' then ' in t for t in texts) and any(' while ' in t for t in texts)


def test_annotations_are_consistent(world):
    subsets = [v.subset for v in world.videos.values()]
    assert subsets.count('train') == 400 and subsets.count('test') == 100
    qids = [s.qid for v in world.videos.values() for s in v.sentences]
    assert len(qids) == len(set(qids))
    for vid, v in world.videos.items():
        assert 10.0 <= v.duration <= 60.0 and (v.has_tad or v.has_mr)
        assert all(a.label in world.classes and 0 <= a.start < a.end <= v.duration for a in v.actions)
        assert all(0 <= w[0] < w[1] <= v.duration for s in v.sentences for w in s.windows)
        assert all(s.text.strip() for s in v.sentences)
        assert len(world.latent[vid]) >= max(len(v.actions), 1)          # MR-only videos still contain actions
        if v.has_tad: assert len(v.actions) == len(world.latent[vid])


def test_features_shape_and_signal(world):
    inside, outside = [], []
    for vid in list(world.videos)[:60]:
        x, v = world.features(vid), world.videos[vid]
        assert x.shape == (world.grid.num_steps(v.duration), 128) and x.dtype == np.float32 and np.isfinite(x).all()
        t = world.grid.to_seconds(np.arange(len(x)))
        for c, s, e in world.latent[vid]:
            p = world.prototypes[c]
            r = x @ p / (p @ p)                                              # [T] read-out of the class prototype
            m = (t > s + 1) & (t < e - 1)
            if m.any() and (~((t > s - 2) & (t < e + 2))).any():
                inside.append(r[m].mean()); outside.append(r[~((t > s - 2) & (t < e + 2))].mean())
    assert np.mean(inside) - np.mean(outside) > 0.25                     # the labelled action is visible in its segment


def test_items_collate_and_save(world, tmp_path):
    vids = [v for v, x in world.videos.items() if x.subset == 'train'][:4]
    batch = collate([world.item(v) for v in vids], HashTextEncoder(32), max_len=world.cfg.max_seq_len)
    assert batch.feats.shape[:2] == (4, 128) and batch.feats.shape[2] % 32 == 0
    assert batch.feats.shape[2] >= max(world.grid.num_steps(world.videos[v].duration) for v in vids)
    assert world.cfg.max_seq_len >= world.grid.num_steps(60.0)            # the longest video fits the crop length
    tad_only = world.item(vids[0], tasks=(TAD,))
    assert all(q.task == TAD for q in tad_only.queries)
    small = make_world(SyntheticConfig(n_train=3, n_test=1, feat_dim=8))
    small.save_features(tmp_path, 'npy')
    for vid in small.videos: np.testing.assert_array_equal(load_features(tmp_path, vid), small.features(vid))


def test_config_checks():
    with pytest.raises(UniMDError, match='n_classes'): make_world(SyntheticConfig(n_classes=len(CLASS_POOL) + 1))
    with pytest.raises(UniMDError, match='frac_both'): make_world(SyntheticConfig(frac_both=0.9, frac_mr_only=0.2))
    with pytest.raises(UniMDError, match='videos'): make_world(SyntheticConfig(n_train=0, n_test=0))
    w = make_world(SyntheticConfig(n_train=5, n_test=2, n_classes=4, feat_dim=16))
    assert len(w.classes) == 4 and w.features('syn00006').shape[1] == 16
    with pytest.raises(UniMDError, match="'nope'"): w.features('nope')
    assert isinstance(w.grid, FeatureGrid) and w.grid.dt == pytest.approx(1 / 3)


def _charades_available():
    from unimd.data import data_root
    return (data_root() / 'charades' / 'Charades_v1_train.csv').exists() and (data_root() / 'charades_sta').exists()


@pytest.mark.skipif(not _charades_available(), reason='needs the Charades annotations under $UNIMD_DATA')
def test_world_from_real_charades_annotations():
    from unimd.data import read_charades
    from unimd.synthetic import make_world_from_charades
    w = make_world_from_charades(max_videos=200)
    st = world_stats(w.videos)
    assert len(w.classes) == 157 and st['train'] == st['test'] == 200
    real = read_charades('train')
    vid = next(k for k, v in w.videos.items() if v.subset == 'train' and v.has_tad)
    assert w.videos[vid].actions == real[vid].actions                     # real timings and labels
    assert any(v.has_mr for v in w.videos.values())
    assert w.source == 'charades'
    np.testing.assert_array_equal(make_world_from_charades(max_videos=200).features(vid), w.features(vid))
    with pytest.raises(UniMDError, match='synthetic vocabulary'): fig2_stats(w)


@pytest.fixture(scope='module')
def mech(): return make_world(kind='mechanisms')


def test_mechanisms_world_has_class_specific_boundaries(mech):
    "Where a class's shifts are large, its labelled edges show little of its prototype; where small, they show it."
    assert make_world().shifts is None and mech.shifts.shape == (32, 2) and (0 <= mech.shifts).all() and (mech.shifts <= 0.3).all()
    edge = {c: [] for c in range(32)}
    for vid in list(mech.videos)[:250]:
        x, t = mech.features(vid), mech.grid.to_seconds(np.arange(len(mech.features(vid))))
        for c, s, e in mech.latent[vid]:
            L, p = e - s, mech.prototypes[c]
            if L < 6: continue
            r = x @ p / (p @ p)                                             # read-out of the class prototype
            head, mid = (t > s + 0.5) & (t < s + 0.12 * L), (t > s + 0.45 * L) & (t < e - 0.45 * L)
            if head.any() and mid.any(): edge[c].append(r[head].mean() - r[mid].mean())
    lead = mech.shifts[:, 0]
    late = [np.mean(edge[c]) for c in range(32) if edge[c] and lead[c] > 0.2]
    early = [np.mean(edge[c]) for c in range(32) if edge[c] and lead[c] < 0.08]
    assert late and early and np.mean(late) < np.mean(early) - 0.15       # the evidence starts later for those classes


def test_mechanisms_sentences_use_other_words(mech):
    from unimd.synthetic import VERBS, ARTICLES, mentioned
    pairs = CLASS_POOL[:32]
    texts = [s.text for v in mech.videos.values() for s in v.sentences]
    class_words = [f'{f} {a} {o}' for v, o in pairs for f in VERBS[v] for a in ARTICLES.get(o, ('the', 'a'))]
    assert not any(w in t for t in texts for w in class_words)          # never the class's own wording
    assert all(mentioned(t, pairs) for t in texts)                        # yet every sentence is about known actions
    assert world_stats(mech.videos)['sentences_per_video'] < world_stats(mech.videos)['actions_per_video'] / 2
    with pytest.raises(UniMDError, match='boundary_shift'): make_world(SyntheticConfig(boundary_shift=0.6))
