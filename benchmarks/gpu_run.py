"""The GPU figures in one short job (run by benchmarks/gpu.sh): step time fp32 / bf16 / bf16 + torch.compile at the
Ego4D shape, peak memory, MFU against the device's peak, one step of every ablation study's config, CLIP image
extraction throughput, and a two-process DDP step on one device. Writes one JSON under benchmarks/results/.

    python benchmarks/gpu_run.py [--out benchmarks/results] [--budget-s 420]
    python benchmarks/gpu_run.py --dry-run      # CPU, tiny shape, every stage (compile with the eager backend)

Each stage is timed and guarded: a stage that fails records its error and the run goes on; a stage that would start
after --budget-s is skipped (recorded as such), so the whole job stays inside the device's time limit.
"""
import argparse, json, os, socket, sys, time, traceback
from datetime import datetime, timezone
from pathlib import Path
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

# Dense peak TFLOP/s (no sparsity) by device name, from the vendors' data sheets: fp32 (CUDA cores), tf32 and bf16
# (tensor cores). H100/H200 SXM share the compute die; the PCIe/NVL parts run lower clocks.
PEAKS = {
    'H200': dict(fp32=67.0, tf32=494.7, bf16=989.4),
    'H100 SXM': dict(fp32=67.0, tf32=494.7, bf16=989.4), 'H100 NVL': dict(fp32=60.0, tf32=417.5, bf16=835.0),
    'H100 PCIe': dict(fp32=51.0, tf32=378.0, bf16=756.0), 'H100': dict(fp32=67.0, tf32=494.7, bf16=989.4),
    'A100': dict(fp32=19.5, tf32=156.0, bf16=312.0), 'L40S': dict(fp32=91.6, tf32=183.0, bf16=362.1),
    'L4': dict(fp32=30.3, tf32=60.0, bf16=121.0), 'A10': dict(fp32=31.2, tf32=62.5, bf16=125.0),
    'RTX 4090': dict(fp32=82.6, tf32=82.6, bf16=165.2), 'T4': dict(fp32=8.1, tf32=8.1, bf16=65.0),
}


def device_peak(name):
    "(table key, peaks) of the first PEAKS key found in the device name (longest keys first), else (None, None)."
    for key in sorted(PEAKS, key=len, reverse=True):
        if all(part in name for part in key.split()): return key, PEAKS[key]
    return None, None


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)


def timed(fn, dev, steps):
    "Median seconds of `steps` calls after one warm-up call."
    fn(); sync(dev)
    ts = []
    for _ in range(steps):
        t = time.perf_counter(); fn(); sync(dev); ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]


def peak_gib(dev):
    return torch.cuda.max_memory_allocated(dev) / 2 ** 30 if dev.type == 'cuda' else None


def reset_peak(dev):
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats(dev)


def shape_config(dry):
    "(ModelConfig, batch, classes, sentences) at the Ego4D shape, or tiny for --dry-run."
    from unimd.model import ModelConfig
    cfg = ModelConfig.from_yaml(ROOT / 'configs' / 'ego4d.yaml')
    if dry: cfg = ModelConfig(**{**cfg.to_dict(), 'feat_dim': 16, 'channels': 16, 'reg_mlp_hidden': 16, 'max_seq_len': 16,
                                 'convnext_depths': (1, 1), 'fpn_layers': 1, 'regression_ranges': ((0, 4), (4, 8), (8, 1e9)),
                                 'n_stem': 1})
    return cfg, 2, (4 if dry else 110), (2 if dry else 3)


