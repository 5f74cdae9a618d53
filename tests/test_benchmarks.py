"Dry runs of the benchmark scripts: they run at a tiny shape, print what they promise, and their arithmetic holds."
import json, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
B = ROOT / 'benchmarks'
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'HF_HUB_OFFLINE': '1'}


def run(*args, timeout=300):
    out = subprocess.run([*map(str, args)], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_gpu_sh_syntax_and_dry_run(tmp_path):
    run('bash', '-n', B / 'gpu.sh')
    out = run('bash', B / 'gpu.sh', '--dry-run', '--out', tmp_path)
    files = list(tmp_path.glob('gpu-dry-run-*.json'))
    assert len(files) == 1 and out.stdout.strip() == str(files[0])
    r = json.loads(files[0].read_text())
    assert r['dry_run'] and set(r['stages']) == {'steps', 'ablations', 'extract', 'ddp'}
    errors = {k: v['error'] for k, v in r['stages'].items() if isinstance(v, dict) and 'error' in v}
    assert not errors, errors
    st = r['stages']['steps']
    assert st['step_gflop'] > 0 and all(st[m]['s'] > 0 for m in ('fp32', 'bf16', 'bf16_compile'))
    assert abs(st['speedup_bf16_vs_fp32'] - st['fp32']['s'] / st['bf16']['s']) < 1e-9
    runs = r['stages']['ablations']['runs']
    assert len(runs) == 18 and {a['mode'] for a in runs} >= {'tad', 'mr', 'cotrain'} and all(a['s'] > 0 for a in runs)
    assert r['stages']['ddp']['backend'] == 'gloo' and all(x['grads_equal_across_ranks'] for x in r['stages']['ddp']['ranks'])
    sys.path.insert(0, str(B))
    from gpu_results import latest, figure
    assert latest(tmp_path) is None                                # a dry run is never taken for a device's figures
    assert figure('stages.steps.fp32.s', tmp_path, dry_run=True) == st['fp32']['s']
    from gpu_results import describe, NO_RUN
    assert describe('steps', tmp_path) == NO_RUN                   # what the notebooks print until a device has run it
    lines = {k: describe(k, tmp_path, dry_run=True) for k in ('steps', 'ablations', 'extract', 'ddp')}
    assert all(l.startswith('cpu (') and 'failed' not in l for l in lines.values()), lines
    assert f"fp32 {st['fp32']['s']:.3f} s" in lines['steps'] and lines['ablations'].count(' queries)') == 18


def test_gpu_results_describe_a_device_run(tmp_path):
    "The notebooks' figure lines from a device run's JSON (built as gpu_run.py writes it); dry runs and errors kept apart."
    sys.path.insert(0, str(B))
    from gpu_results import describe, NO_RUN
    step = lambda s, gib: dict(s=s, peak_gib=gib, tflops=300 / s / 1e3)
    run_ = dict(device='NVIDIA H200', dry_run=False, torch='2.14.1', date='2026-12-02T10:00:00Z', stages=dict(
        steps=dict(shape=dict(batch=2, T=1024, classes=110, sentences=3), step_gflop=453.0, peak_table_key='H200',
                   fp32=step(0.2, 9.5), bf16={**step(0.1, 6.0), 'mfu': 0.0046},
                   bf16_compile={**step(0.08, 5.5), 'compile_and_first_step_s': 41.0}, speedup_bf16_vs_fp32=2.0,
                   speedup_compile_vs_bf16=1.25),
        ablations=dict(runs=[dict(study='sampling', run='sync', mode='cotrain', queries=113, s=0.11, peak_gib=6.1),
                             dict(study='loss weights', run='3-1', mode='cotrain', queries=113, s=0.12, peak_gib=6.2)]),
        extract=dict(error='RuntimeError: no open_clip'), ddp=dict(skipped='budget: 430 s > 420 s')))
    (tmp_path / 'gpu-dry-run-2026-12-03.json').write_text(json.dumps({**run_, 'dry_run': True, 'date': '2026-12-03T00:00:00Z'}))
    assert describe('steps', tmp_path) == NO_RUN                   # only a dry run so far
    (tmp_path / 'gpu-NVIDIA_H200-2026-12-02.json').write_text(json.dumps(run_))
    s = describe('steps', tmp_path)
    assert s.startswith('NVIDIA H200 (2026-12-02, torch 2.14.1): training step at batch 2, T 1024, 110 classes + 3 sentences (453 GFLOP)')
    assert 'fp32 0.200 s, bf16 0.100 s (2.00x)' in s and 'peak memory 9.5 GiB / 6.0 GiB / 5.5 GiB' in s and 'MFU 0.5%' in s
    a = describe('ablations', tmp_path, study='sampling')
    assert 'sync (cotrain, 113 queries) 0.110 s, 6.1 GiB' in a and '3-1' not in a
    assert describe('extract', tmp_path).endswith('extract failed: RuntimeError: no open_clip')
    assert describe('ddp', tmp_path).endswith('ddp skipped (budget: 430 s > 420 s)')


def test_device_peak_table():
    sys.path.insert(0, str(B))
    from gpu_run import device_peak
    assert device_peak('NVIDIA H200')[1]['bf16'] == 989.4
    assert device_peak('NVIDIA H100 80GB HBM3')[0] == 'H100'
    assert device_peak('NVIDIA H100 PCIe')[0] == 'H100 PCIe' and device_peak('Some other GPU') == (None, None)


def test_efficiency_quick():
    r = json.loads(run(sys.executable, B / 'efficiency.py', '--quick', '--json', '--repeat', '1', '--threads', '1').stdout)
    for k in ('step_gflop', 'limit_gflops', 'step_s', 'step_fraction', 'parts', 'op_classes', 'roofline', 'configs'):
        assert k in r, k
    assert abs(r['step_fraction'] - r['step_gflop'] / r['step_s'] / r['limit_gflops']) < 1e-12
    assert set(r['parts']) == {'embedding', 'convnext_stem_and_stages', 'bifpn', 'heads', 'loss_and_assignment', 'decode'}
    assert r['step_gflop_torch_formula'] > r['step_gflop'] > 0     # torch's formula counts depthwise backward as dense
    assert r['depthwise_layouts']['max_abs_diff'] < 1e-4 and r['depthwise_layouts']['shift_check'] < 1e-5
    assert r['roofline']['depthwise_k3']['flop_per_byte'] < 1 < r['roofline']['pointwise_1x4']['flop_per_byte']
    assert r['flop_scaling_check']['rel_err'] < 1e-9                # FLOPs are affine in T: two counts extrapolate exactly
    assert r['depthwise_channels_last_step']['grad_rel_err'] < 1e-5  # the layout experiment computes the same step


def test_grouped_conv_backward_flops():
    sys.path.insert(0, str(B))
    import torch
    from efficiency import count, fwd_bwd
    x = torch.randn(2, 64, 50, requires_grad=True)
    dw, dense = torch.nn.Conv1d(64, 64, 3, padding=1, groups=64), torch.nn.Conv1d(64, 64, 3, padding=1)
    assert count(fwd_bwd(dw, x)) == 3 * 2 * (2 * 64 * 50 * 3)      # forward + input grad + weight grad
    assert count(fwd_bwd(dense, x)) == count(fwd_bwd(dense, x), torch_formula=True) == 3 * 2 * (2 * 64 * 50 * 3 * 64)


def test_long_video_quick():
    r = json.loads(run(sys.executable, B / 'long_video.py', '--quick', '--json', '--threads', '1').stdout)
    assert [x['minutes'] for x in r['rows']] == [1, 2, 4, 8]
    assert [x['steps'] for x in r['rows']] == [112, 225, 450, 900]   # 16 frames at 30 fps per step
    assert all(x['queries'] == 8 + 20 and x['rows'] > 0 for x in r['rows'])
    assert r['rows'][-1]['windows'] > r['rows'][0]['windows'] and set(r['fit']) >= {'total_s', 'detect_s'}
