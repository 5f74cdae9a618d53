"Evaluation: the fast metrics equal plain-loop references on random data, hand cases, real ground truth, and the CLI."
import csv, json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import reference_eval as ref
from unimd.core import UniMDError
from unimd.evaluate import (TAD_THRESHOLDS, MR_MAP_THRESHOLDS, tad_table, tad_average_precision, topk_recall,
                            charades_map, mr_recall, mr_miou, mr_map, evaluate_tad, evaluate_mr)
from unimd.evaluate_cli import cli_evaluate

DATA = Path(os.environ.get('UNIMD_DATA', Path(__file__).resolve().parents[2] / 'shared' / 'data'))
SEEDS = range(8)


def random_tad(seed, n_vid=10, n_cls=4, n_gt=40, n_pred=150):
    "Integer-valued segments (tIoU ties), scores on a coarse grid (score ties), zero-length and duplicate GT, reversed,"
    "zero-length and copied predictions, predictions in videos and classes without GT, GT videos without instances."
    rng = np.random.default_rng(seed)
    gt = []
    for _ in range(n_gt):
        s = float(rng.integers(0, 20))
        gt.append((f'v{rng.integers(n_vid - 2)}', f'c{rng.integers(n_cls)}', s, s + float(rng.integers(0, 8))))
    gt += [gt[i] for i in rng.integers(len(gt), size=4)]            # exact duplicates, as in Ego4D MQ
    pred = []
    for _ in range(n_pred):
        s = float(rng.integers(0, 22))
        pred.append((f'v{rng.integers(n_vid + 2)}', f'c{rng.integers(n_cls + 1)}', s, s + float(rng.integers(-1, 9)),
                     float(rng.integers(0, 6)) / 5))
    pred += [(*gt[i], float(rng.integers(0, 6)) / 5) for i in rng.integers(len(gt), size=15)]
    pred = [pred[i] for i in rng.permutation(len(pred))]
    durations = {f'v{i}': float(rng.choice([10.0, 25.0, 30.0])) for i in rng.permutation(n_vid)}
    return gt, pred, durations


def tables(gt, pred, durations=None):
    return tad_table([(*r, 1.0) for r in gt], durations), tad_table(pred)


@pytest.mark.parametrize('seed', SEEDS)
@pytest.mark.parametrize('bench', ['activitynet', 'ego4d', 'thumos'])
def test_tad_ap_equals_reference(seed, bench):
    gt, pred, _ = random_tad(seed)
    th = TAD_THRESHOLDS[bench]
    fast, classes = tad_average_precision(*tables(gt, pred), th)
    slow, slow_classes = ref.tad_ap(gt, pred, list(th))
    assert classes.tolist() == slow_classes
    np.testing.assert_allclose(fast, np.array(slow), atol=1e-6)
    assert 0 < fast.mean() < 1                                     # the data is not degenerate


@pytest.mark.parametrize('seed', SEEDS)
def test_ego4d_recall_equals_reference(seed):
    gt, pred, _ = random_tad(seed)
    fast = topk_recall(*tables(gt, pred), ks=(1, 2, 5), thresholds=(0.1, 0.3, 0.5, 0.7))
    np.testing.assert_allclose(fast, ref.topk_recall(gt, pred, (1, 2, 5), (0.1, 0.3, 0.5, 0.7)), atol=1e-6)


@pytest.mark.parametrize('seed', SEEDS)
def test_charades_frame_map_equals_reference(seed):
    gt, pred, durations = random_tad(seed)
    fast = charades_map(*tables(gt, pred, durations))
    assert abs(fast - ref.charades_map(gt, durations, pred)) < 1e-6


def random_mr(seed, n_q=60):
    rng = np.random.default_rng(seed)
    gt, pred = {}, {}
    for q in range(n_q):
        ws = []
        for _ in range(rng.integers(1, 4)):                        # 1-3 windows per query (QVHighlights style)
            s = float(rng.integers(0, 20))
            ws.append((s, s + float(rng.integers(0, 8))))          # some zero-length
        gt[f'q{q}'] = ws
        if rng.random() < 0.15: continue                           # a query without predictions
        ps = []
        for _ in range(rng.integers(0, 14)):                       # sometimes an empty list, sometimes > 10
            s = float(rng.integers(0, 22))
            ps.append((s, s + float(rng.integers(-1, 9)), float(rng.integers(0, 5)) / 4))
        pred[f'q{q}'] = ps
    pred['not-a-gt-query'] = [(0.0, 5.0, 1.0)]
    return gt, pred


