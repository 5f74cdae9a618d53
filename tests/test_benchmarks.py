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
