"The trainer: exact resume, overfitting, EMA, loss weights, schedule, checkpoints and the errors a user can fix."
import io, os, contextlib, math
from pathlib import Path
import numpy as np, pytest, torch
from unimd.core import TAD, MR, UniMDError
from unimd.data import data_root
from unimd.text import HashTextEncoder, FrozenText, get_encoder
from unimd.sampler import make_sampler, video_tasks
from unimd.model import UniMD
from unimd.config import Config, DataConfig, load_config, update_config
from unimd.checkpoint import load_checkpoint, save_checkpoint
from unimd.splits import load_split, load_splits, TrainSet
from unimd.train import (train, build_model, make_loader, make_optimizer, make_schedule, train_step, predict, score, EMA,
                         lr_factor, cli_train)

torch.set_num_threads(1)

TINY = ['model.text_encoder=hash', 'model.text_dim=32', 'model.feat_dim=16', 'model.channels=16', 'model.reg_mlp_hidden=16',
        'model.fpn_layers=1', 'model.max_seq_len=192', 'data.synthetic.feat_dim=16', 'data.synthetic.n_train=12',
        'data.synthetic.n_test=6', 'data.synthetic.n_classes=4', 'train.batch_size=4', 'train.lr=1e-3',
        'train.warmup_epochs=1', 'train.epochs=1', 'train.early_stop_epoch=0', 'train.ema_decay=0.9']

def tiny(*sets): return load_config(None, TINY + list(sets))

def states_equal(a, b): return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "One finished tiny co-training run."
    out = tmp_path_factory.mktemp('run')
    return out, train(tiny(), out, progress=False)

# ---------------------------------------------------------------- resume

@pytest.mark.parametrize('mode', ['cotrain', 'tad2mr'])
def test_resume_equals_uninterrupted(tmp_path, mode):
    cfg = tiny(f'train.mode={mode}')
    a = train(cfg, tmp_path / 'a', progress=False)
    assert train(cfg, tmp_path / 'b', progress=False, stop_after=3)['stopped'] == (0, 3)   # mid-epoch
    b = train(cfg, tmp_path / 'b', progress=False)
    ca, cb = load_checkpoint(tmp_path / 'a' / 'checkpoint.pt'), load_checkpoint(tmp_path / 'b' / 'checkpoint.pt')
    assert states_equal(ca['model'], cb['model']) and states_equal(ca['ema'], cb['ema'])
    assert a['final'] == b['final'] and len(a['history']) == len(b['history'])
    cols = lambda p: [l.split(',')[:-1] for l in open(p / 'log.csv')]                   # all but the timing column
    assert cols(tmp_path / 'a') == cols(tmp_path / 'b')

def test_finished_run_is_not_retrained(run, tmp_path):
    out, res = run
    mtime = (out / 'checkpoint.pt').stat().st_mtime_ns
    assert train(tiny(), out, progress=False)['final'] == res['final']
    assert (out / 'checkpoint.pt').stat().st_mtime_ns == mtime

# ---------------------------------------------------------------- outputs of a run

def test_run_writes_outputs(run):
    out, res = run
    assert {'checkpoint.pt', 'log.csv', 'metrics.json', 'predictions_tad.json', 'predictions_mr.jsonl'} <= set(os.listdir(out))
    assert {'tad_mAP', 'mr_R1@0.5', 'mr_R1@0.7'} <= set(res['final'])
    rows = open(out / 'log.csv').read().splitlines()
    ck = load_checkpoint(out / 'checkpoint.pt')
    assert len(rows) - 1 == ck['step'] and ck['phase'] == 0 and not any(p.name.endswith('.tmp') for p in out.iterdir())

def test_dedicated_run_is_scored_on_its_task(tmp_path):
    res = train(tiny('train.mode=mr'), tmp_path, progress=False)
    assert res['final'] and all(k.startswith('mr_') for k in res['final'])
    assert not (tmp_path / 'predictions_tad.json').exists()

def test_schedule_in_log(run):
    out, _ = run
    import csv
    rows = list(csv.DictReader(open(out / 'log.csv')))
    n = len(rows) // 2                                         # 2 epochs: 1 warm-up, 1 cosine
    expect = [1e-3 * lr_factor(s, n, 2 * n) for s in range(2 * n)]
    np.testing.assert_allclose([float(r['lr']) for r in rows], expect, rtol=1e-6)
    assert float(rows[n - 1]['lr']) == pytest.approx(1e-3)

# ---------------------------------------------------------------- learning