@pytest.mark.parametrize('seed', SEEDS)
@pytest.mark.parametrize('strict', [False, True])
def test_mr_metrics_equal_reference(seed, strict):
    gt, pred = random_mr(seed)
    g = {q: np.array(w, np.float64).reshape(-1, 2) for q, w in gt.items()}
    p = {q: np.array(w, np.float64).reshape(-1, 3) for q, w in pred.items()}
    ks, ts = (1, 5, 10), (0.3, 0.5, 0.7)
    recall, miou, mean_ap = ref.mr_metrics(gt, pred, ks, ts, strict, list(MR_MAP_THRESHOLDS))
    np.testing.assert_allclose(mr_recall(g, p, ks, ts, strict), recall, atol=1e-6)
    assert abs(mr_miou(g, p) - miou) < 1e-6
    assert abs(mr_map(g, p) - mean_ap) < 1e-6


def test_hand_cases():
    gt = tad_table([('v1', 'jump', 0, 10, 1), ('v1', 'jump', 20, 30, 1)])
    pr = tad_table([('v1', 'jump', 0, 10, 0.9), ('v1', 'jump', 0, 10, 0.8), ('v1', 'jump', 20, 25, 0.7),
                    ('v1', 'fly', 0, 10, 0.95)])
    ap, _ = tad_average_precision(gt, pr, [0.5, 0.55])
    np.testing.assert_allclose(ap[:, 0], [5 / 6, 1 / 2])           # tIoU exactly 0.5 hits at 0.5 only; fly ignored
    gt2 = tad_table([('v', 'a', 0, 10, 1)])
    assert tad_average_precision(gt2, tad_table([('v', 'a', 50, 60, .5), ('v', 'a', 0, 10, .5)]), [.5])[0][0, 0] == 0.5
    assert tad_average_precision(gt2, tad_table([('v', 'a', 0, 10, .5), ('v', 'a', 50, 60, .5)]), [.5])[0][0, 0] == 1.0
    gt5 = tad_table([('v', 'a', 0, 10, 1), ('v', 'a', 5, 15, 1)])   # p1 ties (tIoU 0.5) on both: takes the first
    pr5 = tad_table([('v', 'a', 5, 10, 0.9), ('v', 'a', 0, 9, 0.8)])  # so p2 (0.9 with [0, 10]) finds it taken
    assert tad_average_precision(gt5, pr5, [0.5])[0][0, 0] == 0.5
    assert ref.tad_ap([('v', 'a', 0, 10), ('v', 'a', 5, 15)], [('v', 'a', 5, 10, .9), ('v', 'a', 0, 9, .8)], [.5])[0] == [[.5]]
    gt3 = tad_table([('v', 'a', 5, 5, 1)])                          # zero-length GT
    assert tad_average_precision(gt3, tad_table([('v', 'a', 4, 6, 1.0)]), [0.5])[0][0, 0] == 0.0
    assert tad_average_precision(gt3, tad_table([('v', 'a', 9, 9, 1.0)]), [0.5])[0][0, 0] == 1.0  # official 0/0
    mgt = {'q': np.array([[0., 10]])}
    mpr = {'q': np.array([[0., 5, 1.0]])}                          # IoU exactly 0.5
    assert evaluate_mr(mgt, mpr, 'charades-sta')['R1@0.5'] == 100.0
    assert evaluate_mr(mgt, mpr, 'ego4d-nlq')['R1@0.5'] == 0.0     # Ego4D-NLQ: strictly greater
    gt4 = tad_table([('v', 'a', 0, 4, 1)], {'v': 25.0, 'u': 25.0})  # u: a video without actions nor predictions
    assert abs(charades_map(gt4, tad_table([('v', 'a', 2, 10, 0.9)])) - (3 + 0.4 + 5 / 11) / 5) < 1e-12


def read_charades_test():
    rows, durations = [], {}
    with open(DATA / 'charades' / 'Charades_v1_test.csv', newline='') as f:
        for r in csv.DictReader(f):
            durations[r['id']] = float(r['length'])
            rows += [(r['id'], c, float(s), float(e)) for c, s, e in (a.split() for a in r['actions'].split(';') if a)]
    return rows, durations


