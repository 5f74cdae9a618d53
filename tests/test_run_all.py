"""The test command without the annotation files or the official fixtures: their checks skip with one summary line
each; CI (UNIMD_REQUIRE_DATA=1) fails instead. Notebook failures are listed at the end of the output."""
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
                       env={**os.environ, 'UNIMD_DATA': str(tmp_path), 'UNIMD_OFFICIAL': str(fake_official(tmp_path)),
                            'UNIMD_REQUIRE_DATA': '1'})
    assert r.returncode == 1 and r.stdout.strip().splitlines() == [
        f'UNIMD_REQUIRE_DATA=1 but {tmp_path} lacks: charades charades_sta anet anet_captions ego4d qvhighlights '
        '(data/README.md says where to get each one)']


def fake_official(tmp_path):
    "A folder that passes the presence check of the official fixtures (run_all.sh and conftest look for this file)."
    (tmp_path / 'off' / 'ego4d_small').mkdir(parents=True)
    (tmp_path / 'off' / 'ego4d_small' / 'checkpoint.pth.tar').write_bytes(b'')
    return tmp_path / 'off'


def fake_data(tmp_path):
    for d in 'charades charades_sta anet anet_captions ego4d qvhighlights'.split(): (tmp_path / 'data' / d).mkdir(parents=True)
    return tmp_path / 'data'


def test_run_all_in_ci_refuses_a_missing_official_folder(tmp_path):
    r = subprocess.run(['bash', str(ROOT / 'tests' / 'run_all.sh')], capture_output=True, text=True, timeout=60,
                       env={**os.environ, 'UNIMD_DATA': str(fake_data(tmp_path)), 'UNIMD_OFFICIAL': str(tmp_path / 'none'),
                            'UNIMD_REQUIRE_DATA': '1'})
    assert r.returncode == 1 and r.stdout.strip().splitlines() == [
        f'UNIMD_REQUIRE_DATA=1 but the official fixtures are not in {tmp_path / "none"} '
        '(set UNIMD_OFFICIAL to the folder of ego4d_small/ and names_shapes/)']


OFFICIAL_SUITE = '''import pytest
pytestmark = pytest.mark.official
def test_marked(): assert 1 + 1 == 2
'''
OFFICIAL_FIXTURE_SUITE = '''import pytest
def test_takes_the_folder(official_dir): assert (official_dir / 'ego4d_small' / 'checkpoint.pth.tar').is_file()
def test_runs(): assert 2 + 2 == 4
'''


def run_official_suite(tmp_path, official, **env):
    shutil.copy(ROOT / 'tests' / 'conftest.py', tmp_path)
    (tmp_path / 'test_marked.py').write_text(OFFICIAL_SUITE)
    (tmp_path / 'test_fixture.py').write_text(OFFICIAL_FIXTURE_SUITE)
    env = {**{k: v for k, v in os.environ.items() if k != 'UNIMD_REQUIRE_DATA'}, 'UNIMD_OFFICIAL': str(official), **env}
    r = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', str(tmp_path)], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout


def test_official_marker_and_fixture_skip_with_one_summary_line(tmp_path):
    rc, out = run_official_suite(tmp_path, tmp_path / 'none')
    assert rc == 0 and '1 passed, 2 skipped' in out, out
    lines = [l for l in out.splitlines() if 'official fixtures' in l]
    assert lines == [f'2 tests need the official fixtures in {tmp_path / "none"}: skipped '
                     '(set UNIMD_OFFICIAL to the folder of ego4d_small/ and names_shapes/)'], out


def test_official_marker_and_fixture_run_when_the_folder_is_there(tmp_path):
    rc, out = run_official_suite(tmp_path, fake_official(tmp_path))
    assert rc == 0 and '3 passed' in out and 'official fixtures' not in out, out


def test_ci_fails_when_official_checks_skip(tmp_path):
    rc, out = run_official_suite(tmp_path, tmp_path / 'none', UNIMD_REQUIRE_DATA='1')
    assert rc == 1 and '2 tests need the official fixtures' in out and 'FAILED: UNIMD_REQUIRE_DATA=1 needs them' in out


def test_a_module_level_official_skip_counts(tmp_path):
    "A whole file that skips at import (as tests/test_official.py does) is one such skip, and fails CI."
    shutil.copy(ROOT / 'tests' / 'conftest.py', tmp_path)
    (tmp_path / 'test_module.py').write_text("import pytest\npytest.skip('official fixtures missing: x', allow_module_level=True)\n"
                                             "def test_never(): assert False\n")
    (tmp_path / 'test_other.py').write_text('def test_runs(): assert 3 * 3 == 9\n')
    env = {**os.environ, 'UNIMD_OFFICIAL': str(tmp_path / 'none'), 'UNIMD_REQUIRE_DATA': '1'}
    r = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', str(tmp_path)], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and '1 tests need the official fixtures' in r.stdout, r.stdout