def test_tiny_model_overfits_a_handful_of_videos():
    cfg = load_config(None, TINY + ['data.synthetic.n_train=4', 'data.synthetic.n_test=0', 'data.crop_ratio=[1.0, 1.0]',
                                    'model.drop_path=0', 'model.reg_dropout=0', 'train.lr=3e-3', 'model.channels=32',
                                    'model.reg_mlp_hidden=32'])
    torch.manual_seed(0)
    tr = load_split(cfg.data, 'train')
    text = FrozenText(get_encoder(cfg.model), [*tr.classes, *(s.text for v in tr.videos.values() for s in v.sentences)])
    model = build_model(cfg, tr, text)
    tc = update_config(cfg.train, {'warmup_epochs': 0, 'epochs': 100})
    opt = make_optimizer(model, tc); sched = make_schedule(opt, tc, 1)
    ema, ds = EMA(model, 0.0), TrainSet(tr, cfg.data, cfg.model.max_seq_len)
    batch = next(iter(make_loader(ds, make_sampler('random', video_tasks(tr.videos), 4).iterations(), text)))
    losses = [train_step(model, batch, opt, sched, ema, tc)['loss'] for _ in range(100)]
    assert np.mean(losses[-10:]) < 0.05 * np.mean(losses[:10])
    m = score(tr, predict(model, tr, text), 'synthetic')
    assert m['tad_mAP'] > 90 and m['mr_R1@0.7'] > 90, m          # mAP averaged over tIoU 0.5:0.95

# ---------------------------------------------------------------- EMA and loss weights

def test_ema_decay_zero_and_one(tmp_path):
    train(tiny('train.ema_decay=0.0'), tmp_path / 'zero', progress=False)
    ck = load_checkpoint(tmp_path / 'zero' / 'checkpoint.pt')
    assert states_equal(ck['model'], ck['ema'])                 # d = 0: the EMA is the last model
    cfg = tiny('train.ema_decay=1.0')
    train(cfg, tmp_path / 'one', progress=False)
    ck = load_checkpoint(tmp_path / 'one' / 'checkpoint.pt')
    torch.manual_seed(cfg.train.seed)
    init = UniMD(cfg.model).state_dict()                         # d = 1: the EMA never leaves the initial weights
    assert states_equal({k: v for k, v in init.items()}, ck['ema'])
    assert not states_equal(ck['model'], ck['ema'])

def test_ema_update_is_the_moving_average():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = EMA(net, 0.75)
    before = {k: v.clone() for k, v in ema.module.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters(): p.add_(1.0)
    net.train(); net(torch.randn(4, 3))                          # moves the running stats, counts a batch
    ema.update(net)
    for k, v in ema.module.state_dict().items():
        m = net.state_dict()[k]
        expect = 0.75 * before[k] + 0.25 * m if v.dtype.is_floating_point else m
        assert torch.allclose(v, expect), k

def _tad_batch(cfg, tasks):
    tr = load_split(cfg.data, 'train')
    text = FrozenText(get_encoder(cfg.model), [*tr.classes, *(s.text for v in tr.videos.values() for s in v.sentences)])
    both = [v for v, x in tr.videos.items() if x.has_tad and x.has_mr][:2]
    ds = TrainSet(tr, cfg.data, cfg.model.max_seq_len)
    return tr, text, next(iter(make_loader(ds, [[(v, tasks) for v in both]], text)))

def test_loss_is_the_weighted_sum_and_weights_scale_gradients():
    cfg = tiny('model.lambda_tad=3', 'model.lambda_mr=1')
    tr, text, batch = _tad_batch(cfg, (TAD, MR))
    torch.manual_seed(0); model = build_model(cfg, tr, text).eval()
    l = model.loss(model(batch), batch)
    assert torch.allclose(l['total'], 3 * l['tad'] + 1 * l['mr'])
    grads = {}
    for lt in (1.0, 3.0):                                        # a TAD-only batch: the gradient is linear in lambda_tad
        c = update_config(cfg, {'model': {'lambda_tad': lt}})
        _, _, tb = _tad_batch(c, (TAD,))
        torch.manual_seed(0); m = build_model(c, tr, text).eval()
        m.loss(m(tb), tb)['total'].backward()
        grads[lt] = torch.cat([p.grad.flatten() for p in m.parameters() if p.grad is not None])
    assert (grads[3.0] - 3 * grads[1.0]).abs().max() < 1e-5 * grads[3.0].abs().max()

# ---------------------------------------------------------------- gradient clipping

def test_clip_grad_zero_and_negative_train_without_clipping(tmp_path):
    "clip_grad <= 0 is no clipping (the official convention), in every mode: 0 and -1 train exactly as an unreachable bound."
    ck = {}
    for clip in ('0', '-1', '1e30', '0.01'):
        train(tiny(f'train.clip_grad={clip}'), tmp_path / clip, progress=False)
        ck[clip] = load_checkpoint(tmp_path / clip / 'checkpoint.pt')['model']
    assert states_equal(ck['0'], ck['1e30']) and states_equal(ck['-1'], ck['1e30'])
    assert not states_equal(ck['0.01'], ck['1e30'])                 # clipping does act when it is on
    import csv
    norms = [float(r['grad_norm']) for r in csv.DictReader(open(tmp_path / '0' / 'log.csv'))]
    assert all(n > 0 and math.isfinite(n) for n in norms)          # the norm is still measured and logged

def test_clip_grad_scales_the_gradient_to_the_bound():
    cfg = tiny()
    tr, text, batch = _tad_batch(cfg, (TAD, MR))
    grads = {}
    for clip in (-1.0, 0.0, 0.05):
        torch.manual_seed(0); m = build_model(cfg, tr, text)
        opt = torch.optim.SGD(m.parameters(), lr=0.0); sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0)
        row = train_step(m, batch, opt, sched, EMA(m, 0.9), update_config(cfg.train, {'clip_grad': clip}))
        grads[clip] = (torch.cat([p.grad.flatten() for p in m.parameters() if p.grad is not None]), row['grad_norm'])
    assert torch.equal(grads[-1.0][0], grads[0.0][0])
    assert grads[-1.0][0].norm().item() == pytest.approx(grads[-1.0][1], rel=1e-4) and grads[-1.0][1] > 0.05
    assert grads[0.05][0].norm().item() == pytest.approx(0.05, rel=1e-4)                # clipped to the bound
    assert torch.allclose(grads[0.05][0] * grads[-1.0][1] / 0.05, grads[-1.0][0], rtol=1e-4, atol=1e-9)   # same direction