def read_charades_sta_test():
    gt = {}
    for i, line in enumerate(open(DATA / 'charades_sta' / 'charades_sta_test.txt')):
        head, sentence = line.rstrip('\n').split('##')
        vid, s, e = head.split()
        gt[f'{vid}_{i}'] = dict(qid=f'{vid}_{i}', query=sentence, vid=vid, relevant_windows=[[float(s), float(e)]])
    return gt


needs_data = pytest.mark.skipif(not (DATA / 'charades').exists(), reason='real annotations not available')


@needs_data
def test_real_charades_gt_scores_100_against_itself():
    rows, durations = read_charades_test()
    assert (len(durations), len(rows)) == (1863, 16691)
    gt, pred = tad_table([(*r, 1.0) for r in rows], durations), tad_table([(*r, 1.0) for r in rows])
    assert evaluate_tad(gt, pred, 'charades') == {'mAP': 100.0}
    assert abs(evaluate_tad(gt, pred, 'activitynet')['mAP'] - 100.0) < 1e-9
    half = tad_table([(*r, 1.0) for r in rows[::2]])               # half the instances: clearly below 100
    assert 30 < evaluate_tad(gt, half, 'charades')['mAP'] < 90


def unimd(*args):
    return subprocess.run(['unimd', 'evaluate', *map(str, args)], capture_output=True, text=True)


@needs_data
def test_real_charades_sta_gt_r1_is_100_through_the_cli(tmp_path):
    gt = read_charades_sta_test()
    assert len(gt) == 3720
    (tmp_path / 'gt.jsonl').write_text(''.join(json.dumps(d) + '\n' for d in gt.values()))
    (tmp_path / 'pred.jsonl').write_text(''.join(json.dumps({'qid': q, 'pred_relevant_windows': [[*d['relevant_windows'][0], 1.0]]}) + '\n'
                                                 for q, d in reversed(gt.items())))
    out = unimd('mr', '--benchmark', 'charades-sta', '--gt', tmp_path / 'gt.jsonl', '--pred', tmp_path / 'pred.jsonl', '--json')
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res['R1@0.5'] == 100.0 and res['R1@0.7'] == 100.0 and res['mIoU'] == 100.0
    assert list(res) == ['R1@0.5', 'R1@0.7', 'R5@0.5', 'R5@0.7', 'mIoU', 'mAP']


@pytest.fixture
def tad_files(tmp_path):
    gt = {'database': {'v1': {'subset': 'validation', 'duration': 40.0, 'annotations': [
        {'segment': [0, 10], 'label': 'jump'}, {'segment': [20, 30], 'label': 'jump'}]},
        'v2': {'subset': 'validation', 'duration': 20.0, 'annotations': []}}}
    pred = {'results': {'v1': [{'segment': [0, 10], 'label': 'jump', 'score': 0.9},
                               {'segment': [20, 25], 'label': 'jump', 'score': 0.7}]}}
    (tmp_path / 'gt.json').write_text(json.dumps(gt))
    (tmp_path / 'pred.json').write_text(json.dumps(pred))
    return tmp_path


@pytest.mark.parametrize('bench,keys', [
    ('activitynet', ['mAP'] + [f'mAP@{t}' for t in ('0.5', '0.55', '0.6', '0.65', '0.7', '0.75', '0.8', '0.85', '0.9', '0.95')]),
    ('ego4d', ['mAP', 'mAP@0.1', 'mAP@0.2', 'mAP@0.3', 'mAP@0.4', 'mAP@0.5', 'R1@0.3', 'R1@0.5', 'R5@0.3', 'R5@0.5']),
    ('thumos', ['mAP', 'mAP@0.3', 'mAP@0.4', 'mAP@0.5', 'mAP@0.6', 'mAP@0.7']),
    ('charades', ['mAP'])])
def test_cli_tad_json_keys(tad_files, bench, keys):
    out = unimd('tad', '--benchmark', bench, '--subset', 'all', '--gt', tad_files / 'gt.json', '--pred', tad_files / 'pred.json', '--json')
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert list(res) == keys and all(0 <= v <= 100 for v in res.values())


def test_cli_tad_values_and_table(tad_files):
    out = unimd('tad', '--benchmark', 'activitynet', '--gt', tad_files / 'gt.json', '--pred', tad_files / 'pred.json', '--json')
    res = json.loads(out.stdout)
    assert res['mAP@0.5'] == 100.0 and res['mAP@0.55'] == 50.0
    out = unimd('tad', '--benchmark', 'thumos', '--subset', 'validation', '--gt', tad_files / 'gt.json', '--pred', tad_files / 'pred.json')
    assert out.returncode == 0 and 'mAP@0.3' in out.stdout and '2 videos, 2 instances, 1 classes' in out.stdout


