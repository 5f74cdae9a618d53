"""Run every notebook as `nbdev_test` does, but each in a fresh process (as in a fresh kernel); `--skip data` also
leaves out the cells marked `#| data` (the checks that read the real annotation files), for a clone without them.
Prints one line per failing notebook; exit 1 if any failed.

    python tests/run_notebooks.py [--skip data] [--n_workers 2] [--path nbs/X.ipynb]
"""
import argparse, multiprocessing, sys
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from nbdev.config import get_config
from nbdev.doclinks import nbglob
from nbdev.test import test_nb


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--skip', nargs='*', default=[], help="cell flags to skip besides settings.ini's tst_flags (e.g. data)")
    p.add_argument('--n_workers', type=int, default=2)
    p.add_argument('--path', default=None, help='a notebook or glob (default: every notebook)')
    a = p.parse_args(argv)
    cfg = get_config()
    files = sorted(f.absolute() for f in nbglob(a.path, as_path=True))
    if not files: print('run_notebooks: no notebooks found', file=sys.stderr); return 1
    skip = cfg.tst_flags.split() + a.skip
    # each notebook in a fresh process, as in a fresh Jupyter kernel: none sees another's imports or state
    run = partial(test_nb, skip_flags=skip, basepath=cfg.config_path)
    with ProcessPoolExecutor(max(1, min(a.n_workers, len(files))), multiprocessing.get_context('forkserver'),
                             max_tasks_per_child=1) as pool:
        results = list(pool.map(run, files))
    failed = [f.name for (ok, _), f in zip(results, files) if not ok]
    for name in failed: print(f'notebook failed: {name}', file=sys.stderr)
    print(f"notebooks: {len(files) - len(failed)} of {len(files)} passed" + (f" (cells marked {' '.join(a.skip)} skipped)" if a.skip else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
