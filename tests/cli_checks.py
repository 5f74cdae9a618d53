"""What every bad-input test asserts of a `unimd` command: exit 2 (or the code given), one line on stderr, no traceback."""
from pathlib import Path
from unimd.cli import main


def fails(capsys, argv, *words, code=2):
    "Run `unimd argv` here; assert the exit code and one stderr line holding every word -> that line."
    capsys.readouterr()
    assert main(argv) == code
    out, err = capsys.readouterr()
    err = err.strip()
    assert len(err.splitlines()) == 1 and 'Traceback' not in err, err
    assert SECRET not in out + err, 'a secret beside the input was printed'      # nothing outside the given file is read
    for w in words: assert w in err, (w, err)
    return err


SECRET = 'TOKEN=hunter2-never-print-me'


def files_in(folder):
    "Every file below `folder`, relative, sorted ([] if it does not exist): what a failed command left behind."
    return sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob('*') if p.is_file()) if Path(folder).exists() else []


def hostile_feature_files(folder, good=None):
    """Feature files that reach outside themselves or lie about their size, built in `folder`, each named v.<ext> in its
    own subfolder -> {name: (path, words the one-line refusal must hold)}. None of them may be read; SECRET lies beside them."""
    import os
    import h5py
    import numpy as np
    folder = Path(folder)
    (folder / 'secret.txt').write_text(SECRET * 40)
    good = folder / 'good.h5'
    with h5py.File(good, 'w') as f: f['v'] = np.ones((8, 4), np.float32)
    out = {}

    def made(name, ext, words):
        d = folder / name; d.mkdir()
        out[name] = (d / f'v{ext}', words)
        return d / f'v{ext}'

    with h5py.File(made('external_storage', '.h5', ('stored in external files',)), 'w') as f:
        f.create_dataset('v', shape=(40, 28), dtype='u1', external=[(str(folder / 'secret.txt'), 0, 40 * 28)])
    with h5py.File(made('dev_zero_storage', '.h5', ('stored in external files',)), 'w') as f:
        f.create_dataset('v', shape=(10 ** 6, 615), dtype='u1', external=[('/dev/zero', 0, 615 * 10 ** 6)])
    with h5py.File(made('external_link', '.h5', ('an external link',)), 'w') as f: f['v'] = h5py.ExternalLink(str(good), '/v')
    with h5py.File(made('soft_link', '.h5', ('a soft link',)), 'w') as f: f['data'] = np.ones((8, 4), np.float32); f['v'] = h5py.SoftLink('/data')
    layout = h5py.VirtualLayout(shape=(8, 4), dtype='f4'); layout[:] = h5py.VirtualSource(str(good), 'v', shape=(8, 4))
    with h5py.File(made('virtual', '.h5', ('a virtual dataset',)), 'w') as f: f.create_virtual_dataset('v', layout)
    with h5py.File(made('hollow', '.h5', ('claim shape (10000000, 512)',)), 'w') as f: f.create_dataset('v', shape=(10 ** 7, 512), dtype='f4')
    with open(made('huge_header', '.npy', ('claim shape (1000000000, 512)', '1.86 TB')), 'wb') as f:
        np.lib.format.write_array_header_1_0(f, {'descr': '<f4', 'fortran_order': False, 'shape': (10 ** 9, 512)}); f.write(bytes(64))
    os.mkfifo(made('fifo', '.npy', ('a FIFO',)))
    os.symlink('/dev/zero', made('dev_zero', '.npy', ('a character device',)))
    return out
