"""One UniMD training step at a config's shape: the batched model against the loop model, same run, same weights.

The loop model runs the query-dependent convolution of the regression head the way the official code does: one
F.conv1d per pyramid level, video and query (~1,400 calls per Ego4D step). Everything else is shared code.

    python benchmarks/train_step.py --config configs/ego4d.yaml [--json] [--steps 3] [--device cuda --amp bf16]

A step is forward, label assignment, loss (eq. 10) and backward on a random batch: `--batch` videos of T =
max_seq_len steps, each with the config's classes (data.num_classes, else 110) + `--sentences` sentences as queries.
"""
import argparse, json, statistics, sys, time
import torch
import yaml
from unimd.model import ModelConfig, UniMD, random_batch
from unimd.vision import n_params


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--config', default='configs/ego4d.yaml')
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--sentences', type=int, default=3)
    p.add_argument('--classes', type=int, default=None, help='default: data.num_classes of the config, else 110')
    p.add_argument('--steps', type=int, default=3, help='timed steps per model (after one warm-up step)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--amp', choices=['none', 'bf16'], default='none')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    p.add_argument('--json', action='store_true', help='print one JSON object')
    return p.parse_args(argv)


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)


def train_step(model, batch, amp):
    "One forward + loss + backward; returns the loss (a host sync)."
    model.zero_grad(set_to_none=True)
    with torch.autocast(batch.feats.device.type, dtype=torch.bfloat16, enabled=amp):
        out = model(batch)
        loss = model.loss(out, batch)['total']
    loss.backward()
    return loss.item()


def reg_head_step(model, feats, masks, batch):
    "Forward + backward of the regression head alone on fixed pyramid features."
    model.zero_grad(set_to_none=True)
    model.reg_head(feats, masks, batch.qemb, batch.qmask).sum().backward()


def timed(fn, device):
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def main(argv=None):
    a = parse(argv)
    if a.threads: torch.set_num_threads(a.threads)
    device, amp = torch.device(a.device), a.amp == 'bf16'
    cfg = ModelConfig.from_yaml(a.config)
    n_classes = a.classes or (yaml.safe_load(open(a.config)).get('data') or {}).get('num_classes', 110)
    torch.manual_seed(0)
    fast = UniMD(cfg).to(device).train()
    slow = UniMD(cfg, qconv='loop').to(device).train()
    slow.load_state_dict(fast.state_dict())
    batch = random_batch(cfg, B=a.batch, n_classes=n_classes, n_sentences=a.sentences).to(device)

    times, peak = {'batched': [], 'loop': []}, {}
    for name, m in (('batched', fast), ('loop', slow)): train_step(m, batch, amp)        # warm-up
    for _ in range(a.steps):                                                               # interleaved: fair on a busy machine
        for name, m in (('batched', fast), ('loop', slow)):
            if device.type == 'cuda': torch.cuda.reset_peak_memory_stats(device)
            times[name].append(timed(lambda: train_step(m, batch, amp), device))
            if device.type == 'cuda': peak[name] = max(peak.get(name, 0), torch.cuda.max_memory_allocated(device) / 2 ** 30)

    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        feats, masks = fast.vision(batch.feats, batch.mask)
    feats = [f.float() for f in feats]
    head = {}
    for name, m in (('batched', fast), ('loop', slow)):
        reg_head_step(m, feats, masks, batch)
        head[name] = statistics.median(timed(lambda: reg_head_step(m, feats, masks, batch), device) for _ in range(a.steps))

    s, sl = statistics.median(times['batched']), statistics.median(times['loop'])
    res = dict(config=a.config, params=n_params(fast), s_per_step=round(s, 4), s_per_step_loop=round(sl, 4),
               ratio=round(sl / s, 3), reg_head_s=round(head['batched'], 4), reg_head_s_loop=round(head['loop'], 4),
               reg_head_ratio=round(head['loop'] / head['batched'], 2), batch=a.batch, T=cfg.max_seq_len,
               queries=n_classes + a.sentences, device=str(device), amp=a.amp, threads=torch.get_num_threads(),
               torch=torch.__version__, steps=a.steps)
    if device.type == 'cuda':
        res.update(gpu=torch.cuda.get_device_name(device), peak_gib=round(peak['batched'], 2), peak_gib_loop=round(peak['loop'], 2))
    if a.json: print(json.dumps(res))
    else:
        for k, v in res.items(): print(f'{k:16s} {v}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