def fake_tools(tmp_path, nb_fails):
    """A bin folder whose `python` stands for tests/run_notebooks.py (it records its arguments, and when `nb_fails`
    writes one failure line to --summary and exits 1) and whose `pytest` prints a line: run_all.sh's own logic, fast."""
    bin = tmp_path / 'bin'; bin.mkdir()
    (bin / 'python').write_text('#!/usr/bin/env bash\necho "$@" > "$(dirname "$0")/args"\n'
                                'while [ $# -gt 0 ]; do [ "$1" = --summary ] && s=$2; shift; done\n'
                                + ('echo "notebook failed: 99_x.ipynb: cell #3 (assert y): AssertionError: y" > "$s"; exit 1\n' if nb_fails else ': > "$s"\n'))
    (bin / 'pytest').write_text('#!/usr/bin/env bash\necho "pytest ran"\n')
    for f in bin.iterdir(): f.chmod(0o755)
    return bin


def run_all_faked(tmp_path, nb_fails, **env):
    bin = fake_tools(tmp_path, nb_fails)
    env = {**{k: v for k, v in os.environ.items() if k != 'UNIMD_REQUIRE_DATA'}, 'PATH': f'{bin}:{os.environ["PATH"]}', **env}
    r = subprocess.run(['bash', str(ROOT / 'tests' / 'run_all.sh')], capture_output=True, text=True, timeout=60, env=env)
    return r, (bin / 'args').read_text().split()


def test_run_all_without_the_official_folder_skips_its_cells_with_one_line(tmp_path):
    r, args = run_all_faked(tmp_path, False, UNIMD_DATA=str(fake_data(tmp_path)), UNIMD_OFFICIAL=str(tmp_path / 'none'))
    assert r.returncode == 0 and args[-2:] == ['--skip', 'official'], (r.stdout, args)
    assert r.stdout.splitlines() == [f'the official fixtures are not in {tmp_path / "none"}: the checks that read them skip '
                                     '(set UNIMD_OFFICIAL to the folder of ego4d_small/ and names_shapes/)',
                                     'pytest ran', 'all tests passed']


def test_run_all_with_both_folders_skips_nothing(tmp_path):
    r, args = run_all_faked(tmp_path, False, UNIMD_DATA=str(fake_data(tmp_path)), UNIMD_OFFICIAL=str(fake_official(tmp_path)))
    assert r.returncode == 0 and '--skip' not in args and r.stdout.splitlines() == ['pytest ran', 'all tests passed']


def test_run_all_lists_notebook_failures_at_the_end(tmp_path):
    "The failing notebook, cell and message are the last lines, after pytest's output, where they are seen."
    r, args = run_all_faked(tmp_path, True, UNIMD_DATA=str(tmp_path / 'nodata'), UNIMD_OFFICIAL=str(tmp_path / 'none'))
    assert r.returncode == 1 and args[-3:] == ['--skip', 'data', 'official']
    assert r.stdout.splitlines()[-3:] == ['pytest ran', 'some notebooks failed:',
                                          'notebook failed: 99_x.ipynb: cell #3 (assert y): AssertionError: y']


def test_run_notebooks_skips_official_cells_and_names_the_failing_cell(tmp_path):
    "The real runner: an `#| official` cell is left out under --skip official; a failure names notebook, cell, line and message."
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell('# t'), nbformat.v4.new_code_cell('x = 1'),
                nbformat.v4.new_code_cell('#| official\nraise RuntimeError("the official cell ran")'),
                nbformat.v4.new_code_cell('#| hide\ny = x + 1\nassert x == 2, f"x is {x}"')]
    nbformat.write(nb, tmp_path / 'zz_t.ipynb')

    def run(*skip):
        r = subprocess.run([sys.executable, str(ROOT / 'tests' / 'run_notebooks.py'), '--n_workers', '1', '--path',
                            str(tmp_path / 'zz_t.ipynb'), '--summary', str(tmp_path / 'sum'), *(['--skip', *skip] if skip else [])],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
        return r, (tmp_path / 'sum').read_text()
    r, summary = run()
    assert r.returncode == 1 and summary == 'notebook failed: zz_t.ipynb: cell #3 line 1 (raise RuntimeError("the official cell ran")): RuntimeError: the official cell ran\n'
    assert r.stderr.rstrip().endswith(summary.rstrip()) and 'pkg_resources' not in r.stderr, r.stderr
    r, summary = run('official')
    assert r.returncode == 1 and summary == 'notebook failed: zz_t.ipynb: cell #4 line 2 (assert x == 2, f"x is {x}"): AssertionError: x is 1\n'
    assert r.stdout.strip() == 'notebooks: 0 of 1 passed (cells marked official skipped)'