def step_fn(model, batch, bf16):
    "One training step (forward, assignment + loss, backward), under bf16 autocast if `bf16`."
    def run():
        model.zero_grad(set_to_none=True)
        with torch.autocast(batch.feats.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(batch)
            loss = model.loss(out, batch)['total']
        loss.backward()
    return run


def stage_steps(dev, dry, steps):
    "fp32, bf16 autocast and bf16 + torch.compile steps at the Ego4D shape: seconds, peak GiB, GFLOP, MFU."
    from efficiency import count
    from unimd.model import UniMD, random_batch
    cfg, B, C, S = shape_config(dry)
    torch.manual_seed(0)
    model = UniMD(cfg).to(dev).train()
    batch = random_batch(cfg, B=B, n_classes=C, n_sentences=S).to(dev)
    flop = count(step_fn(model, batch, False))
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'
    key, peaks = device_peak(name)
    res = dict(shape=dict(batch=B, T=cfg.max_seq_len, classes=C, sentences=S), step_gflop=flop / 1e9, peak_table_key=key, peaks_tflops=peaks)
    modes = {'fp32': (model, False), 'bf16': (model, True)}
    for mode, (m, bf16) in modes.items():
        reset_peak(dev)
        s = timed(step_fn(m, batch, bf16), dev, steps)
        res[mode] = dict(s=s, peak_gib=peak_gib(dev), tflops=flop / s / 1e12)
    if peaks:
        res['fp32']['mfu_vs_fp32'] = res['fp32']['tflops'] / peaks['fp32']
        res['fp32']['mfu_vs_tf32'] = res['fp32']['tflops'] / peaks['tf32']
        res['bf16']['mfu'] = res['bf16']['tflops'] / peaks['bf16']
    t = time.perf_counter()
    compiled = torch.compile(model, backend='eager' if dry else 'inductor', dynamic=False)
    reset_peak(dev)
    fn = step_fn(compiled, batch, True)
    fn(); sync(dev)
    first = time.perf_counter() - t
    s = timed(fn, dev, steps)
    res['bf16_compile'] = dict(s=s, peak_gib=peak_gib(dev), tflops=flop / s / 1e12, compile_and_first_step_s=first,
                               backend='eager' if dry else 'inductor', mfu=flop / s / 1e12 / peaks['bf16'] if peaks else None)
    res['speedup_bf16_vs_fp32'] = res['fp32']['s'] / res['bf16']['s']
    res['speedup_compile_vs_bf16'] = res['bf16']['s'] / res['bf16_compile']['s']
    return res


def ablation_configs():
    "(study, row, ModelConfig overrides, training mode) of every run of the ablation notebooks 40-42 (Table 1 (a)-(d))."
    modes = {'dedicated TAD': 'tad', 'dedicated MR': 'mr', 'MR->TAD': 'mr2tad', 'TAD->MR': 'tad2mr', 'random': 'cotrain',
             'sync': 'cotrain', 'alt': 'cotrain'}                  # 40_ablation_sampling's runs
    runs = [('sampling', row, {}, m) for row, m in modes.items()]
    runs += [('data volume', 'co-train 25-100%', {}, 'cotrain')]  # 41: the cotrain step, on fewer videos
    runs += [('loss weights', f'{t}-{m}', dict(lambda_tad=float(t), lambda_mr=float(m)), 'cotrain') for t, m in [(1, 3), (3, 1)]]
    heads = {'w/o query': dict(reg_query_dependent=False), 'w query, 1 FC': dict(reg_mlp_layers=1),
             'w query, 2 FC': dict(reg_mlp_layers=2), 'w query, 3 FC': dict(reg_mlp_layers=3)}  # 42's head variants
    runs += [('heads', f'{row} ({task})', model, task) for row, model in heads.items() for task in ('tad', 'mr')]
    return runs


def stage_ablations(dev, dry, steps):
    "One bf16 training step of each ablation run's config at the real shape (queries as its mode trains)."
    from unimd.model import ModelConfig, UniMD, random_batch
    base, B, C, S = shape_config(dry)
    out = []
    for study, row, over, mode in ablation_configs():
        cfg = ModelConfig(**{**base.to_dict(), **over})
        n_c, n_s = {'tad': (C, 0), 'tad2mr': (C, 0), 'mr': (0, S), 'mr2tad': (0, S)}.get(mode, (C, S))  # two-phase: first phase
        torch.manual_seed(0)
        model = UniMD(cfg).to(dev).train()
        batch = random_batch(cfg, B=B, n_classes=n_c, n_sentences=n_s).to(dev)
        reset_peak(dev)
        s = timed(step_fn(model, batch, dev.type == 'cuda'), dev, 1)
        out.append(dict(study=study, run=row, mode=mode, queries=n_c + n_s, s=s, peak_gib=peak_gib(dev)))
        del model, batch
    return dict(runs=out)


def stage_extract(dev, dry, steps):
    "CLIP ViT-B/32 image features of random frames (random weights: the cost does not depend on them): frames per second."
    import open_clip
    name = 'ViT-S-32' if dry else 'ViT-B-32-quickgelu'                 # dry run: the small ViT, same code path
    model = open_clip.create_model(name, pretrained=None).to(dev).eval()
    n = 2 if dry else 256
    x = torch.randn(n, 3, 224, 224, device=dev)
    def run():
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.float16 if dev.type == 'cuda' else torch.bfloat16, enabled=dev.type == 'cuda'):
            F.normalize(model.encode_image(x), dim=-1)
    s = timed(run, dev, steps)
    return dict(frames=n, s=s, frames_per_s=n / s, model=name, dtype='fp16 autocast' if dev.type == 'cuda' else 'fp32')


