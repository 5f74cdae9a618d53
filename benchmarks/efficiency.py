"""How close a UniMD training step comes to this machine's limits: FLOPs (torch.utils.flop_counter), time, fraction.

In one run: the fp32 matmul rate (the limit), memory bandwidth (a large copy), the conv1d roofline (depthwise k=3 and
k=7, pointwise as a [B*T, C] x [C, 4C] matmul: measured rate, FLOP per byte, the bound min(limit, FLOP/byte x
bandwidth)), FLOPs per training step and per inference video for each config, then at the Ego4D shape (batch 2,
T=1024, 110 classes + 3 sentences; configs/ego4d.yaml) the step's time and fraction, the same per part (embedding,
ConvNeXt stem + stages, BiFPN, heads, loss + assignment, decode) and per op class (depthwise conv, dense conv and
linear layers, the rest), and one layout experiment on the op class that holds the step back (depthwise conv:
the current [B, C, T] grouped conv1d against channels-last conv2d and shifted multiply-adds in [B, T, C]).

    python benchmarks/efficiency.py --json            # Ego4D shape, every config's FLOPs (about 1-3 min on 2 cores)
    python benchmarks/efficiency.py --quick --json    # tiny shape, for the tests (seconds)

step_fraction = step_gflop / step_s / limit_gflops. The load average is recorded beside every figure: the machine
is shared, so compare ratios measured in the same run, not absolute times across runs.
"""
import argparse, copy, glob, json, os, sys, time
from pathlib import Path
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count
from unimd.model import ModelConfig, UniMD, random_batch
from unimd.assign import assign_targets

ROOT = Path(__file__).resolve().parents[1]


def best(fn, repeat=3):
    "Best wall time of `repeat` calls of `fn` after one warm-up call."
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return min(ts)


def grouped_conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                               _output_padding, _groups, output_mask, out_shape, **kwargs):
    "FLOPs of a conv's backward: the forward's count once for the input gradient and once for the weight gradient."
    fwd = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)   # w_shape [C_out, C_in / groups, k]: groups included
    return fwd * (bool(output_mask[0]) + bool(output_mask[1]))


def count(fn, torch_formula=False):
    "FLOPs of one call of `fn` (matmuls and convolutions). torch's own conv-backward formula ignores `groups`, so a"
    "depthwise conv's weight gradient counts as a dense conv's (x C/groups); `torch_formula=True` keeps it, to show by how much."
    mapping = {} if torch_formula else {torch.ops.aten.convolution_backward: grouped_conv_backward_flop}
    with FlopCounterMode(display=False, custom_mapping=mapping) as fc: fn()
    return fc.get_total_flops()


def load():
    return round(os.getloadavg()[0], 2)


def note(what, t0=time.perf_counter()):
    "A progress line on stderr (stdout stays one JSON object)."
    print(f'[efficiency {time.perf_counter() - t0:6.1f} s] {what} (load {load()})', file=sys.stderr, flush=True)


def matmul_limit(n=2048, repeat=5):
    "fp32 GFLOP/s of an n x n x n matmul: the limit every fraction is measured against."
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / best(lambda: a @ b, repeat) / 1e9


