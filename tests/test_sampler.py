"Invariants of the co-training samplers (section 5) on splits shaped like Charades, Ego4D and ANet."
import numpy as np, pytest
from unimd.core import TAD, MR, UniMDError
from unimd.sampler import make_sampler, keep_fraction, only_task, task_counts, pool

def split(n_both, n_tad, n_mr):
    return ({f'b{i}': (TAD, MR) for i in range(n_both)} | {f't{i}': (TAD,) for i in range(n_tad)}
            | {f'm{i}': (MR,) for i in range(n_mr)})

SPLITS = [split(30, 0, 0), split(2, 40, 31), split(5, 7, 23), split(0, 9, 9), split(0, 3, 0)]

def uses(its):
    "Multiset of (vid, task) uses in an epoch."
    return sorted((v, t) for it in its for v, ts in it for t in ts)

@pytest.mark.parametrize('tasks', SPLITS)
@pytest.mark.parametrize('bs', [1, 2, 3, 8])
def test_sync_both_tasks_while_both_kinds_remain(tasks, bs):
    for epoch in range(3):
        s = make_sampler('sync', tasks, bs, seed=5); s.set_epoch(epoch)
        its = list(s)
        c = task_counts(its)
        both = (c > 0).all(1)
        # a prefix of iterations has both tasks, the rest (surplus of one single-task kind) has one task only
        n_both_its = int(both.sum())
        assert both[:n_both_its].all() and not both[n_both_its:].any()
        rest = c[n_both_its:]
        assert (rest[:, 0] == 0).all() or (rest[:, 1] == 0).all()
        # both-task videos come first, each used for both tasks
        nb = len([v for v, ts in tasks.items() if len(ts) == 2])
        first = [x for it in its for x in it][:nb]
        assert all(ts == (TAD, MR) for _, ts in first)
        # every annotation once per epoch
        assert uses(its) == sorted((v, t) for v, ts in tasks.items() for t in ts)
        assert len(s) == len(its)

@pytest.mark.parametrize('tasks', SPLITS[:4])
@pytest.mark.parametrize('bs', [1, 2, 5])
def test_alternating_is_strict_and_equal(tasks, bs):
    its = list(make_sampler('alt', tasks, bs, seed=1))
    c = task_counts(its)
    assert ((c[0::2, 0] > 0) & (c[0::2, 1] == 0)).all()
    assert ((c[1::2, 1] > 0) & (c[1::2, 0] == 0)).all()
    assert len(its) % 2 == 0                                   # equal number of iterations per task
    assert {v for it in its[0::2] for v, _ in it} == set(pool(tasks, TAD))
    assert {v for it in its[1::2] for v, _ in it} == set(pool(tasks, MR))

def test_random_mix_matches_data():
    tasks = split(10, 25, 15)
    s, first = make_sampler('random', tasks, 4, seed=3), []
    for e in range(600):
        s.set_epoch(e)
        its = s.iterations()
        assert uses(its) == sorted((v, t) for v, ts in tasks.items() for t in ts)
        first += [tasks[v] for it in its for v, _ in it[:1]]
    share = {k: np.mean([f == k for f in first]) for k in [(TAD, MR), (TAD,), (MR,)]}
    np.testing.assert_allclose([share[(TAD, MR)], share[(TAD,)], share[(MR,)]], [10 / 50, 25 / 50, 15 / 50], atol=0.02)

def test_seeded_and_epoch_based():
    tasks = split(5, 7, 23)
    for name in ('sync', 'alt', 'random', 'tad', 'mr'):
        a, b = make_sampler(name, tasks, 3, seed=9), make_sampler(name, tasks, 3, seed=9)
        a.set_epoch(4); b.set_epoch(4)
        assert list(a) == list(b)
        b.set_epoch(5)
        assert list(a) != list(b)

def test_dedicated_and_data_volume():
    tasks = split(40, 40, 40)
    assert task_counts(make_sampler('tad', tasks, 4))[:, 1].sum() == 0
    kept = keep_fraction(tasks, 0.25, 0.5, seed=0)
    assert (len(pool(kept, TAD)), len(pool(kept, MR))) == (20, 40)
    assert kept != keep_fraction(tasks, 0.25, 0.5, seed=1)
    assert only_task(kept, TAD) == {v: (TAD,) for v in pool(kept, TAD)}

def test_sharding_covers_each_iteration_once():
    tasks = split(5, 7, 23)
    full = make_sampler('sync', tasks, 2, seed=0).iterations()
    shards = [make_sampler('sync', tasks, 2, seed=0, rank=r, world_size=3).iterations() for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    assert sorted(map(str, sum(shards, []))) == sorted(map(str, full[:3 * len(shards[0])]))

def test_bad_input():
    with pytest.raises(UniMDError, match='unknown sampler'): make_sampler('sequential', split(1, 1, 1))
    with pytest.raises(UniMDError, match='no training videos'): make_sampler('mr', split(0, 3, 0))
    with pytest.raises(UniMDError, match='batch_size'): make_sampler('sync', split(1, 1, 1), 0)