def _ddp_worker(rank, world, port, backend, dry, q):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from unimd.model import UniMD, random_batch
    try:
        os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
        dist.init_process_group(backend, rank=rank, world_size=world)
        dev = torch.device('cuda', 0) if torch.cuda.is_available() and not dry else torch.device('cpu')
        cfg, B, C, S = shape_config(dry)
        torch.manual_seed(0)
        model = UniMD(cfg).to(dev).train()
        ddp = DDP(model, device_ids=[0] if dev.type == 'cuda' else None, find_unused_parameters=True)
        batch = random_batch(cfg, B=1, n_classes=C, n_sentences=S, seed=rank).to(dev)
        def run():
            ddp.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == 'cuda'):
                out = ddp(batch)
                loss = model.loss(out, batch)['total']
            loss.backward()
        s = timed(run, dev, 2)
        g = next(p.grad for p in model.parameters() if p.grad is not None).flatten()[:4].float().cpu()
        ref = g.clone(); dist.broadcast(ref.to(dev) if backend == 'nccl' else ref, 0)
        q.put(dict(rank=rank, s=s, grads_equal_across_ranks=bool(torch.allclose(g, ref.cpu(), atol=1e-6))))
        dist.destroy_process_group()
    except Exception as e:
        q.put(dict(rank=rank, error=f'{type(e).__name__}: {e}'.splitlines()[0][:300]))


def stage_ddp(dev, dry, steps):
    "A two-process DDP step (batch 1 each) on one device: nccl first (refuses two ranks on one GPU), then gloo."
    import torch.multiprocessing as mp
    tried = {}
    for backend in (['gloo'] if dev.type != 'cuda' else ['nccl', 'gloo']):
        ctx = mp.get_context('spawn')
        q = ctx.Queue()
        with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
        ps = [ctx.Process(target=_ddp_worker, args=(r, 2, port, backend, dry, q)) for r in range(2)]
        for p in ps: p.start()
        out = [q.get(timeout=300) for _ in ps]
        for p in ps: p.join(timeout=60)
        tried[backend] = sorted(out, key=lambda r: r['rank'])
        if not any('error' in r for r in out): return dict(backend=backend, ranks=tried[backend], tried=list(tried))
    return dict(backend=None, tried=tried)


STAGES = {'steps': stage_steps, 'ablations': stage_ablations, 'extract': stage_extract, 'ddp': stage_ddp}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results'))
    ap.add_argument('--budget-s', type=float, default=420, help='skip stages that would start after this many seconds')
    ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--dry-run', action='store_true', help='CPU, tiny shape: check every stage runs')
    ap.add_argument('--only', nargs='+', choices=list(STAGES), default=list(STAGES))
    a = ap.parse_args(argv)
    dev = torch.device('cuda' if torch.cuda.is_available() and not a.dry_run else 'cpu')
    if dev.type == 'cpu' and not a.dry_run: raise SystemExit('no CUDA device: use --dry-run on CPU')
    if a.dry_run: torch.set_num_threads(1)
    t0 = time.perf_counter()
    res = dict(device=torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu', dry_run=a.dry_run, torch=torch.__version__,
               cuda=torch.version.cuda, date=datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'), host=socket.gethostname(),
               budget_s=a.budget_s, stages={})
    if dev.type == 'cuda': torch.backends.cuda.matmul.allow_tf32 = False; torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32
    for name in a.only:
        start = time.perf_counter() - t0
        if start > a.budget_s:
            res['stages'][name] = dict(skipped=f'budget: {start:.0f} s > {a.budget_s:.0f} s'); continue
        try: res['stages'][name] = {**STAGES[name](dev, a.dry_run, 1 if a.dry_run else a.steps), 'stage_s': time.perf_counter() - t0 - start}
        except Exception as e:
            res['stages'][name] = dict(error=f'{type(e).__name__}: {e}'.splitlines()[0][:400], trace=traceback.format_exc()[-1500:])
        print(f'[gpu_run] {name}: {time.perf_counter() - t0 - start:.1f} s', file=sys.stderr, flush=True)
    res['total_s'] = time.perf_counter() - t0
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    tag = 'dry-run' if a.dry_run else res['device'].replace(' ', '_')
    path = out / f"gpu-{tag}-{res['date'][:10]}.json"
    path.write_text(json.dumps(res, indent=1))
    print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
