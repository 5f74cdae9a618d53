"""What every bad-input test asserts of a `unimd` command: exit 2 (or the code given), one line on stderr, no traceback."""
from pathlib import Path
from unimd.cli import main


def fails(capsys, argv, *words, code=2):
    "Run `unimd argv` here; assert the exit code and one stderr line holding every word -> that line."
    capsys.readouterr()
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'Traceback' not in err, err
    for w in words: assert w in err, (w, err)
    return err


def files_in(folder):
    "Every file below `folder`, relative, sorted ([] if it does not exist): what a failed command left behind."
    return sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob('*') if p.is_file()) if Path(folder).exists() else []
