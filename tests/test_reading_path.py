"""The reading path (issue 18): index.ipynb opens with the core path, the paper's story in order, then the reference.

A reader who follows the core path must reach the first model notebook (10_text) after at most 4,000 words of prose:
index's opening (everything above its `## Reference` heading) plus the markdown cells of every core notebook listed
before 10_text. `python tests/test_reading_path.py` prints the count per notebook."""
import json, re, sys
from pathlib import Path

NBS = Path(__file__).resolve().parent.parent / 'nbs'
FIRST_MODEL, BUDGET = '10_text', 4000
# listed in index by issue 18 and being written by other helpers; delete a name once its notebook is merged
PENDING = set()


def words(text: str) -> int:
    "Words of prose: whitespace-separated tokens with a letter or digit (table rules, pipes and lone symbols are not)."
    return sum(bool(re.search(r'[A-Za-z0-9]', t)) for t in text.split())


def markdown(path) -> list:
    "The markdown cells' texts of a notebook, in order."
    return [''.join(c['source']) for c in json.loads(Path(path).read_text())['cells'] if c['cell_type'] == 'markdown']


def index_parts(path=NBS / 'index.ipynb') -> tuple:
    "(opening text, core notebooks in order, reference notebooks): the opening ends at the `## Reference` heading."
    text = '\n\n'.join(markdown(path))
    m = re.search(r'^## Reference\b', text, re.M)
    assert m, 'index.ipynb has no "## Reference" heading after its core path'
    opening, rest = text[:m.start()], text[m.start():]
    nbs = lambda s: re.findall(r'^\|[^\n]*?\]\((\w+)\.ipynb\)', s, re.M)    # the first link of each table row
    return opening, nbs(opening), nbs(rest.split('\n## ', 1)[0])                # the reference ends at the next heading


def reading_words(nbs_dir=NBS) -> dict:
    "{part: words} along the core path up to the first model notebook: index's opening, then each core notebook."
    opening, core, _ = index_parts(nbs_dir / 'index.ipynb')
    assert FIRST_MODEL in core, f'the core path in index.ipynb does not list {FIRST_MODEL}'
    out = {'index (opening)': words(opening)}
    for name in core[:core.index(FIRST_MODEL)]: out[name] = sum(words(t) for t in markdown(nbs_dir / f'{name}.ipynb'))
    return out


def test_words_counts_prose_not_table_rules():
    assert words('| a | b |\n|---|---|\n| `x` | $\\frac12$ |') == 4
    assert words('## Two tasks, one question\n\n- TAD finds (1)') == 7


def test_index_parts_on_a_built_index(tmp_path):
    cell = lambda s: {'cell_type': 'markdown', 'source': s, 'metadata': {}}
    (tmp_path / 'index.ipynb').write_text(json.dumps({'cells': [
        cell('# t\n\nsome words here\n\n| | nb |\n|---|---|\n| 1 | [00_a](00_a.ipynb) |\n| 2 | [10_text](10_text.ipynb) |'),
        cell('## Reference\n\n| nb | what |\n|---|---|\n| [01_r](01_r.ipynb) | the [00_a](00_a.ipynb) readers |\n\n## Install\n\n[x](zz.ipynb)')]}))
    (tmp_path / '00_a.ipynb').write_text(json.dumps({'cells': [cell('one two three'), {'cell_type': 'code', 'source': 'x = 1'}]}))
    opening, core, ref = index_parts(tmp_path / 'index.ipynb')
    assert (core, ref) == (['00_a', '10_text'], ['01_r'])
    assert reading_words(tmp_path) == {'index (opening)': words(opening), '00_a': 3}


def test_core_path_to_the_first_model_notebook_is_at_most_4000_words():
    got = reading_words()
    assert list(got)[1:4] == ['00_core', '02_synthetic', '05_evaluate'], got
    assert sum(got.values()) <= BUDGET, f'{sum(got.values())} words before {FIRST_MODEL} (budget {BUDGET}): {got}'


def test_every_notebook_is_in_exactly_one_table_and_every_row_exists():
    _, core, ref = index_parts()
    listed = core + ref
    assert len(listed) == len(set(listed)), [n for n in listed if listed.count(n) > 1]
    on_disk = {p.stem for p in NBS.glob('*.ipynb')} - {'index'}
    assert on_disk - set(listed) == set(), f'notebooks missing from index tables: {sorted(on_disk - set(listed))}'
    assert set(listed) - on_disk <= PENDING, f'index lists notebooks that do not exist: {sorted(set(listed) - on_disk - PENDING)}'


if __name__ == '__main__':
    got = reading_words()
    for k, v in got.items(): print(f'{k:20} {v:5}')
    print(f"{'total':20} {sum(got.values()):5} (budget {BUDGET}, before {FIRST_MODEL})")
    sys.exit(0)
