"`unimd evaluate` on bad input: one line naming the file and the value, exit 2, no traceback, for every case the issue lists."
import json, subprocess
from pathlib import Path
import pytest

GT = {'database': {'v1': {'subset': 'validation', 'duration': 40.0, 'annotations': [{'segment': [0, 10], 'label': 'jump'}]}}}
PRED = '{"results": {"v1": [{"segment": [0, 10], "label": "jump", "score": %s}]}}'
BIG = '1' + '0' * 400                                               # 10**400: valid JSON, beyond float range


def unimd(*args):
    return subprocess.run(['unimd', 'evaluate', *map(str, args)], capture_output=True, text=True)


def one_line_exit_2(out, *needles):
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert len(lines) == 1 and 'Traceback' not in out.stderr, out.stderr
    assert lines[0].startswith('unimd evaluate: error: ') and all(n in lines[0] for n in needles), lines[0]
    assert out.stdout == ''


@pytest.fixture
def gt(tmp_path):
    (tmp_path / 'gt.json').write_text(json.dumps(GT))
    return tmp_path / 'gt.json'


@pytest.mark.parametrize('score,needles', [
    (BIG, ["results['v1'][0].score is 100000000000... (401 digits), too large for a number"]),
    ('-' + BIG, ["score is -10000000000"]),
    ('1e400', ["results['v1'][0].score is inf, not a number"]),
    ('NaN', ["results['v1'][0].score is nan, not a number"]),
    ('Infinity', ['score is inf, not a number']),
    ('true', ['score is True, not a number']),
    ('null', ['score is None, not a number']),
    ('"0.9"', ["score is '0.9', not a number"]),
])
def test_bad_tad_score(tmp_path, gt, score, needles):
    (tmp_path / 'pred.json').write_text(PRED % score)
    one_line_exit_2(unimd('tad', '--benchmark', 'activitynet', '--gt', gt, '--pred', tmp_path / 'pred.json'), 'pred.json', *needles)


@pytest.mark.parametrize('text,needles', [
    ('{"database": {"v1": {"subset": "validation", "duration": %s, "annotations": []}}}' % BIG, ["database['v1'].duration is", 'too large']),
    ('{"database": {"v1": {"annotations": [{"segment": [0, %s], "label": "a"}]}}}' % BIG, ["annotations[0].segment[1] is", 'too large']),
    ('{"database": {"v1": {"annotations": [{"segment": [0, 1], "label": ["a"]}]}}}', ["annotations[0].label is ['a'], not a class name"]),
    ('{"database": []}', ["'database' must map video ids to videos"]),
    ('[1, 2]', ['expected an object, got [1, 2]']),
    ('', ['not valid JSON (Expecting value at line 1, column 1)']),
])
def test_bad_tad_ground_truth(tmp_path, text, needles):
    (tmp_path / 'g.json').write_text(text)
    (tmp_path / 'pred.json').write_text(PRED % '0.5')
    one_line_exit_2(unimd('tad', '--benchmark', 'ego4d', '--subset', 'all', '--gt', tmp_path / 'g.json', '--pred', tmp_path / 'pred.json'),
                    'g.json', *needles)


def test_bad_time_in_mr_prediction_and_ground_truth(tmp_path):
    (tmp_path / 'g.jsonl').write_text('{"qid": 1, "relevant_windows": [[0, 4]]}\n')
    (tmp_path / 'p.jsonl').write_text('{"qid": 1, "pred_relevant_windows": [[0, %s, 0.5]]}\n' % BIG)
    one_line_exit_2(unimd('mr', '--benchmark', 'charades-sta', '--gt', tmp_path / 'g.jsonl', '--pred', tmp_path / 'p.jsonl'),
                    'p.jsonl: line 1: pred_relevant_windows[0][1] is 100000000000... (401 digits), too large for a number')
    (tmp_path / 'g.jsonl').write_text('{"qid": 1, "relevant_windows": [[0, 4]]}\n{"qid": 2, "relevant_windows": [[NaN, 4]]}\n')
    one_line_exit_2(unimd('mr', '--benchmark', 'charades-sta', '--gt', tmp_path / 'g.jsonl', '--pred', tmp_path / 'p.jsonl'),
                    'g.jsonl: line 2: relevant_windows[0][0] is nan, not a number')


