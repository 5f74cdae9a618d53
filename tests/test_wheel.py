"""The wheel installs and works outside the repository: built with `python -m build`, checked with `twine check`,
installed into a fresh virtual environment in an empty folder (no checkout near it), where `--config ego4d` is found
(configs ship as package data) and `unimd demo --quick` runs to its result files."""
import os, subprocess, sys, venv
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(cmd, cwd, timeout=900, env=None):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    pytest.importorskip('build', reason='the dev extra installs build (pip install -e ".[dev]")')
    out = tmp_path_factory.mktemp('dist')
    # --no-isolation: the build uses this environment's setuptools (no download), as a user offline would
    run([sys.executable, '-m', 'build', '--wheel', '--sdist', '--no-isolation', '--outdir', str(out), str(ROOT)], ROOT)
    wheels = sorted(out.glob('unimd-*.whl'))
    assert len(wheels) == 1, sorted(p.name for p in out.iterdir())
    return wheels[0]


def test_twine_check_passes(wheel):
    pytest.importorskip('twine', reason='the dev extra installs twine')
    dists = sorted(str(p) for p in wheel.parent.iterdir())
    out = run([sys.executable, '-m', 'twine', 'check', '--strict', *dists], wheel.parent)
    assert out.count('PASSED') == len(dists), out


def test_wheel_pins_no_exact_torch(wheel):
    import zipfile
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith('METADATA'))).decode()
        names = z.namelist()
    reqs = [l.split(':', 1)[1].strip() for l in meta.splitlines() if l.startswith('Requires-Dist:')]
    core = [r for r in reqs if 'extra ==' not in r]
    assert any(r.startswith('torch') for r in core), core
    assert not any('==' in r for r in core), f"exact pins in the core requirements: {[r for r in core if '==' in r]}"
    assert {'unimd/configs/ego4d.yaml', 'unimd/configs/synthetic.yaml'} <= set(names), [n for n in names if 'config' in n]
    assert any('extra == "app"' in r and r.startswith('gradio') for r in reqs), reqs


def test_installed_wheel_works_outside_the_repository(wheel, tmp_path):
    env_dir, work = tmp_path / 'venv', tmp_path / 'elsewhere'
    work.mkdir()
    # the system site-packages give torch and the rest (nothing is downloaded); the wheel's unimd shadows the checkout's
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    py = env_dir / 'bin' / 'python'
    run([py, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', '--ignore-installed', str(wheel)], work)
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH',)}
    env.update(HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1', MPLBACKEND='Agg')
    where = run([py, '-c', 'import unimd, unimd.config as c; print(unimd.__file__); print(c.find_config("ego4d"))'], work, env=env)
    pkg, cfg = where.split()
    assert Path(pkg).is_relative_to(env_dir), f"unimd came from {pkg}, not from the installed wheel"
    assert Path(cfg).is_relative_to(env_dir) and Path(cfg).name == 'ego4d.yaml', cfg
    # the dependencies the wheel declares are satisfied here (pip check reads the venv and the system site-packages)
    unimd = env_dir / 'bin' / 'unimd'
    run([unimd, 'demo', '--quick', '--no-progress', '--out', 'demo'], work, env=env)
    made = {p.name for p in (work / 'demo').iterdir()}
    assert 'demo_results_quick.csv' in made, sorted(made)
    assert not (work / 'configs').exists()
