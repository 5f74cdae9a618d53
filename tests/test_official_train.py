"""Training in `compat: official` (issue 17): the official recipe against the official 15-step trajectory
(train_expected.pt), its schedule, epoch plan, EMA and normaliser rules, the official YAML's training values, and the
one-line refusals of what unimd cannot reproduce."""
import dataclasses, math
from pathlib import Path
import numpy as np
import pytest
import torch
import yaml
from unimd.core import TAD, MR, TASKS, UniMDError
from unimd.cli import main
from unimd.train import Recipe, EMA, make_schedule, lr_factor, train
from unimd.config import load_config
from unimd.official_train import (official_lr_factor, official_schedule, official_sampler, official_epoch_length, OfficialEMA,
                                  reset_normaliser, official_recipe, pick, fixture_start, replay, state_errors)
from cli_checks import fails, files_in

torch.set_num_threads(1)


def official_fix():
    "The official fixtures folder, or a skip naming what is missing."
    import unimd.official as off
    try: return off.official_fixtures()
    except UniMDError as e: pytest.skip(f'official fixtures missing: {e}')


# ---------------------------------------------------------------- the trajectory

@pytest.fixture(scope='module')
def trajectory():
    "The official recipe's 15 steps on the fixture, as `unimd train` would run them, and the official file."
    fix = official_fix()
    expected = torch.load(fix / 'ego4d_small' / 'train_expected.pt', weights_only=True)
    model, batch, cfg = fixture_start(fix)
    rows, ema = replay(model, batch, cfg.train, official_recipe(), expected['steps'], steps_per_epoch=expected['iters_per_epoch'])
    return expected, rows, model, ema, cfg


def test_trajectory_lr_losses_and_normaliser(trajectory):
    expected, rows, _, _, cfg = trajectory
    assert len(rows) == expected['steps'] == 15
    for r, lr in zip(rows, expected['lr']):                                   # each group's rate, step by step
        assert len(r['lr']) == len(lr) and all(abs(a - b) <= 1e-9 * abs(b) for a, b in zip(r['lr'], lr)), (r['lr'], lr)
    assert expected['lr'][0] == [0.0, 0.0] and rows[0]['lr'] == [0.0, 0.0]    # the warm-up starts at 0
    for k, (r, e) in enumerate(zip(rows, expected['loss'])):
        assert abs(r['loss']['total'] - e['total']) < 1e-5, k
        for t in TASKS:
            for part in ('cls_loss', 'reg_loss', 'final_loss'): assert abs(r['loss'][t][part] - e[t][part]) < 1e-5, (k, t, part)
    assert all(abs(r['normaliser'] - e) < 1e-5 * e for r, e in zip(rows, expected['normaliser']))


def test_trajectory_every_tensor_after_each_step(trajectory):
    import unimd.official as off
    expected, rows, model, ema, _ = trajectory
    final = expected['state'][15]
    for name, ours, theirs in (('model', model.state_dict(), final['model']), ('ema', ema.module.state_dict(), final['ema'])):
        errs = state_errors(ours, theirs)
        assert max(errs.values()) < 2e-4, (name, max(errs, key=errs.get), max(errs.values()))
        assert {k for k in theirs if k.endswith('num_batches_tracked')} <= set(errs)   # BatchNorm counters compared too
        missing = {k for k in theirs if k not in errs}
        assert missing == {k for k in off.unused_official(theirs) if not k.endswith('num_batches_tracked')}, missing
    for k, (r, norms) in enumerate(zip(rows, expected['norms'])):            # where two runs part: none does
        worst = max(abs(r['norms'][off.our_name(n)] - v) / max(v, 1e-12) for n, v in norms.items() if off.our_name(n) in r['norms'])
        assert worst < 2e-4, (k, worst)