def test_subset_that_matches_no_video(gt, tmp_path):
    (tmp_path / 'pred.json').write_text(PRED % '0.5')
    one_line_exit_2(unimd('tad', '--benchmark', 'thumos', '--gt', gt, '--pred', tmp_path / 'pred.json'),
                    "gt.json: no video of subset 'test' (it has validation 1): pass --subset with one of these, or --subset all")
    one_line_exit_2(unimd('tad', '--benchmark', 'activitynet', '--subset', 'training', '--gt', gt, '--pred', tmp_path / 'pred.json'),
                    "no video of subset 'training'")


def test_unreadable_files(tmp_path, gt):
    (tmp_path / 'latin1.json').write_bytes(b'{"results": {"v\xe9": []}}')
    one_line_exit_2(unimd('tad', '--benchmark', 'activitynet', '--gt', gt, '--pred', tmp_path / 'latin1.json'), 'latin1.json: not')
    one_line_exit_2(unimd('tad', '--benchmark', 'activitynet', '--gt', gt, '--pred', tmp_path), str(tmp_path), 'cannot read it')
    one_line_exit_2(unimd('tad', '--benchmark', 'activitynet', '--gt', gt, '--pred', tmp_path / 'nope.json'), 'nope.json: cannot read it')


DEEP = '[' * 100_000 + ']' * 100_000                               # valid JSON, nested 100k levels


@pytest.mark.parametrize('where', ['segment', 'whole', 'gt'])
def test_json_nested_100k_deep(tmp_path, gt, where):
    "No RecursionError traceback: one line, naming the depth (or showing the value 4 levels deep)."
    pred = {'segment': '{"results": {"v1": [{"segment": %s, "label": "jump", "score": 0.5}]}}' % DEEP, 'whole': DEEP,
            'gt': PRED % '0.5'}[where]
    (tmp_path / 'p.json').write_text(pred)
    if where == 'gt': (tmp_path / 'g.json').write_text(DEEP)
    g = tmp_path / 'g.json' if where == 'gt' else gt
    out = unimd('tad', '--benchmark', 'activitynet', '--gt', g, '--pred', tmp_path / 'p.json')
    one_line_exit_2(out)
    # orjson refuses the depth itself (recent versions), or parses it and the value is shown 4 levels deep
    assert 'nested deeper than any' in out.stderr or '[[[[[...]]]]]' in out.stderr, out.stderr


def test_json_nested_deep_without_orjson(tmp_path, monkeypatch, capsys):
    "The standard library's parser (when orjson is not installed) stops at ~1000 levels: that is one line too."
    import unimd.evaluate_cli as ec
    from cli_checks import fails
    monkeypatch.setattr(ec, 'orjson', None)
    (tmp_path / 'g.json').write_text(json.dumps(GT)); (tmp_path / 'p.jsonl').write_text('{"qid": 1, "pred_relevant_windows": %s}\n' % DEEP)
    (tmp_path / 'g.jsonl').write_text('{"qid": 1, "relevant_windows": [[0, 4]]}\n')
    (tmp_path / 'p.json').write_text(DEEP)
    fails(capsys, ['evaluate', 'tad', '--benchmark', 'activitynet', '--gt', str(tmp_path / 'g.json'), '--pred', str(tmp_path / 'p.json')],
          'p.json: nested deeper than')
    fails(capsys, ['evaluate', 'mr', '--benchmark', 'charades-sta', '--gt', str(tmp_path / 'g.jsonl'), '--pred', str(tmp_path / 'p.jsonl')],
          'p.jsonl: line 1: nested deeper than')


def test_fifo_and_device_are_not_read(tmp_path, gt):
    import os
    os.mkfifo(tmp_path / 'pipe.json')
    one_line_exit_2(subprocess.run(['unimd', 'evaluate', 'tad', '--benchmark', 'activitynet', '--gt', str(gt), '--pred', str(tmp_path / 'pipe.json')],
                                   capture_output=True, text=True, timeout=30), 'pipe.json: cannot read it (a folder, FIFO or device')
    one_line_exit_2(unimd('tad', '--benchmark', 'activitynet', '--gt', '/dev/zero', '--pred', gt), '/dev/zero: cannot read it')
