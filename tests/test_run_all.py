"The test command without the annotation files: data checks skip with one summary line; CI (UNIMD_REQUIRE_DATA=1) fails instead."
import os, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = '''import pytest
def test_needs_data(): pytest.skip('needs the Charades annotations under $UNIMD_DATA')
def test_needs_gpu(): pytest.skip('needs a CUDA GPU')
def test_runs(): assert 1 + 1 == 2
'''


def run_suite(tmp_path, **env):
    "pytest on a three-test suite that uses tests/conftest.py -> (exit code, output)."
    shutil.copy(ROOT / 'tests' / 'conftest.py', tmp_path)
    (tmp_path / 'test_three.py').write_text(SUITE)
    env = {**{k: v for k, v in os.environ.items() if k != 'UNIMD_REQUIRE_DATA'}, 'UNIMD_DATA': str(tmp_path / 'none'), **env}
    r = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', str(tmp_path)], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout


def test_data_skips_are_one_summary_line(tmp_path):
    rc, out = run_suite(tmp_path)
    assert rc == 0 and '1 passed, 2 skipped' in out
    lines = [l for l in out.splitlines() if 'annotation files' in l]
    assert lines == [f'1 tests need the annotation files in {tmp_path / "none"}: skipped (data/README.md says where to get each one)']


def test_ci_fails_when_data_checks_skip(tmp_path):
    rc, out = run_suite(tmp_path, UNIMD_REQUIRE_DATA='1')
    assert rc == 1 and 'FAILED: UNIMD_REQUIRE_DATA=1 needs them' in out


def test_run_all_in_ci_refuses_a_missing_data_folder(tmp_path):
    r = subprocess.run(['bash', str(ROOT / 'tests' / 'run_all.sh')], capture_output=True, text=True, timeout=60,
                       env={**os.environ, 'UNIMD_DATA': str(tmp_path), 'UNIMD_REQUIRE_DATA': '1'})
    assert r.returncode == 1 and r.stdout.strip().splitlines() == [
        f'UNIMD_REQUIRE_DATA=1 but {tmp_path} lacks: charades charades_sta anet anet_captions ego4d qvhighlights '
        '(data/README.md says where to get each one)']
