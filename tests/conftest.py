"""Shared by every test file. Two kinds of input are not part of the repository, and the tests that read them skip
(with one summary line for each kind) where they are missing:
- the real annotation files ($UNIMD_DATA, else ../shared/data): such a test skips with a reason that says 'annotation';
- the official-code fixtures ($UNIMD_OFFICIAL, else ../shared/official): mark the test `@pytest.mark.official`, or
  take the `official_dir` fixture (the folder's Path), and it skips with a reason that says 'official fixtures'.
With UNIMD_REQUIRE_DATA=1 (CI, where both are present) any such skip fails the run instead."""
import os
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
_skips = {'data': [], 'official': []}


def official_path() -> Path:
    "Where the official fixtures are looked for: $UNIMD_OFFICIAL, else ../shared/official beside the repository (as unimd.official)."
    return Path(os.environ.get('UNIMD_OFFICIAL') or ROOT.parent / 'shared' / 'official')


def official_missing():
    "None when the official fixtures are there, else the skip reason."
    p = official_path()
    if (p / 'ego4d_small' / 'checkpoint.pth.tar').is_file(): return None
    return f'needs the official fixtures in {p} (set UNIMD_OFFICIAL to the folder of ego4d_small/ and names_shapes/)'


@pytest.fixture(scope='session')
def official_dir() -> Path:
    "The official fixtures folder; the test skips (or fails under UNIMD_REQUIRE_DATA=1) where it is missing."
    reason = official_missing()
    if reason: pytest.skip(reason)
    return official_path()


def pytest_configure(config):
    config.addinivalue_line('markers', 'official: reads the official-code fixtures ($UNIMD_OFFICIAL); skips where they are missing')


def pytest_runtest_setup(item):
    if item.get_closest_marker('official'):
        reason = official_missing()
        if reason: pytest.skip(reason)


def _kind(report):
    "'data', 'official' or None: which missing input a skipped test report is about."
    if not report.skipped: return None
    text = str(report.longrepr).lower()
    if 'official fixture' in text: return 'official'
    if 'annotation' in text: return 'data'
    return None


def pytest_runtest_logreport(report):
    kind = _kind(report)
    if kind and report.nodeid not in _skips[kind]: _skips[kind].append(report.nodeid)


def pytest_collectreport(report):
    # a module-level pytest.skip(...) (e.g. the whole file needs the fixtures) is a skipped collection report
    kind = _kind(report)
    if kind: _skips[kind].append(report.nodeid)


def _required(): return os.environ.get('UNIMD_REQUIRE_DATA') == '1'


def pytest_sessionfinish(session, exitstatus):
    if (_skips['data'] or _skips['official']) and _required():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    verdict = 'FAILED: UNIMD_REQUIRE_DATA=1 needs them' if _required() else 'skipped'
    if _skips['data']:
        root = os.environ.get('UNIMD_DATA', '../shared/data')
        terminalreporter.write_line(f"{len(_skips['data'])} tests need the annotation files in {root}: {verdict} "
                                    f'(data/README.md says where to get each one)')
    if _skips['official']:
        terminalreporter.write_line(f"{len(_skips['official'])} tests need the official fixtures in {official_path()}: {verdict} "
                                    f'(set UNIMD_OFFICIAL to the folder of ego4d_small/ and names_shapes/)')