def bad(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize('name,text,message', [
    ('pred.json', '{"results": {"v1": [', 'not valid JSON'),
    ('pred.json', '{"results": {"v1": [{"segment": [0, 10], "label": "jump"}]}}', "missing field 'score'"),
    ('pred.json', '{"results": {"v1": [{"segment": [0, 10], "label": "jump", "score": "0.9"}]}}', "is '0.9', not a number"),
    ('pred.json', '{"results": {"v1": [{"segment": [0], "label": "jump", "score": 0.9}]}}', 'not a list of 2 numbers'),
    ('pred.json', '{"predictions": {}}', "missing field 'results'"),
    ('gt.json', '{"database": {"v1": {"duration": 4}}}', "missing field 'annotations'"),
])
def test_cli_bad_tad_input_exits_2_with_one_line(tad_files, name, text, message):
    args = {'gt.json': tad_files / 'gt.json', 'pred.json': tad_files / 'pred.json'}
    args[name] = bad(tad_files / f'bad_{name}', text)
    out = unimd('tad', '--benchmark', 'activitynet', '--gt', args['gt.json'], '--pred', args['pred.json'])
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f'bad_{name}' in lines[0] and message in lines[0], out.stderr
    assert 'Traceback' not in out.stderr


def test_cli_charades_needs_durations(tad_files):
    gt = bad(tad_files / 'nodur.json', '{"database": {"v1": {"annotations": [{"segment": [0, 1], "label": "a"}]}}}')
    out = unimd('tad', '--benchmark', 'charades', '--gt', gt, '--pred', tad_files / 'pred.json')
    assert out.returncode == 2 and 'nodur.json' in out.stderr and 'duration' in out.stderr


@pytest.mark.parametrize('args,message', [
    (['tad', '--benchmark', 'kinetics', '--gt', 'g.json', '--pred', 'p.json'], "invalid choice: 'kinetics'"),
    (['mr', '--benchmark', 'activitynet', '--gt', 'g.jsonl', '--pred', 'p.jsonl'], "invalid choice: 'activitynet'"),
    (['tad', '--benchmark', 'thumos', '--gt', 'g.json'], '--pred'),
    (['detect'], 'invalid choice'),
    (['tad', '--benchmark', 'thumos', '--gt', 'missing.json', '--pred', 'p.json'], 'missing.json: cannot read'),
])
def test_cli_usage_errors_exit_2_with_one_line(args, message):
    out = unimd(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr


def test_cli_bad_mr_input(tmp_path):
    gt = bad(tmp_path / 'gt.jsonl', '{"qid": 1, "query": "x", "vid": "v", "duration": 9, "relevant_windows": [[0, 4]]}\n')
    for text, message in [('{"qid": 1, "pred_relevant_windows": [[0, 4, true]]}\n', 'line 1: pred_relevant_windows[0][2] is True'),
                          ('{"qid": 1}\n', "line 1: missing field 'pred_relevant_windows'"),
                          ('{"qid": 1, "pred_relevant_windows": []}\n{"qid": 1, "pred_relevant_windows": []}\n', 'appears twice'),
                          ('{"qid": 1, "pred_relevant_windows": []}\nnot json\n', 'line 2: not valid JSON')]:
        pred = bad(tmp_path / 'p.jsonl', text)
        out = unimd('mr', '--benchmark', 'qvhighlights', '--gt', gt, '--pred', pred)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert 'p.jsonl' in out.stderr and message in out.stderr, out.stderr


def test_cli_help_and_in_process_errors():
    assert subprocess.run(['unimd', 'evaluate', '--help'], capture_output=True).returncode == 0
    with pytest.raises(UniMDError, match='invalid choice'):
        cli_evaluate(['tad', '--benchmark', 'nope', '--gt', 'g', '--pred', 'p'])


@needs_data
def test_unimd_data_writers_round_trip_through_the_cli(tmp_path):
    "The files unimd.interchange writes (real Charades test + Charades-STA) are what `unimd evaluate` reads: GT vs itself is 100."
    from unimd import data, interchange as files
    from unimd.core import Moment
    videos = data.read_charades_sta('test', data.read_charades('test', DATA), DATA)
    files.write_tad_json(videos, tmp_path / 'gt.json')
    preds = {v: {} for v in videos}
    for v, x in videos.items():
        for a in x.actions: preds[v].setdefault(a.label, []).append(Moment(a.start, a.end, 1.0))
    files.write_tad_predictions(preds, tmp_path / 'pred.json')
    files.write_mr_jsonl(videos, tmp_path / 'gt.jsonl')
    files.write_mr_predictions({v: {s.qid: [Moment(*s.windows[0], 1.0)] for s in x.sentences} for v, x in videos.items()},
                              tmp_path / 'pred.jsonl')
    for task, bench, ext, subset in (('tad', 'charades', 'json', []), ('tad', 'activitynet', 'json', ['--subset', 'test']),
                                     ('mr', 'charades-sta', 'jsonl', [])):
        out = unimd(task, '--benchmark', bench, *subset, '--gt', tmp_path / f'gt.{ext}', '--pred', tmp_path / f'pred.{ext}', '--json')
        assert out.returncode == 0, out.stderr
        res = json.loads(out.stdout)
        assert abs(res['mAP'] - 100) < 1e-9 and res.get('R1@0.5', 100) == 100, (bench, res)


needs_ego4d = pytest.mark.skipif(not (DATA / 'ego4d' / 'mq').exists(), reason='real Ego4D annotations not available')


@needs_ego4d
def test_ego4d_mq_training_clips_are_left_out(tmp_path):
    "UniMD's Ego4D MQ file (1,506 training + 528 validation clips): the default scores validation only, as the official code."
    src = DATA / 'ego4d' / 'mq' / 'clip_annotations_not_filter.json'
    db = json.loads(src.read_text())['database']
    val = {v: d for v, d in db.items() if d['subset'] == 'validation'}
    rng = np.random.default_rng(0)                                 # an imperfect detector: jittered validation GT
    pred = {'results': {v: [{'label': a['label'], 'score': float(rng.random()),
                             'segment': [a['segment'][0] + float(rng.normal(0, 2)), a['segment'][1] + float(rng.normal(0, 2))]}
                            for a in d['annotations']] for v, d in val.items()}}
    (tmp_path / 'pred.json').write_text(json.dumps(pred))
    (tmp_path / 'val.json').write_text(json.dumps({'database': val}))
    full = unimd('tad', '--benchmark', 'ego4d', '--gt', src, '--pred', tmp_path / 'pred.json', '--json')
    only_val = unimd('tad', '--benchmark', 'ego4d', '--gt', tmp_path / 'val.json', '--pred', tmp_path / 'pred.json', '--json')
    every = unimd('tad', '--benchmark', 'ego4d', '--subset', 'all', '--gt', src, '--pred', tmp_path / 'pred.json', '--json')
    assert full.returncode == only_val.returncode == every.returncode == 0, full.stderr
    assert json.loads(full.stdout) == json.loads(only_val.stdout)  # exactly the validation-only file's scores
    assert "scoring the 528 videos of subset 'validation'; left out 1506 videos of other subsets (training 1506)" in full.stderr
    assert only_val.stderr == ''
    assert json.loads(every.stdout)['mAP'] < 0.5 * json.loads(full.stdout)['mAP']  # training instances become misses
    train = unimd('tad', '--benchmark', 'ego4d', '--subset', 'train', '--gt', src, '--pred', tmp_path / 'pred.json', '--json')
    assert train.returncode == 0 and json.loads(train.stdout)['mAP'] == 0.0
    assert 'videos outside the scored ground truth count as false positives' in train.stderr


def test_cli_warns_about_predictions_it_ignores(tad_files):
    (tad_files / 'p2.json').write_text(json.dumps({'results': {
        'v1': [{'segment': [0, 10], 'label': 'jump', 'score': 0.9}, {'segment': [0, 10], 'label': 'fly', 'score': 0.8},
               {'segment': [0, 10], 'label': 'swim', 'score': 0.8}],
        'v7': [{'segment': [0, 10], 'label': 'jump', 'score': 0.9}]}}))
    out = unimd('tad', '--benchmark', 'activitynet', '--gt', tad_files / 'gt.json', '--pred', tad_files / 'p2.json', '--json')
    assert out.returncode == 0
    lines = out.stderr.splitlines()
    assert lines == ["unimd evaluate: warning: 2 predictions of 2 classes the ground truth does not have are ignored (e.g. 'fly')",
                     'unimd evaluate: warning: 1 predictions for 1 videos outside the scored ground truth count as false '
                     'positives, as in the official code']
    assert json.loads(out.stdout)['mAP@0.5'] == 50.0                # one hit of two GT; the v7 prediction ranks first: a FP


def test_fast_reader_equals_careful_reader(tmp_path):
    "The column fast path and the record-by-record path build identical tables (ints, floats, int labels, empty videos)."
    from unimd.evaluate_cli import read_tad_pred, read_tad_gt, _pred_rows_checked, _gt_rows_checked
    rng = np.random.default_rng(1)
    res = {f'v{i}': [{'segment': [int(s), float(s) + float(rng.random())], 'label': int(rng.integers(3)) if rng.random() < .2 else f'c{rng.integers(9)}',
                      'score': float(rng.random())} for s in rng.integers(0, 99, rng.integers(0, 30))] for i in range(60)}
    (tmp_path / 'p.json').write_text(json.dumps({'results': res}))
    fast, careful = read_tad_pred(tmp_path / 'p.json'), tad_table(_pred_rows_checked(res, 'p'))
    for f in ('vids', 'labels', 'segments', 'scores'): assert getattr(fast, f).tolist() == getattr(careful, f).tolist(), f
    assert len(fast) > 500
    db = {v: {'subset': 'validation', 'duration': 100, 'annotations': [{k: p[k] for k in ('segment', 'label')} for p in ps]} for v, ps in res.items()}
    (tmp_path / 'g.json').write_text(json.dumps({'database': db}))
    g = read_tad_gt(tmp_path / 'g.json')
    assert g.labels.tolist() == [r[1] for r in _gt_rows_checked(db, 'g')] and set(g.durations.values()) == {100.0}
    fast_ap = tad_average_precision(g, fast, [0.5, 0.7])[0]       # codes taken at reading == codes computed afresh
    fresh = tad_average_precision(tad_table(_gt_rows_checked(db, 'g')), careful, [0.5, 0.7])[0]
    np.testing.assert_array_equal(fast_ap, fresh)


def test_metrics_path_imports_no_torch(tad_files):
    code = ("import sys; from unimd.cli import main; "
            f"main(['evaluate', 'tad', '--benchmark', 'ego4d', '--gt', {str(tad_files / 'gt.json')!r}, '--pred', {str(tad_files / 'pred.json')!r}]); "
            "assert 'torch' not in sys.modules, 'torch imported'; print('no torch')")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0 and 'no torch' in out.stdout, out.stderr


OFFICIAL = Path(os.environ.get('UNIMD_OFFICIAL', Path(__file__).resolve().parents[2] / 'shared' / 'official'))


@pytest.mark.official
def test_official_ego4d_mq_fixture_reads_and_scores_its_validation_clips(tmp_path):
    "The official loader's MQ layout (subset, fps, segment(frames), label_id) reads as is; a training clip is left out."
    db = json.loads((OFFICIAL / 'data' / 'ego4d' / 'mq_annotations.json').read_text())['database']
    pred = {'results': {v: [{'label': a['label'], 'segment': a['segment'], 'score': 1.0} for a in d['annotations']] for v, d in db.items()}}
    (tmp_path / 'pred.json').write_text(json.dumps(pred))
    out = unimd('tad', '--benchmark', 'ego4d', '--gt', OFFICIAL / 'data' / 'ego4d' / 'mq_annotations.json', '--pred', tmp_path / 'pred.json', '--json')
    assert out.returncode == 0 and out.stderr == '' and json.loads(out.stdout)['mAP'] == 100.0, out.stderr
    first = next(iter(db))
    mixed = {'database': {**db, first: {**db[first], 'subset': 'training'}}}
    (tmp_path / 'mixed.json').write_text(json.dumps(mixed))
    out = unimd('tad', '--benchmark', 'ego4d', '--gt', tmp_path / 'mixed.json', '--pred', tmp_path / 'pred.json', '--json')
    assert out.returncode == 0, out.stderr
    assert "scoring the 1 videos of subset 'validation'; left out 1 videos of other subsets (training 1)" in out.stderr
    assert 'count as false positives' in out.stderr and json.loads(out.stdout)['mAP'] < 100.0  # its predictions now hit nothing
