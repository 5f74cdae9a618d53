"""Training throughput at the synthetic config (CPU), with data loading timed separately.

Reports videos per second of (a) the data pipeline alone (features, crop, collate, query embedding lookup),
(b) the optimisation step alone on ready batches, and (c) the two together as the trainer runs them, and the share
of a loop iteration spent waiting for data. The baseline for the ratios is the step time measured in the same run.

    python benchmarks/train_throughput.py [--batches 24] [--batch-size 8] [--threads 1] [--set key=value ...]
"""
import argparse, dataclasses, json, platform, tempfile, time
import torch
from unimd.features import save_features, load_features
from unimd.sampler import make_sampler, video_tasks
from unimd.config import load_config
from unimd.splits import load_splits, split_texts, TrainSet
from unimd.text import FrozenText, get_encoder
from unimd.train import build_model, make_loader, make_optimizer, make_schedule, train_step, EMA
from unimd.model import UniMD, random_batch

def _sync(device):
    if torch.device(device).type == 'cuda': torch.cuda.synchronize(device)

def time_loader(ds, iterations, text, num_workers=0) -> tuple:
    "(seconds, batches) to load and collate `iterations` with a DataLoader."
    t = time.perf_counter()
    batches = list(make_loader(ds, iterations, text, num_workers))
    return time.perf_counter() - t, batches

def time_steps(model, batches, tc, warmup=2) -> dict:
    "Optimisation steps on ready batches: seconds per step, videos per second and peak device memory (GiB)."
    dev = next(model.parameters()).device
    opt, ema = make_optimizer(model, tc), EMA(model, tc.ema_decay)
    sched = make_schedule(opt, tc, len(batches))
    model.train()
    batches = [b.to(dev) for b in batches]
    for b in batches[:warmup]: train_step(model, b, opt, sched, ema, tc)
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats(dev)
    _sync(dev); t = time.perf_counter()
    for b in batches[warmup:]: train_step(model, b, opt, sched, ema, tc)
    _sync(dev); dt = time.perf_counter() - t
    n, videos = len(batches) - warmup, sum(len(b.vids) for b in batches[warmup:])
    return {'step_s': dt / n, 'videos_per_s': videos / dt,
            'peak_gib': torch.cuda.max_memory_allocated(dev) / 2 ** 30 if dev.type == 'cuda' else float('nan')}

def gpu_ego4d(steps=22):
    "The Ego4D configuration on a GPU (1024-d features, 1024 steps, 110 classes + 11 sentences, batch 2), bf16 on and off."
    import dataclasses
    cfg = load_config('ego4d')
    model = UniMD(cfg.model).cuda()
    batches = [random_batch(cfg.model, B=cfg.train.batch_size, T=cfg.model.max_seq_len, n_classes=110, n_sentences=11, seed=i)
               for i in range(steps)]
    return {f'amp={amp}': time_steps(model, batches, dataclasses.replace(cfg.train, amp=amp)) for amp in (False, True)}

def cpu_name():
    "The CPU model from /proc/cpuinfo, else the platform's name."
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor() or platform.machine()

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--config', default='synthetic')
    p.add_argument('--batches', type=int, default=24)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--workers', type=int, default=0, help='DataLoader workers for the end-to-end loop')
    p.add_argument('--set', action='append', default=[])
    p.add_argument('--gpu-ego4d', action='store_true', help='time the Ego4D configuration on the GPU instead')
    a = p.parse_args(argv)
    if a.gpu_ego4d: print(json.dumps({'device': torch.cuda.get_device_name(), **gpu_ego4d()}, indent=1)); return
    torch.set_num_threads(a.threads)
    # the hashing encoder at MiniLM's width: same model, and no text model to load (embeddings are precomputed anyway)
    cfg = load_config(a.config, ['model.text_encoder=hash', f'train.batch_size={a.batch_size}'] + a.set)
    tr, te = load_splits(cfg.data)
    text = FrozenText(get_encoder(cfg.model), split_texts(tr, te))
    its = make_sampler('sync', video_tasks(tr.videos), a.batch_size, seed=0).iterations()[:a.batches]
    videos = sum(len(i) for i in its)
    # read features from .npy files as a real dataset does (the synthetic world would render them from memory)
    tmp = tempfile.TemporaryDirectory()
    for v in {v for i in its for v, _ in i}: save_features(tmp.name, v, tr.features(v))
    tr = dataclasses.replace(tr, features=lambda vid: load_features(tmp.name, vid))
    ds = TrainSet(tr, cfg.data, cfg.model.max_seq_len)
    load_s, batches = time_loader(ds, its, text)
    torch.manual_seed(0)
    model = build_model(cfg, tr, text)
    step = time_steps(model, batches, cfg.train, warmup=2)
    # end to end, as the trainer runs it: loader and step interleaved
    opt, ema = make_optimizer(model, cfg.train), EMA(model, cfg.train.ema_decay)
    sched = make_schedule(opt, cfg.train, len(its))
    t = time.perf_counter()
    for b in make_loader(ds, its, text, a.workers): train_step(model, b, opt, sched, ema, cfg.train)
    loop_s = time.perf_counter() - t
    step_s = step['step_s'] * len(its)
    res = {'date': time.strftime('%Y-%m-%d'), 'machine': f'{cpu_name()}, {a.threads} thread(s)',
           'torch': torch.__version__, 'params_M': round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
           'batch_size': a.batch_size, 'batches': len(its),
           'data_videos_per_s': round(videos / load_s, 1), 'step_videos_per_s': round(step['videos_per_s'], 1),
           'loop_videos_per_s': round(videos / loop_s, 1),
           'data_ms_per_batch': round(1000 * load_s / len(its), 1), 'step_ms_per_batch': round(1000 * step['step_s'], 1),
           'data_over_step': round(load_s / step_s, 3)}
    print(json.dumps(res, indent=1))
    return res

if __name__ == '__main__':
    main()
