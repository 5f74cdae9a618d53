"Project-level checks: the README's commands are the ones CI runs, and the CLI is installed."
import re, subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_readme_test_command_is_what_ci_runs():
    readme, ci = (ROOT / 'README.md').read_text(), (ROOT / '.ci' / 'run').read_text()
    assert 'pip install -e ".[dev]" && bash tests/run_all.sh' in readme
    assert 'pip install -q -e ".[dev]"' in ci and 'bash tests/run_all.sh' in ci

def test_cli_lists_commands():
    out = subprocess.run(['unimd', '--help'], capture_output=True, text=True)
    assert out.returncode == 0 and 'evaluate' in out.stdout and 'demo' in out.stdout

def test_no_restricted_annotations_in_repo():
    "Charades and Ego4D forbid redistribution: none of their files may be committed."
    files = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True).stdout.split()
    bad = [f for f in files if re.search(r'Charades_v1|charades_sta_|clip_annotations|nlq_val', f)]
    assert bad == []
