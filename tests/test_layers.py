"""The house has layers, from the ground up: core; data and metrics; the model; run (config, checkpoint, splits); fit
(sampler, trainer); use (predictor, app, extract, official, pretrained, dataset, formats, check, demo, studies); the CLI.
A room imports its own layer and those below, at the top of the module or inside a function alike, and the import
graph has no circle."""
import ast
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parent.parent / 'unimd'

LAYERS = [
    ('core', {'core'}),
    ('data and metrics', {'data', 'interchange', 'features', 'synthetic', 'released', 'stats', 'evaluate', 'evaluate_cli'}),
    ('model', {'text', 'vision', 'heads', 'assign', 'losses', 'decode', 'model'}),
    ('run', {'config', 'checkpoint', 'splits', 'hub_format'}),
    ('fit', {'sampler', 'train'}),
    ('use', {'predictor', 'app', 'extract', 'official', 'official_model', 'official_train', 'pretrained', 'dataset', 'formats', 'check',
             'demo', 'ablation', 'at_work'}),
    ('cli', {'cli'}),
]
LEVEL = {m: i for i, (_, ms) in enumerate(LAYERS) for m in ms}
NAME = {i: n for i, (n, _) in enumerate(LAYERS)}
# the house's own rules beyond the levels (issue 20): the model reads no data room, the metrics write no submission
# (the query embeddings of released files reach the model as a text source the caller hands in)
MODEL, DATA = LAYERS[2][1], LAYERS[1][1]
FORBIDDEN = {(m, d) for m in MODEL for d in DATA} | {('evaluate_cli', 'formats'), ('evaluate', 'formats')}


def modules():
    return sorted(p.stem for p in PKG.glob('*.py') if not p.stem.startswith('_'))


def imports_of(name) -> set:
    "Every unimd room `name` imports, at the top or inside a function (`from .x`, `from unimd.x`, `import unimd.x`)."
    tree = ast.parse((PKG / f'{name}.py').read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level == 1: out.add(mod.split('.')[0] if mod else None)
            elif mod.startswith('unimd.'): out.add(mod.split('.')[1])
            elif mod == 'unimd': out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name.split('.')[1] for a in node.names if a.name.startswith('unimd.'))
    return {m for m in out if m and m in set(modules())} - {name}


GRAPH = {m: imports_of(m) for m in modules()}


def test_every_room_has_a_layer():
    missing = [m for m in modules() if m not in LEVEL]
    assert not missing, f"put these modules in a layer of tests/test_layers.py: {missing}"


@pytest.mark.parametrize('name', modules())
def test_a_room_imports_only_its_layer_and_below(name):
    if name not in LEVEL: pytest.skip('no layer (see test_every_room_has_a_layer)')
    up = sorted(f"{d} ({NAME[LEVEL[d]]})" for d in GRAPH[name] if d in LEVEL and LEVEL[d] > LEVEL[name])
    assert not up, f"unimd.{name} ({NAME[LEVEL[name]]}) imports rooms above it: {up}"
    back = sorted(d for d in GRAPH[name] if (name, d) in FORBIDDEN)
    assert not back, f"unimd.{name} imports {back}: a back door the house forbids"


def test_the_import_graph_has_no_circle():
    state, path = {}, []
    def visit(m):
        state[m] = 1; path.append(m)
        for d in sorted(GRAPH[m]):
            if state.get(d) == 1: raise AssertionError(f"import circle: {' -> '.join(path[path.index(d):] + [d])}")
            if d not in state: visit(d)
        state[m] = 2; path.pop()
    for m in modules():
        if m not in state: visit(m)


def test_the_checker_sees_lazy_imports(tmp_path, monkeypatch):
    "The rule covers imports inside functions: a checker that read only the top of a module could not fail here."
    src = "from .core import UniMDError\ndef f():\n    from unimd.train import train\n    import unimd.cli\n"
    monkeypatch.setattr(__import__(__name__), 'PKG', tmp_path)
    for m in ('core', 'train', 'cli'): (tmp_path / f'{m}.py').write_text('')
    (tmp_path / 'model.py').write_text(src)
    assert imports_of('model') == {'core', 'train', 'cli'}
