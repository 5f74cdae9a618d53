"""Shared by every test file. A test that needs the real annotation files skips with a reason that says 'annotation';
with UNIMD_REQUIRE_DATA=1 (CI, where the files are present) such a skip fails the run instead."""
import os
import pytest

_data_skips = []


def _is_data_skip(report):
    return report.skipped and 'annotation' in str(report.longrepr).lower()


def pytest_runtest_logreport(report):
    if _is_data_skip(report): _data_skips.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _data_skips and os.environ.get('UNIMD_REQUIRE_DATA') == '1':
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if not _data_skips: return
    root = os.environ.get('UNIMD_DATA', '../shared/data')
    verdict = 'FAILED: UNIMD_REQUIRE_DATA=1 needs them' if os.environ.get('UNIMD_REQUIRE_DATA') == '1' else 'skipped'
    terminalreporter.write_line(f'{len(_data_skips)} tests need the annotation files in {root}: {verdict} '
                                f'(data/README.md says where to get each one)')
