"""Run every notebook as `nbdev_test` does, but each in a fresh process (as in a fresh kernel); `--skip data` also
leaves out the cells marked `#| data` (the checks that read the real annotation files), `--skip official` the cells
marked `#| official` (those that read the official-code fixtures), for a clone without them.
A failing notebook's traceback is printed when it fails; at the end, one line per failing notebook names the notebook,
the cell (numbered as nbdev's 'While Executing Cell #N') and the error message (`--summary FILE` also writes those lines to FILE, for tests/run_all.sh to print
them again after pytest). Exit 1 if any failed.

    python tests/run_notebooks.py [--skip data official] [--n_workers 2] [--path nbs/X.ipynb] [--summary FILE]
"""
import os, warnings
# nbdev imports the deprecated pkg_resources: one warning per worker process (39 of them) buried the failures.
# PYTHONWARNINGS reaches the forkserver workers (new interpreters); filterwarnings this process.
_QUIET = 'ignore:pkg_resources is deprecated'
os.environ['PYTHONWARNINGS'] = ','.join(w for w in (os.environ.get('PYTHONWARNINGS'), _QUIET) if w)
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
import argparse, multiprocessing, re, sys, time, traceback
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from nbdev.config import get_config
from nbdev.doclinks import nbglob
from nbdev.frontmatter import FrontmatterProc
from nbdev.process import NBProcessor, nb_lang
from execnb.shell import CaptureShell
from fastcore.basics import str2bool
from fastcore.xtras import working_directory

MAX_MSG = 300   # characters of the error message in a summary line


def _first_line(text, n=MAX_MSG):
    "The non-empty lines of `text` joined by ' | ' (test_eq's message is '==:', then each side), cut to `n` characters."
    line = ' | '.join(l.strip() for l in str(text).splitlines() if l.strip())
    return line if len(line) <= n else line[:n - 3] + '...'


def run_nb(fn, skip_flags=(), basepath=None):
    """`nbdev.test.test_nb` (same cells skipped, same shell), returning (ok, seconds, summary): summary names the
    failing cell (its number and first code line) and the error's type and message."""
    if basepath: sys.path.insert(0, str(basepath))
    os.environ['IN_TEST'] = '1'
    flags = set(skip_flags)
    start = time.time()
    k = None
    try:
        nb = NBProcessor(fn, procs=FrontmatterProc, process=True).nb
        fm = getattr(nb, 'frontmatter_', {})
        if str2bool(fm.get('skip_exec', False)) or nb_lang(nb) != 'python': return True, 0., ''

        def _no_eval(cell):
            if cell.cell_type != 'code': return True
            if 'nbdev_export' + '(' in cell.source: return True
            direc = getattr(cell, 'directives_', {}) or {}
            if direc.get('eval:', [''])[0].lower() == 'false': return True
            return flags & direc.keys()

        k = CaptureShell(fn)
        with working_directory(fn.parent): k.run_all(nb, exc_stop=True, preproc=_no_eval)
        return True, time.time() - start, ''
    except BaseException as e:
        if k is not None and k.exc:
            sys.stderr.write(k.prettytb(fname=fn) + '\n')
            exc, idx = k.exc[1], (k._cell_idx or 1) - 1
            # the failing line: the first "---->" line of the traceback, ANSI colours removed (numbered as nbdev runs the
            # cell: without its #| lines)
            tb = re.sub(r'\x1b\[[0-9;]*m', '', str(k.exc[-1]))
            at = re.search(r'^-+> *(\d+) (.*)$', tb, re.M)
            src = [l for l in nb.cells[idx].source.splitlines() if l.strip() and not l.startswith('#|')]
            where = (f'cell #{idx + 1} line {at[1]} ({_first_line(at[2], 80)})' if at else
                     f'cell #{idx + 1} ({_first_line(src[0] if src else "", 80)})')
        else:
            sys.stderr.write(f'{fn}:\n{traceback.format_exc()}\n')
            exc, where = e, 'reading it'
        msg = f'{type(exc).__name__}: {_first_line(exc)}' if _first_line(exc) else type(exc).__name__
        return False, time.time() - start, f'notebook failed: {fn.name}: {where}: {msg}'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--skip', nargs='*', default=[], help="cell flags to skip besides settings.ini's tst_flags (data, official)")
    p.add_argument('--n_workers', type=int, default=2)
    p.add_argument('--path', default=None, help='a notebook or glob (default: every notebook)')
    p.add_argument('--summary', default=None, help='also write the failure lines to this file (empty when all pass)')
    a = p.parse_args(argv)
    cfg = get_config()
    files = sorted(f.absolute() for f in nbglob(a.path, as_path=True))
    if not files: print('run_notebooks: no notebooks found', file=sys.stderr); return 1
    skip = cfg.tst_flags.split() + a.skip
    # each notebook in a fresh process, as in a fresh Jupyter kernel: none sees another's imports or state
    run = partial(run_nb, skip_flags=skip, basepath=cfg.config_path)
    with ProcessPoolExecutor(max(1, min(a.n_workers, len(files))), multiprocessing.get_context('forkserver'),
                             max_tasks_per_child=1) as pool:
        results = list(pool.map(run, files))
    failed = [s for ok, _, s in results if not ok]
    if a.summary: Path(a.summary).write_text(''.join(s + '\n' for s in failed))
    sys.stdout.flush()
    for s in failed: print(s, file=sys.stderr, flush=True)
    print(f"notebooks: {len(files) - len(failed)} of {len(files)} passed" + (f" (cells marked {' '.join(a.skip)} skipped)" if a.skip else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