def test_unimd_recipe_does_not_match(trajectory):
    "The check can fail: unimd's own schedule, from the same start, parts from the official trajectory at once."
    expected = trajectory[0]
    model, batch, cfg = fixture_start(official_fix())
    rows, _ = replay(model, batch, cfg.train, dataclasses.replace(official_recipe(), schedule=make_schedule), 3)
    assert rows[0]['lr'][0] == pytest.approx(1e-4 / 5) != expected['lr'][0][0]
    assert abs(rows[2]['loss']['total'] - expected['loss'][2]['total']) > 1e-4


# ---------------------------------------------------------------- the parts

def test_official_schedule_formula():
    base, W, M = 2e-4, 4, 20
    f = [official_lr_factor(k, W, M, 1e-8 / base) for k in range(M + 1)]
    assert f[:5] == [0, 1 / 3, 2 / 3, 1, 1]                                   # k / (W - 1), peak held at k = W - 1 and W
    assert f[M] * base == pytest.approx(1e-8, rel=1e-9)                         # the floor
    assert official_lr_factor(12, W, M, 0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 8 / 16)))
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=base)
    tc = dataclasses.replace(pick('synthetic')[0].train, lr=base, warmup_epochs=2, epochs=8)
    sched, lrs = official_schedule(opt, tc, steps_per_epoch=2), []
    for _ in range(20): lrs.append(opt.param_groups[0]['lr']); opt.step(); sched.step()
    np.testing.assert_allclose(lrs, [base * x for x in f[:20]], rtol=1e-12, atol=1e-20)
    assert lr_factor(0, W, M) == 1 / W                                          # ours differs: starts at 1/W


def counts(its): return sorted((sum(TAD in ts for _, ts in it), sum(MR in ts for _, ts in it), len(it)) for it in its)