def bandwidth(mib=256, repeat=5):
    "GB/s of a large copy (bytes read + written), far beyond the caches."
    x = torch.randn(mib * 2 ** 20 // 4); y = torch.empty_like(x)
    return 2 * x.numel() * 4 / best(lambda: y.copy_(x), repeat) / 1e9


def fwd_bwd(fn, *inputs):
    "A callable running `fn(*inputs)` forward and backward (inputs that need a gradient get one)."
    def run():
        for x in inputs:
            if x.grad is not None: x.grad = None
        out = fn(*inputs)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        torch.autograd.backward(outs, [torch.ones_like(o) for o in outs])  # ones_like keeps each output's layout
    return run


def roofline(B, C, T, limit, bw, repeat):
    "Depthwise (k=3, 7) and pointwise conv1d forward + backward at [B, C, T]: GFLOP/s, FLOP per byte, roofline bound."
    rows = {}
    x = torch.randn(B, C, T, requires_grad=True)
    for k in (3, 7):
        conv = nn.Conv1d(C, C, k, padding=k // 2, groups=C)
        flop = count(fwd_bwd(conv, x))
        byte = 4 * 3 * (2 * B * C * T)                             # fwd reads x, writes y; bwd reads dy, x, writes dx (+ dw)
        s = best(fwd_bwd(conv, x), repeat)
        rows[f'depthwise_k{k}'] = dict(gflop=flop / 1e9, s=s, gflops=flop / s / 1e9, flop_per_byte=flop / byte,
                                       bound_gflops=min(limit, flop / byte * bw), fraction=flop / s / 1e9 / limit)
    lin, xt = nn.Linear(C, 4 * C), torch.randn(B * T, C, requires_grad=True)
    flop, s = count(fwd_bwd(lin, xt)), best(fwd_bwd(lin, xt), repeat)
    byte = 4 * 3 * (B * T * (C + 4 * C)) + 4 * 3 * C * 4 * C
    rows['pointwise_1x4'] = dict(gflop=flop / 1e9, s=s, gflops=flop / s / 1e9, flop_per_byte=flop / byte,
                                 bound_gflops=min(limit, flop / byte * bw), fraction=flop / s / 1e9 / limit)
    return rows


def depthwise_layouts(B, C, T, k, repeat):
    "Seconds of one depthwise conv forward + backward in three layouts (the same numbers out), and their max difference."
    w = torch.randn(C, 1, k, requires_grad=True)
    x = torch.randn(B, C, T, requires_grad=True)
    x2 = x.detach().permute(0, 2, 1).contiguous().requires_grad_()  # [B, T, C]
    x4 = x.detach()[:, :, None].contiguous(memory_format=torch.channels_last).requires_grad_()
    impl = {
        'conv1d [B, C, T] (current)': (lambda x: F.conv1d(x, w, padding=k // 2, groups=C), x),
        'conv2d channels-last': (lambda x: F.conv2d(x, w[:, :, None], padding=(0, k // 2), groups=C), x4),
        'shifted multiply-add [B, T, C]': (lambda x: sum(F.pad(x, (0, 0, k // 2 - j, j - k // 2))[:, :, :] * w[:, 0, j]
                                                          if j != k // 2 else x * w[:, 0, j] for j in range(k)), x2),
    }
    ref = impl['conv1d [B, C, T] (current)'][0](x)
    outs = {'conv2d channels-last': impl['conv2d channels-last'][0](x4)[:, :, 0],
            'shifted multiply-add [B, T, C]': impl['shifted multiply-add [B, T, C]'][0](x2).permute(0, 2, 1)}
    diff = max(float((o - ref).detach().abs().max()) for o in outs.values())
    return {name: best(fwd_bwd(f, inp), repeat) for name, (f, inp) in impl.items()}, diff


def shift_check(k=3):
    "The shifted multiply-add equals the zero-padded convolution (same cross-correlation offsets)."
    x, w = torch.randn(1, 4, 9), torch.randn(4, 1, k)
    xt = x.permute(0, 2, 1)
    y = sum(F.pad(xt, (0, 0, k // 2 - j, j - k // 2)) * w[:, 0, j] if j != k // 2 else xt * w[:, 0, j] for j in range(k))
    return float((y.permute(0, 2, 1) - F.conv1d(x, w, padding=k // 2, groups=4)).abs().max())


def channels_last_depthwise(self, x, mask):
    "MaskedConv1d.forward with the depthwise case as a channels-last conv2d (oneDNN's depthwise kernel); else as before."
    c = self.conv
    if c.groups == 1 or c.groups != c.in_channels or self.stride != 1: return ORIGINAL_FORWARD(self, x, mask)
    x = x.masked_fill(~mask[:, None], 0.)
    x4 = x[:, :, None].contiguous(memory_format=torch.channels_last)               # [B, C, 1, T] stored as [B, T, C]
    y = F.conv2d(x4, c.weight[:, :, None], c.bias, padding=(0, c.padding[0]), groups=c.groups)[:, :, 0]  # [B, C, T]
    return y * mask[:, None].to(y.dtype), mask


from unimd.vision import MaskedConv1d
ORIGINAL_FORWARD = MaskedConv1d.forward


def with_forward(forward, fn):
    "Run `fn` with MaskedConv1d.forward set to `forward`."
    def run():
        MaskedConv1d.forward = forward
        try: return fn()
        finally: MaskedConv1d.forward = ORIGINAL_FORWARD
    return run


def compare_depthwise(model, batch, repeat, n):
    "The step with the current depthwise conv against channels-last conv2d, interleaved with the matmul limit: best times."
    a, b = torch.randn(n, n), torch.randn(n, n)
    fns = {'matmul': lambda: a @ b, 'current': step_fn(model, batch),
           'channels_last_depthwise': with_forward(channels_last_depthwise, step_fn(model, batch))}
    ts = {k: [] for k in fns}
    for f in fns.values(): f()
    for _ in range(repeat):                                        # interleaved: each sees the same machine load
        for k, f in fns.items():
            t = time.perf_counter(); f(); ts[k].append(time.perf_counter() - t)
    grads = {}
    for k, fwd in (('current', ORIGINAL_FORWARD), ('channels_last_depthwise', channels_last_depthwise)):
        m = copy.deepcopy(model)                                   # the loss keeps an EMA of positives: same state for both
        torch.manual_seed(0); with_forward(fwd, step_fn(m, batch))()
        grads[k] = torch.cat([p.grad.flatten() for p in m.parameters() if p.grad is not None])
    err = float((grads['current'] - grads['channels_last_depthwise']).abs().max() / grads['current'].abs().max())
    best_t = {k: min(v) for k, v in ts.items()}
    return dict(s={k: best_t[k] for k in ('current', 'channels_last_depthwise')}, limit_gflops=2 * n ** 3 / best_t['matmul'] / 1e9,
                speedup=best_t['current'] / best_t['channels_last_depthwise'], grad_rel_err=err)


def compiled_block(B, C, T, k, repeat):
    "One BiFPN ConvNeXt block forward + backward at [B, C, T], eager against torch.compile (inductor fuses its elementwise ops)."
    from unimd.vision import ConvNeXtBlock
    torch.manual_seed(0)
    blk = ConvNeXtBlock(C, k).train()
    x, mask = torch.randn(B, C, T, requires_grad=True), torch.ones(B, T, dtype=torch.bool)
    def step(f):
        def run():
            y, _ = f(x, mask); y.backward(torch.ones_like(y))
        return run
    t = time.perf_counter(); cblk = torch.compile(blk); step(cblk)(); compile_s = time.perf_counter() - t
    eager, compiled = best(step(blk), repeat), best(step(cblk), repeat)
    return dict(shape=[B, C, T], k=k, eager_s=eager, compiled_s=compiled, speedup=eager / compiled, compile_s=compile_s)


def config_shape(path, sentences=3):
    "(ModelConfig, batch size, classes) of a config file."
    d = yaml.safe_load(open(path))
    return ModelConfig.from_yaml(path), (d.get('train') or {}).get('batch_size', 2), (d.get('data') or {}).get('num_classes', 110)


def step_fn(model, batch):
    "One training step: forward, label assignment + loss (eq. 10), backward."
    def run():
        model.zero_grad(set_to_none=True)
        out = model(batch)
        model.loss(out, batch)['total'].backward()
    return run


def config_flops(cfg, B, C, sentences, T0):
    "GFLOP of a training step (batch B, C classes) and of one inference video (forward, batch 1) at `cfg`'s shape."
    "Every conv and matmul of UniMD is affine in T (levels T/2^l, points x queries; the query MLPs do not depend on T),"
    "so FLOPs are counted at T0 and 2 T0 (multiples of the largest stride) and extrapolated to max_seq_len; `main`"
    "checks this against a full count at its own shape."
    torch.manual_seed(0)
    m = UniMD(cfg)
    def at(T):
        m.train()
        step = count(step_fn(m, random_batch(cfg, B=B, T=T, n_classes=C, n_sentences=sentences)))
        m.eval()
        with torch.no_grad(): infer = count(lambda: m(random_batch(cfg, B=1, T=T, n_classes=C, n_sentences=sentences)))
        return step, infer
    (s1, i1), (s2, i2), T = at(T0), at(2 * T0), cfg.max_seq_len
    line = lambda y1, y2: y1 + (y2 - y1) * (T - T0) / T0
    return dict(batch=B, T=T, queries=C + sentences, step_gflop=line(s1, s2) / 1e9, infer_gflop_per_video=line(i1, i2) / 1e9,
                counted_at_T=[T0, 2 * T0])


def parts(model, batch, repeat):
    "Time (forward + backward), GFLOP of each part of the step on the same batch; decode is inference only."
    v, cfg = model.vision, model.cfg

    def embedding(x):
        m = batch.mask
        for conv, norm in zip(v.embd, v.embd_norm):
            x, m = conv(x, m); x = F.relu(norm(x))
        return x

    def stages(x):
        m = batch.mask
        for blk in v.stem: x, m = blk(x, m)
        feats = [x]
        for blocks, down in zip(v.stages, v.down):
            for blk in blocks: x, m = blk(x, m)
            x, m = down(x, m); feats.append(x)
        return feats

    with torch.no_grad():
        x0 = embedding(batch.feats)
        levels, masks = v.backbone(batch.feats, batch.mask)
        feats, masks = v(batch.feats, batch.mask)
        out = model(batch)
    x0 = x0.detach().requires_grad_()
    lv = [f.detach().requires_grad_() for f in levels]
    ft = [f.detach().requires_grad_() for f in feats]
    logits, reg = out.cls_logits.detach().requires_grad_(), out.reg.detach().requires_grad_()

    def bifpn(*xs):
        ys, ms = list(xs), masks
        for layer in v.fpn: ys, ms = layer(ys, ms)
        return ys

    def heads(*xs):
        return [model.cls_head(list(xs), masks, batch.qemb, batch.qmask), model.reg_head(list(xs), masks, batch.qemb, batch.qmask)]

    def loss(lg, rg):
        cls_t, reg_t = assign_targets(out.points, batch.segments, batch.qmask, cfg.center_radius)
        return model.criterion(lg, rg, cls_t, reg_t, out.pmask, batch.qmask, batch.qtask)['total']

    fns = {'embedding': fwd_bwd(embedding, batch.feats), 'convnext_stem_and_stages': fwd_bwd(stages, x0),
           'bifpn': fwd_bwd(bifpn, *lv), 'heads': fwd_bwd(heads, *ft), 'loss_and_assignment': fwd_bwd(loss, logits, reg)}
    res = {}
    for name, fn in fns.items():
        res[name] = dict(gflop=count(fn) / 1e9, s=best(fn, repeat), load=load())
    model.eval()
    with torch.no_grad():
        eval_out = model(batch)
        dec = lambda: model.detect(eval_out, batch)
        res['decode'] = dict(gflop=count(dec) / 1e9, s=best(dec, repeat), load=load())
    model.train()
    return res


def op_classes(model, batch, repeat):
    "Each conv / linear call of one step, timed alone at its shape (forward + backward): GFLOP and seconds per op class."
    calls = []
    def hook(mod, inp, out): calls.append((mod, tuple(inp[0].shape)))
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Linear))]
    with torch.no_grad(): model(batch)
    for h in hs: h.remove()
    shapes = {}
    for mod, shape in calls:                                       # one measurement per distinct layer shape
        kind = 'depthwise_conv' if isinstance(mod, nn.Conv1d) and mod.groups > 1 else 'dense_conv_and_linear'
        key = (type(mod).__name__, shape, str(mod))
        shapes.setdefault(key, [mod, shape, kind, 0])[3] += 1
    res = {'depthwise_conv': dict(gflop=0.0, s=0.0, calls=0), 'dense_conv_and_linear': dict(gflop=0.0, s=0.0, calls=0)}
    layers = []
    for mod, shape, kind, n in shapes.values():
        x = torch.randn(shape, requires_grad=True)
        fn = fwd_bwd(mod, x)
        flop, t = count(fn), best(fn, max(1, repeat - 1))
        r = res[kind]
        r['gflop'] += n * flop / 1e9; r['s'] += n * t; r['calls'] += n
        layers.append(dict(layer=str(mod).split('(')[0] + f' {tuple(mod.weight.shape)}', input=list(shape), calls=n,
                           gflop=n * flop / 1e9, s=n * t, gflops=flop / t / 1e9))
    res['layers'] = sorted(layers, key=lambda l: -l['s'])[:12]   # where the dense time goes, slowest first
    model.zero_grad(set_to_none=True)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--config', default=str(ROOT / 'configs' / 'ego4d.yaml'))
    ap.add_argument('--batch', type=int, default=2)
    ap.add_argument('--sentences', type=int, default=3)
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    ap.add_argument('--quick', action='store_true', help='tiny shape (T=64, 8 classes, 64 channels) and only this config')
    ap.add_argument('--compile-block', action='store_true', help='also time one ConvNeXt block under torch.compile (inductor, ~20 s)')
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg, _, n_classes = config_shape(a.config)
    if a.quick:
        cfg = ModelConfig(**{**cfg.to_dict(), 'feat_dim': 32, 'channels': 64, 'reg_mlp_hidden': 64, 'max_seq_len': 64})
        n_classes = 8
    n = 256 if a.quick else 2048
    res = dict(config=os.path.relpath(a.config, ROOT), threads=torch.get_num_threads(), cpus=os.cpu_count(), torch=torch.__version__,
               quick=a.quick, load_start=load())
    res['limit_gflops'] = matmul_limit(n, a.repeat + 2)          # raised below if a later interleaved matmul is faster
    res['bandwidth_gbs'] = bandwidth(16 if a.quick else 256)
    res['load_limits'] = load()
    note('limits measured')
    model = UniMD(cfg).train()
    batch = random_batch(cfg, B=a.batch, n_classes=n_classes, n_sentences=a.sentences)
    step = step_fn(model, batch)
    res['shape'] = dict(batch=a.batch, T=cfg.max_seq_len, classes=n_classes, sentences=a.sentences, channels=cfg.channels)
    res['step_gflop'] = count(step) / 1e9
    res['step_gflop_torch_formula'] = count(step, torch_formula=True) / 1e9   # what torch.utils.flop_counter alone reports
    res['step_s'] = best(step, a.repeat)
    res['step_fraction'] = res['step_gflop'] / res['step_s'] / res['limit_gflops']
    res['load_step'] = load()
    note('step measured')
    res['depthwise_channels_last_step'] = compare_depthwise(model, batch, a.repeat, n)
    cmp = res['depthwise_channels_last_step']
    res['step_fraction_interleaved'] = res['step_gflop'] / cmp['s']['current'] / max(cmp['limit_gflops'], res['limit_gflops'])
    note('depthwise comparison measured')
    res['parts'] = parts(model, batch, a.repeat)
    note('parts measured')
    res['op_classes'] = op_classes(model, batch, a.repeat)
    res['layers'] = res['op_classes'].pop('layers')
    note('op classes measured')
    B, C, Tl = a.batch, cfg.channels, cfg.max_seq_len
    res['roofline'] = roofline(B, C, Tl, res['limit_gflops'], res['bandwidth_gbs'], a.repeat)
    note('roofline measured')
    times, diff = depthwise_layouts(B, C, Tl, cfg.fpn_kernel, a.repeat)
    base = times['conv1d [B, C, T] (current)']
    res['depthwise_layouts'] = dict(k=cfg.fpn_kernel, shape=[B, C, Tl], max_abs_diff=diff, shift_check=shift_check(),
                                    s={k: v for k, v in times.items()}, speedup_vs_current={k: base / v for k, v in times.items()})
    shapes = {'quick': (cfg, a.batch, n_classes)} if a.quick else {Path(p).stem: config_shape(p) for p in sorted(glob.glob(str(ROOT / 'configs' / '*.yaml')))}
    if a.compile_block: res['compiled_block'] = compiled_block(B, C, Tl, cfg.fpn_kernel, a.repeat); note('compiled block measured')
    T0 = cfg.strides[-1] * 2                                       # 64 and 128 at the real configs
    res['configs'] = {name: config_flops(*shape, a.sentences, T0) for name, shape in shapes.items()}
    mine = res['configs'].get('quick' if a.quick else Path(a.config).stem)
    if mine: res['flop_scaling_check'] = dict(scaled=mine['step_gflop'], full=res['step_gflop'], rel_err=abs(mine['step_gflop'] / res['step_gflop'] - 1))
    res['load_end'] = load()
    res['limit_gflops'] = max(res['limit_gflops'], cmp['limit_gflops'])   # the best matmul rate seen in this run
    res['step_s'] = min(res['step_s'], cmp['s']['current'])
    res['step_fraction'] = res['step_gflop'] / res['step_s'] / res['limit_gflops']
    oc = res['op_classes']
    oc['rest'] = dict(s=max(0.0, res['step_s'] - oc['depthwise_conv']['s'] - oc['dense_conv_and_linear']['s']),
                      gflop=max(0.0, res['step_gflop'] - oc['depthwise_conv']['gflop'] - oc['dense_conv_and_linear']['gflop']))
    for table in (res['parts'], oc):                              # fractions against the final limit
        for p in table.values(): p['fraction'] = p['gflop'] / p['s'] / res['limit_gflops'] if p['s'] else 0.0
    for l in res['layers']: l['fraction'] = l['gflops'] / res['limit_gflops']
    for r in res['roofline'].values():
        r['fraction'] = r['gflops'] / res['limit_gflops']; r['bound_gflops'] = min(res['limit_gflops'], r['flop_per_byte'] * res['bandwidth_gbs'])
    lost = {k: p['s'] - p['gflop'] / res['limit_gflops'] for k, p in oc.items()}  # seconds above what the limit would take
    res['seconds_lost_to_limit'] = lost
    held = max(lost, key=lost.get)
    res['held_back_by'] = held
    if a.json: print(json.dumps(res))
    else: report(res)
    return 0


def report(r):
    print(f"limit: fp32 matmul {r['limit_gflops']:.0f} GFLOP/s, copy bandwidth {r['bandwidth_gbs']:.1f} GB/s "
          f"({r['threads']} threads, load {r['load_start']})")
    print(f"step at {r['shape']}: {r['step_gflop']:.1f} GFLOP in {r['step_s']:.3f} s = {r['step_gflop'] / r['step_s']:.0f} GFLOP/s, "
          f"{100 * r['step_fraction']:.0f}% of the limit (load {r['load_step']})")
    for title, table in (('part', r['parts']), ('op class', r['op_classes'])):
        print(f"  {title:28s} {'GFLOP':>8s} {'s':>8s} {'fraction':>9s}")
        for k, p in table.items():
            print(f"  {k:28s} {p['gflop']:8.1f} {p['s']:8.3f} {100 * p.get('fraction', 0):8.0f}%")
    for k, p in r['roofline'].items():
        print(f"  roofline {k:16s} {p['gflops']:6.1f} GFLOP/s measured, {p['flop_per_byte']:.2f} FLOP/byte, bound {p['bound_gflops']:.0f}")
    c = r['depthwise_channels_last_step']
    print(f"  step with channels-last depthwise conv: {c['s']['channels_last_depthwise']:.3f} s vs {c['s']['current']:.3f} s "
          f"({c['speedup']:.2f}x, gradients equal to {c['grad_rel_err']:.1e} relative)")
    d = r['depthwise_layouts']
    for k, v in d['s'].items(): print(f"  depthwise k={d['k']} {k:32s} {v:.4f} s ({d['speedup_vs_current'][k]:.2f}x)")
    for k, c in r['configs'].items(): print(f"  config {k:10s} step {c['step_gflop']:8.1f} GFLOP, inference {c['infer_gflop_per_video']:7.1f} GFLOP/video")
    print('  slowest layers (forward + backward, alone at their shape):')
    for l in r['layers'][:8]:
        print(f"    {l['layer']:28s} in {str(l['input']):18s} x{l['calls']:<3d} {l['s']:7.3f} s {l['gflops']:6.1f} GFLOP/s ({100 * l['fraction']:.0f}%)")
    if 'compiled_block' in r:
        c = r['compiled_block']
        print(f"  ConvNeXt block {c['shape']} k={c['k']}: eager {c['eager_s']:.3f} s, torch.compile {c['compiled_s']:.3f} s ({c['speedup']:.2f}x; compile {c['compile_s']:.0f} s)")
    print(f"held back by: {r['held_back_by']} (seconds above the limit per op class: "
          + ', '.join(f'{k} {v:.2f}' for k, v in r['seconds_lost_to_limit'].items()) + ')')


if __name__ == '__main__':
    sys.exit(main())
