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
from unimd.train import (load_config, load_splits, FrozenText, get_encoder, split_texts, build_model, TrainSet,
                         time_loader, time_steps, make_loader, make_optimizer, make_schedule, train_step, EMA)

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
    a = p.parse_args(argv)
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
