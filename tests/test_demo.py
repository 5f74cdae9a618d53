"""`unimd demo` on a tiny synthetic world: its own result files, what made them, reuse, the same table twice, and the
commands its last lines print (predict, evaluate, app) run as printed."""
import io, json, os, shlex, signal, socket, subprocess, sys, time, urllib.request
from contextlib import redirect_stdout
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from unimd.cli import main
from unimd.demo import cli_demo, demo_config, CHANCE
from unimd.config import update_config

TINY = update_config(demo_config(quick=True), {'data': {'synthetic': dict(n_train=24, n_test=8, n_classes=6)},
                                               'train': dict(warmup_epochs=1, epochs=1)})


def run(argv, cfg=TINY):
    "cli_demo in this process -> (exit code, stdout lines)."
    with redirect_stdout(io.StringIO()) as out: rc = cli_demo(argv, cfg=cfg)
    return rc, out.getvalue().splitlines()


def table(csv):
    return pd.read_csv(csv, comment='#', index_col=0)


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    "One tiny demo run (quick): its folder and printed lines."
    out = tmp_path_factory.mktemp('demo')
    rc, lines = run(['--quick', '--out', str(out), '--no-progress'])
    assert rc == 0
    return out, lines


def test_quick_has_its_own_files_saying_what_made_them(demo):
    out, lines = demo
    assert (out / 'demo_results_quick.csv').is_file() and (out / 'demo_results_quick.png').is_file()
    assert not (out / 'demo_results.csv').exists()                 # the full run's table is never overwritten
    notes = [l for l in (out / 'demo_results_quick.csv').read_text().splitlines() if l.startswith('#')]
    assert notes[1].startswith('# made by: unimd demo --quick (unimd ') and 'CPU thread' in notes[1]
    assert notes[2].startswith('# world: 24 train / 8 test synthetic videos') and notes[3] == '# runs: all trained by this command'
    assert list(table(out / 'demo_results_quick.csv').index)[0] == CHANCE


def test_rerun_says_reused_and_gives_the_same_table(demo, tmp_path):
    out, _ = demo
    first = (out / 'demo_results_quick.csv').read_text()
    rc, lines = run(['--quick', '--out', str(out), '--no-progress'])
    assert rc == 0 and sum('reused the finished run' in l for l in lines) == 3
    assert not any('trained and evaluated in' in l for l in lines)
    again = (out / 'demo_results_quick.csv').read_text()
    assert '# runs: reused from an earlier demo' in again
    pd.testing.assert_frame_equal(table(out / 'demo_results_quick.csv'), pd.read_csv(io.StringIO(first), comment='#', index_col=0))
    rc, _ = run(['--quick', '--out', str(tmp_path), '--no-progress'])      # trained afresh elsewhere: the same numbers
    pd.testing.assert_frame_equal(table(tmp_path / 'demo_results_quick.csv'), table(out / 'demo_results_quick.csv'))


def try_lines(lines):
    i = next(i for i, l in enumerate(lines) if l.startswith('to try next'))
    return [shlex.split(l) for l in lines[i + 1:]]


def test_it_leaves_files_to_try_and_prints_the_commands_last(demo):
    out, lines = demo
    cmds = try_lines(lines)
    assert [c[:2] for c in cmds] == [['unimd', 'predict'], ['unimd', 'evaluate'], ['unimd', 'evaluate'], ['unimd', 'app']]
    assert lines[-1] == '  ' + shlex.join(cmds[-1])
    assert sorted(p.name for p in (out / 'try').iterdir()) == ['features', 'gt_mr.jsonl', 'gt_tad.json']
    assert len(list((out / 'try' / 'features').glob('*.npy'))) == 3


def test_printed_predict_runs(demo, capsys):
    cmd = try_lines(demo[1])[0]
    assert main(cmd[1:]) == 0
    printed = capsys.readouterr().out
    assert cmd[5] in printed and cmd[7] in printed                  # both queries (a class name, a sentence) answered


def test_printed_evaluate_gives_the_tables_cotrained_row(demo, capsys):
    out, lines = demo
    row = table(out / 'demo_results_quick.csv').loc['co-trained (sync)']
    for cmd, metric, col in ((try_lines(lines)[1], 'mAP', 'TAD mAP'), (try_lines(lines)[2], 'R1@0.5', 'MR R1@0.5')):
        assert main(cmd[1:] + ['--json']) == 0
        res = json.loads(capsys.readouterr().out)
        assert abs(res[metric] - row[col]) <= 0.05 + 1e-9, (metric, res[metric], row[col])


def _app(argv, tmp):
    "Start `unimd app` in its own process with TMPDIR=tmp -> the process."
    env = {**os.environ, 'TMPDIR': str(tmp), 'OMP_NUM_THREADS': '1'}
    return subprocess.Popen(['unimd', *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_printed_app_serves_then_sigterm_cleans_up(demo, tmp_path):
    cmd = try_lines(demo[1])[3]
    p = _app(cmd[1:] + ['--port', '0'], tmp_path)
    try:
        line = p.stdout.readline()
        url = line.split(' at ')[1].split()[0]
        assert 'UniMD' in urllib.request.urlopen(url, timeout=30).read().decode()
        assert len(list(tmp_path.glob('unimd-app-*'))) == 1
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None: p.kill(); p.wait()
    assert list(tmp_path.glob('unimd-app-*')) == []                # the upload folder went with it


def test_app_on_a_busy_port_says_so_and_leaves_nothing(demo, tmp_path):
    ck = try_lines(demo[1])[3][3]
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); s.listen(1)
        p = _app(['app', '--checkpoint', ck, '--port', str(s.getsockname()[1])], tmp_path)
        _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and len(err.strip().splitlines()) == 1 and '--port' in err and 'Traceback' not in err
    assert list(tmp_path.glob('unimd-app-*')) == []


def test_clip_features_are_refused_by_the_demo_model_saying_why(demo, tmp_path, capsys):
    pytest.importorskip('av', reason='PyAV is not installed: pip install av')
    from unimd.extract import make_test_video, gray_ramp
    video = make_test_video(tmp_path / 'ramp.mkv', gray_ramp(40), fps=24)
    assert main(['extract', str(video), '--out', str(tmp_path / 'f'), '--pretrained', 'random', '--device', 'cpu',
                 '--stride', '8', '--no-progress']) == 0      # the demo model's grid: only the width differs
    ck = try_lines(demo[1])[0][2]
    capsys.readouterr()
    assert main(['predict', ck, str(tmp_path / 'f' / 'ramp.npy'), '-q', 'a class']) == 2
    err = capsys.readouterr().err
    assert 'dim=512' in err and 'dim=128' in err and "`unimd demo`'s models" in err and len(err.strip().splitlines()) == 1