@pytest.mark.parametrize('n_tad, n_mr, n_both, bs', [(7, 4, 5, 2), (3, 9, 0, 2), (10, 10, 3, 4), (1, 5, 7, 3), (0, 4, 4, 2)])
def test_official_sync_epoch_composition(n_tad, n_mr, n_both, bs):
    tasks = {f'b{i}': (TAD, MR) for i in range(n_both)} | {f't{i}': (TAD,) for i in range(n_tad)} | {f'm{i}': (MR,) for i in range(n_mr)}
    s = official_sampler('sync', tasks, bs, seed=3)
    its = s.iterations()
    assert len(its) == official_epoch_length(n_tad, n_mr, n_both, bs) == min(n_tad, n_mr) // bs + n_both // bs
    expect = [(bs, bs, bs)] * (n_both // bs) + [(bs, bs, 2 * bs)] * (min(n_tad, n_mr) // bs)   # bs TAD-only + bs MR-only
    assert counts(its) == sorted(expect)
    assert all(len({v for v, _ in it}) == len(it) for it in its)
    for it in its:                                                              # a mixed batch: TAD-only then MR-only videos
        kinds = {tuple(ts) for _, ts in it}
        assert kinds in ({(TAD, MR)}, {(TAD,), (MR,)})
    s.set_epoch(1)
    assert counts(s.iterations()) == sorted(expect)                             # every epoch the same composition


def test_official_sync_shuffles_the_kinds():
    tasks = {f'b{i}': (TAD, MR) for i in range(40)} | {f't{i}': (TAD,) for i in range(40)} | {f'm{i}': (MR,) for i in range(40)}
    its = official_sampler('sync', tasks, 2, seed=0).iterations()
    kinds = [len(it) == 4 for it in its]                                        # True: a mixed iteration
    assert sum(kinds) == 20 and kinds != sorted(kinds) and kinds != sorted(kinds, reverse=True)


def test_official_random_and_dedicated_drop_the_last_batch():
    tasks = {f'v{i}': (TAD, MR) if i % 2 else (TAD,) for i in range(11)}
    assert [len(it) for it in official_sampler('random', tasks, 4).iterations()] == [4, 4]
    assert [len(it) for it in official_sampler('mr', tasks, 2).iterations()] == [2, 2]      # 5 MR videos
    assert official_sampler('alt', tasks, 2).__class__.__name__ == 'AlternatingSampler'    # no official form: ours
    with pytest.raises(UniMDError, match='unknown sampler'): official_sampler('nope', tasks, 2)


def test_official_epoch_without_a_full_batch_is_refused():
    tasks = {'b0': (TAD, MR), 't0': (TAD,), 't1': (TAD,), 'm0': (MR,)}
    with pytest.raises(UniMDError, match='1 both-task, 2 TAD-only and 1 MR-only training videos make no full batch of train.batch_size 2'):
        len(official_sampler('sync', tasks, 2))
    with pytest.raises(UniMDError, match='3 training videos make no full batch of train.batch_size 4'):
        len(official_sampler('tad', tasks, 4))
    assert len(official_sampler('sync', tasks, 1)) == 2                         # bs 1: the both video, and t + m


def test_official_ema_truncates_integers_and_averages_floats():
    bn = torch.nn.BatchNorm1d(3); bn.num_batches_tracked.fill_(4321)
    ema, ours = OfficialEMA(bn, 0.999), EMA(bn, 0.999)
    bn.train()(torch.randn(8, 3))
    ema.update(bn); ours.update(bn)
    assert int(ema.module.num_batches_tracked) == 4321 and int(ours.module.num_batches_tracked) == 4322
    torch.testing.assert_close(ema.module.running_mean, ours.module.running_mean)


def test_normaliser_reset_at_every_start(tmp_path):
    "compat official: a resumed run starts the loss normaliser at init_loss_norm again; unimd's continues."
    from unimd.checkpoint import load_checkpoint
    sets = ['model.text_encoder=hash', 'model.text_dim=32', 'model.feat_dim=16', 'model.channels=16', 'model.reg_mlp_hidden=16',
            'model.fpn_layers=1', 'model.max_seq_len=192', 'data.synthetic.feat_dim=16', 'data.synthetic.n_train=12',
            'data.synthetic.n_test=4', 'data.synthetic.n_classes=4', 'train.batch_size=2', 'train.warmup_epochs=1',
            'train.epochs=1', 'train.early_stop_epoch=0', 'model.compat=official', 'model.head_dim=512']
    cfg, rc = pick('synthetic', sets)
    assert rc.name == 'official' and cfg.train.amp is False
    seen = []
    spy = dataclasses.replace(rc, start=lambda m: (reset_normaliser(m), seen.append(float(m.criterion.normalizer[0]))))
    assert train(cfg, tmp_path, progress=False, stop_after=2, recipe=spy)['stopped'] == (0, 2)
    saved = float(load_checkpoint(tmp_path / 'checkpoint.pt')['model']['criterion.normalizer'][0])
    assert saved != 100.0
    train(cfg, tmp_path, progress=False, stop_after=1, recipe=spy)
    assert seen == [100.0, 100.0]                                               # reset at the start and at the resume


# ---------------------------------------------------------------- the official YAML and the CLI

def official_yaml(tmp_path, **changes):
    d = yaml.safe_load((official_fix() / 'ego4d_small' / 'official_config.yaml').read_text())
    for key, v in changes.items():
        sec, k = key.split('__')
        d[sec][k] = v
    p = tmp_path / 'official.yaml'
    p.write_text(yaml.safe_dump(d))
    return p


def test_official_yaml_training_values_are_honoured(tmp_path):
    p = official_yaml(tmp_path, opt__learning_rate=3e-4, opt__epochs=12, opt__warmup_epochs=2, opt__early_stop_epochs=7,
                      loader__batch_size=5, train_cfg__clip_grad_l2norm=-1)
    cfg, rc = pick(p)
    t = cfg.train
    assert (t.lr, t.epochs, t.warmup_epochs, t.early_stop_epoch, t.batch_size, t.clip_grad, t.amp) == (3e-4, 12, 2, 7, 5, -1.0, False)
    assert rc.name == 'official' and cfg.model.compat == 'official' and cfg.data.l2_features
    d = yaml.safe_load(p.read_text()); d['devices'] = ['cuda:0', 'cuda:1']; p.write_text(yaml.safe_dump(d))
    assert pick(p)[0].train.lr == pytest.approx(6e-4)                          # train_sync.py: lr x number of devices
    d['opt']['warmup'] = False; p.write_text(yaml.safe_dump(d))
    assert pick(p)[0].train.warmup_epochs == 0
    assert pick(p, ['train.amp=true', 'train.lr=1e-5'])[0].train.amp is True   # --set still wins


@pytest.mark.parametrize('key, value, words', [
    ('opt__type', 'SGD', ["opt.type is 'SGD'", "set opt.type: 'AdamW'"]),
    ('opt__schedule_type', 'multistep', ["opt.schedule_type is 'multistep'", "set opt.schedule_type: 'cosine'"]),
    ('model__backbone_type', 'conv', ["model.backbone_type is 'conv'", 'convnext_stage']),
    ('model__fpn_dim', 64, ['model.fpn_dim 64 differs from model.embd_dim 32', 'set model.fpn_dim: 32']),
    ('opt__warmup_epochs', 0, ['opt.warmup_epochs is 0 with opt.warmup true', 'opt.warmup: false']),
    ('opt__learning_rate', 'fast', ["opt.learning_rate is 'fast': give a number"]),
    ('model__head_num_layers', 'x', ["model.head_num_layers 'x'", 'a whole number like 3']),
    ('model__backbone_arch', 5, ['model.backbone_arch 5', 'a list like [2, 2, 5]']),
])
def test_official_yaml_values_unimd_cannot_honour(tmp_path, capsys, key, value, words):
    p = official_yaml(tmp_path, **{key: value})
    fails(capsys, ['import-official', str(official_fix() / 'ego4d_small' / 'checkpoint.pth.tar'), '--config', str(p),
                   '--out', str(tmp_path / 'o' / 'x.pt')], str(p), *words)
    assert files_in(tmp_path / 'o') == []
    from unimd.official_train import cli_train
    with pytest.raises(UniMDError, match=words[0].replace('(', r'\(').replace(')', r'\)')):
        cli_train(['--config', str(p), '--out', str(tmp_path / 'run'), '--no-progress'])
    assert files_in(tmp_path / 'run') == []


def test_import_official_writes_the_official_training_values(tmp_path):
    import unimd.official as off
    p = official_yaml(tmp_path, opt__learning_rate=5e-5, loader__batch_size=3)
    out = off.import_official(official_fix() / 'ego4d_small' / 'checkpoint.pth.tar', p, tmp_path / 'imp.pt')
    written = yaml.safe_load(out.with_suffix('.yaml').read_text())
    assert (written['train']['lr'], written['train']['batch_size'], written['train']['amp'], written['model']['compat']) == (5e-5, 3, False, 'official')
    cfg, rc = pick(out.with_suffix('.yaml'))                                   # unimd train --config imp.yaml: the official recipe
    assert rc.name == 'official' and (cfg.train.lr, cfg.train.amp) == (5e-5, False)


def test_import_official_of_a_unimd_config_trains_in_float32(tmp_path):
    import unimd.official as off
    sets = ['model.feat_dim=64', 'model.max_seq_len=256', 'data.num_classes=20']
    ck = official_fix() / 'ego4d_small' / 'checkpoint.pth.tar'
    assert load_config('ego4d').train.amp is True                              # unimd's own Ego4D config: bf16 on CUDA
    for extra, amp in (([], False), (['train.amp=true'], True)):
        out = off.import_official(ck, 'ego4d', tmp_path / f'imp{amp}.pt', sets + extra)
        cfg, rc = pick(out.with_suffix('.yaml'))
        assert (rc.name, cfg.train.amp) == ('official', amp)


def test_import_official_out_never_destroys(tmp_path, capsys):
    fix = official_fix()
    ck = tmp_path / 'in.pth.tar'; ck.write_bytes((fix / 'ego4d_small' / 'checkpoint.pth.tar').read_bytes())
    cfg = tmp_path / 'cfg.yaml'; cfg.write_text((fix / 'ego4d_small' / 'official_config.yaml').read_text())
    base = ['import-official', str(ck), '--config', str(cfg)]
    snapshot = lambda: {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    before = snapshot()
    fails(capsys, base + ['--out', str(ck)], 'would overwrite an input', 'choose another --out')          # the checkpoint itself
    fails(capsys, base + ['--out', str(ck), '--force'], 'would overwrite an input')                      # even with --force
    fails(capsys, base + ['--out', str(tmp_path / 'cfg.pt'), '--force'], 'would overwrite an input', 'cfg.yaml')   # its YAML = the config
    fails(capsys, base + ['--out', str(tmp_path / 'model.yaml')], "give the checkpoint's name", 'model.pt')
    assert snapshot() == before
    assert main(base + ['--out', str(tmp_path / 'model.pt')]) == 0
    done = snapshot()
    fails(capsys, base + ['--out', str(tmp_path / 'model.pt')], 'model.pt exists', '--force')
    (tmp_path / 'other.pt').write_bytes(b'keep me')
    fails(capsys, base + ['--out', str(tmp_path / 'other.yaml')], "give the checkpoint's name")
    (tmp_path / 'lone.yaml').write_text('keep: me\n')
    fails(capsys, base + ['--out', str(tmp_path / 'lone.pt')], 'lone.yaml exists', '--force')            # the companion YAML too
    assert {k: v for k, v in snapshot().items() if k in done} == done and (tmp_path / 'other.pt').read_bytes() == b'keep me'
    assert not (tmp_path / 'lone.pt').exists()
    assert main(base + ['--out', str(tmp_path / 'model.pt'), '--force']) == 0                           # replaced when asked
    assert torch.load(tmp_path / 'model.pt', weights_only=False)['config']['model']['compat'] == 'official'


def test_unimd_train_with_compat_official_trains_the_official_way(tmp_path, capsys):
    "The whole command on the SYNTHETIC world: the official recipe is picked, its first step runs at lr 0, its epoch is the official length."
    import csv
    from unimd.official_train import cli_train
    from unimd.splits import load_split
    from unimd.sampler import video_tasks
    sets = ['model.text_encoder=hash', 'model.text_dim=32', 'model.feat_dim=16', 'model.channels=16', 'model.reg_mlp_hidden=16',
            'model.fpn_layers=1', 'model.max_seq_len=192', 'data.synthetic.feat_dim=16', 'data.synthetic.n_train=16',
            'data.synthetic.n_test=4', 'data.synthetic.n_classes=4', 'train.batch_size=2', 'train.warmup_epochs=2',
            'train.epochs=1', 'train.early_stop_epoch=0', 'model.compat=official', 'model.head_dim=512']
    assert cli_train(['--config', 'synthetic', '--out', str(tmp_path), '--no-progress'] + [x for s in sets for x in ('--set', s)]) == 0
    rows = list(csv.DictReader(open(tmp_path / 'log.csv')))
    cfg, _ = pick('synthetic', sets)
    t = video_tasks(load_split(cfg.data, 'train').videos)
    kinds = [sum(ts == k for ts in t.values()) for k in ((TAD,), (MR,), (TAD, MR))]
    n = official_epoch_length(*kinds, 2)
    assert n > 0 and len(rows) == 3 * n                                       # 2 warm-up + 1 cosine epochs of the official length
    lrs = [float(r['lr']) for r in rows]
    np.testing.assert_allclose(lrs, [cfg.train.lr * official_lr_factor(k, 2 * n, 3 * n, 1e-8 / cfg.train.lr) for k in range(3 * n)], rtol=1e-9)
    assert lrs[0] == 0.0 and 'final metrics' in capsys.readouterr().out