# ---------------------------------------------------------------- errors a user can fix

def test_unknown_config_key(tmp_path):
    with pytest.raises(UniMDError, match='unknown config key train.lrate: did you mean train.lr'):
        load_config(None, ['train.lrate=1'])
    p = tmp_path / 'bad.yaml'; p.write_text('model:\n  chanels: 64\n')
    with pytest.raises(UniMDError, match='bad.yaml: unknown config key model.chanels: did you mean model.channels'):
        load_config(str(p))
    with pytest.raises(SystemExit):                              # argparse: unknown mode
        cli_train(['--config', 'synthetic', '--mode', 'both', '--out', str(tmp_path)])

def test_checkpoint_of_another_config_is_refused(run):
    out, _ = run
    with pytest.raises(UniMDError, match='trained with another config.*train.lr: 0.001 in the checkpoint, 0.01 now'):
        train(tiny('train.lr=0.01'), out, progress=False)

@pytest.mark.skipif(not (data_root() / 'charades').is_dir(), reason='needs the Charades annotations under $UNIMD_DATA (data/README.md)')
def test_feature_folder_with_missing_videos(tmp_path):
    dc = DataConfig(dataset='charades', features=str(tmp_path), fps=24, feat_stride=4)
    vids = ['3MSZA', 'YSKX3']
    for v in vids: np.save(tmp_path / f'{v}.npy', np.zeros((10, 8), np.float32))
    with pytest.raises(UniMDError, match=r'have no features in .*allow_missing'):
        load_split(dc, 'test')
    s = load_split(update_config(dc, {'allow_missing': True}), 'test')
    assert sorted(s.videos) == vids and s.features('3MSZA').shape == (10, 8)
    with pytest.raises(UniMDError, match='does not exist'):
        load_split(update_config(dc, {'features': str(tmp_path / 'nope')}), 'test')

def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    p = save_checkpoint({'config': {}, 'w': torch.zeros(3)}, tmp_path / 'checkpoint.pt')
    good = p.read_bytes()
    def full(obj, f, *a, **k):
        f.write(b'half a checkpoint'); raise OSError(28, 'No space left on device')
    monkeypatch.setattr(torch, 'save', full)
    with pytest.raises(UniMDError, match='No space left on device.*previous checkpoint is intact'):
        save_checkpoint({'config': {}, 'w': torch.ones(3)}, p)
    assert p.read_bytes() == good and os.listdir(tmp_path) == ['checkpoint.pt']

def test_tasks_are_decoded_apart():
    "The per-video cap on detections must not let the class queries crowd out the sentences, or the reverse."
    cfg = tiny('model.max_seg=5')
    tr, te = load_splits(cfg.data)
    text = FrozenText(get_encoder(cfg.model), [*tr.classes, *(s.text for v in te.videos.values() for s in v.sentences)])
    torch.manual_seed(0)
    model = build_model(cfg, tr, text)
    both = predict(model, te, text)
    flat = lambda p: np.array([(m.start, m.end, m.score) for v in sorted(p) for q in sorted(p[v]) for m in p[v][q]])
    for task in (TAD, MR):                                       # as if the other task were not there (up to float noise)
        alone = predict(model, te, text, (task,))[task]
        assert {v: list(q) for v, q in both[task].items()} == {v: list(q) for v, q in alone.items()}
        np.testing.assert_allclose(flat(both[task]), flat(alone), atol=1e-4)
    assert all(sum(map(len, q.values())) == 5 for q in both[MR].values())   # each task fills its own cap


def test_the_house_stays_small():
    "Issue 11: the trainer fits in one sitting, and what uses a trained model never imports the trainer."
    root = Path(__file__).resolve().parents[1] / 'unimd'
    assert len((root / 'train.py').read_text().splitlines()) <= 330   # issue 17 added the Recipe and the non-finite guard (was 300)
    for name in ('predictor', 'check', 'app', 'config', 'checkpoint', 'splits', 'text', 'pretrained'):
        src = (root / f'{name}.py').read_text()
        assert 'from .train import' not in src and 'unimd.train import' not in src, name
