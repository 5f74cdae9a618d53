"The field's prediction files: written from a trained run, checked against what the official readers read, scored back."
import contextlib, dataclasses, io, json, os
from pathlib import Path
import pandas as pd
import pytest
import torch
from unimd.core import Moment, UniMDError
from unimd.cli import main
from unimd.interchange import write_tad_json, write_mr_jsonl, write_mr_predictions, read_mr_predictions
from unimd.train import load_config, train
from unimd.synthetic import make_world
from unimd.formats import (FORMATS, read_format, write_format, validate_ego4d_nlq, validate_activitynet, validate_ego4d_mq,
                           ego4d_nlq_submission, official_nlq_entries)

torch.set_num_threads(1)
OFFICIAL = (Path(os.environ.get('UNIMD_OFFICIAL') or Path(__file__).resolve().parents[2] / 'shared' / 'official')   # as unimd.official finds it
            / 'ego4d_small' / 'expected_detections.json')
TINY = ['model.text_encoder=hash', 'model.text_dim=32', 'model.feat_dim=16', 'model.channels=16', 'model.reg_mlp_hidden=16',
        'model.fpn_layers=1', 'model.max_seq_len=192', 'data.synthetic.feat_dim=16', 'data.synthetic.n_train=12',
        'data.synthetic.n_test=6', 'data.synthetic.n_classes=4', 'train.batch_size=4', 'train.lr=1e-3',
        'train.warmup_epochs=1', 'train.epochs=1', 'train.early_stop_epoch=0']


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "A finished tiny co-training run, and its test split's ground truth in the interchange files."
    d = tmp_path_factory.mktemp('formats')
    cfg = load_config(None, TINY)
    train(cfg, d / 'run', progress=False)
    test = {k: dataclasses.replace(v, subset='validation') for k, v in make_world(cfg.data.synthetic).split('test').items()}
    write_tad_json(test, d / 'gt_tad.json'); write_mr_jsonl(test, d / 'gt_mr.jsonl')
    return d


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def scores(task, gt, pred, benchmark):
    code, out, err = cli('evaluate', task, '--benchmark', benchmark, '--gt', gt, '--pred', pred, '--json')
    assert code == 0, err
    return json.loads(out)


def test_tad_formats_score_as_the_run(run):
    base = scores('tad', run / 'gt_tad.json', run / 'run' / 'predictions_tad.json', 'activitynet')
    for fmt in ('activitynet', 'ego4d-mq'):
        code, out, err = cli('export', run / 'run', '--format', fmt, '--out', run / f'{fmt}.json')
        assert code == 0 and f'{fmt}, ' in out, err
        obj = json.loads((run / f'{fmt}.json').read_text())
        (validate_activitynet if fmt == 'activitynet' else validate_ego4d_mq)(obj)
        assert f"{len(obj['results' if fmt == 'activitynet' else 'detect_results'])} videos" in out
        assert scores('tad', run / 'gt_tad.json', run / f'{fmt}.json', 'activitynet') == base
    assert base['mAP'] > 0                                   # a real run: the comparison is not of two empty tables


def test_moment_detr_scores_as_the_run(run):
    base = scores('mr', run / 'gt_mr.jsonl', run / 'run' / 'predictions_mr.jsonl', 'charades-sta')
    assert cli('export', run / 'run', '--format', 'moment-detr', '--out', run / 'md.jsonl')[0] == 0
    lines = [json.loads(l) for l in (run / 'md.jsonl').read_text().splitlines()]
    assert {'qid', 'query', 'vid', 'pred_relevant_windows'} <= set(lines[0]) and all(len(w) == 3 for w in lines[0]['pred_relevant_windows'])
    gt = {json.loads(l)['qid']: json.loads(l)['query'] for l in (run / 'gt_mr.jsonl').read_text().splitlines()}
    assert all(l['query'] == gt[l['qid']] and l['query'] for l in lines)      # the run's sentences, from its config
    assert all(a[2] >= b[2] for l in lines for a, b in zip(l['pred_relevant_windows'], l['pred_relevant_windows'][1:]))
    assert scores('mr', run / 'gt_mr.jsonl', run / 'md.jsonl', 'charades-sta') == base


def test_nlq_round_trip_keeps_recall(run, tmp_path):
    "Sentence ids in the Ego4D form survive the NLQ file; its top-5 windows give the run's R@1, R@5 and mIoU."
    rename = lambda q: q.replace('#', '_')
    preds = {v: {rename(q): ms for q, ms in qs.items()} for v, qs in read_mr_predictions(run / 'run' / 'predictions_mr.jsonl').items()}
    write_mr_predictions(preds, tmp_path / 'p.jsonl')
    gt = [json.loads(l) for l in (run / 'gt_mr.jsonl').read_text().splitlines()]
    (tmp_path / 'gt.jsonl').write_text(''.join(json.dumps({**g, 'qid': rename(g['qid'])}) + '\n' for g in gt))
    assert cli('export', tmp_path / 'p.jsonl', '--format', 'ego4d-nlq', '--out', tmp_path / 'nlq.json')[0] == 0
    sub = json.loads((tmp_path / 'nlq.json').read_text())
    validate_ego4d_nlq(sub)
    assert (sub['version'], sub['challenge']) == ('1.0', 'ego4d_nlq_challenge') and len(sub['results']) == len(gt)
    assert {(r['clip_uid'], r['annotation_uid'], r['query_idx']) for r in sub['results']} == \
           {(g['vid'], *rename(g['qid']).rsplit('_', 1)[:1], int(g['qid'].split('#')[1])) for g in gt}
    assert all(len(r['predicted_times']) == 5 for r in sub['results'])
    a = scores('mr', tmp_path / 'gt.jsonl', tmp_path / 'p.jsonl', 'charades-sta')
    b = scores('mr', tmp_path / 'gt.jsonl', tmp_path / 'nlq.json', 'charades-sta')
    assert {k: v for k, v in a.items() if k != 'mAP'} == {k: v for k, v in b.items() if k != 'mAP'}


@pytest.mark.official
def test_nlq_entries_equal_the_official_codes(tmp_path):
    preds, official = official_nlq_entries(OFFICIAL)
    sub = ego4d_nlq_submission(preds)
    validate_ego4d_nlq({'version': '1.0', 'challenge': 'ego4d_nlq_challenge', 'results': official})   # the official entries pass
    assert sub['results'] == official and len(official) == 6
    write_format('ego4d-nlq', tmp_path / 'n.json', mr=preds)
    fmt, tad, mr = read_format(tmp_path / 'n.json')
    assert fmt == 'ego4d-nlq' and tad is None
    assert [[(m.start, m.end) for m in ms] for q in mr.values() for ms in q.values()] == [[tuple(t) for t in e['predicted_times']] for e in official]


def test_predictor_table_exports(tmp_path):
    df = pd.DataFrame([('open door', 'tad', 1, 1.0, 4.0, 0.8), ('open door', 'tad', 2, 6.0, 7.0, 0.3),
                       ('someone sits down', 'mr', 1, 2.0, 5.0, 0.6)], columns=['query', 'task', 'rank', 'start', 'end', 'score'])
    df.to_csv(tmp_path / 'v_abcdefghijk.csv', index=False)
    assert cli('export', tmp_path / 'v_abcdefghijk.csv', '--format', 'activitynet', '--strip-v', '--out', tmp_path / 'a.json')[0] == 0
    obj = json.loads((tmp_path / 'a.json').read_text())
    assert list(obj['results']) == ['abcdefghijk'] and [r['score'] for r in obj['results']['abcdefghijk']] == [0.8, 0.3]
    assert cli('export', tmp_path / 'v_abcdefghijk.csv', '--format', 'moment-detr', '--vid', 'clip9', '--out', tmp_path / 'm.jsonl')[0] == 0
    line = json.loads((tmp_path / 'm.jsonl').read_text())
    assert (line['vid'], line['query'], line['pred_relevant_windows']) == ('clip9', 'someone sits down', [[2.0, 5.0, 0.6]])


def test_bad_exports_are_one_line_and_leave_nothing(run, tmp_path):
    code, out, err = cli('export', run / 'run', '--format', 'ego4d-nlq', '--out', tmp_path / 'n.json')
    assert code == 2 and err.count('\n') == 1 and "syn" in err and 'annotation_uid' in err
    assert not (tmp_path / 'n.json').exists() and os.listdir(tmp_path) == []
    code, out, err = cli('export', tmp_path / 'none', '--format', 'activitynet', '--out', tmp_path / 'a.json')
    assert code == 2 and 'not found' in err
    (tmp_path / 'p.jsonl').write_text('{"qid": "a_0", "vid": "v", "pred_relevant_windows": [[3, 1, 0.5]]}\n')
    (tmp_path / 'gt.jsonl').write_text('{"qid": "a_0", "vid": "v", "query": "x", "duration": 9, "relevant_windows": [[1, 2]]}\n')
    assert cli('export', tmp_path / 'p.jsonl', '--format', 'moment-detr', '--out', tmp_path / 'm.jsonl')[0] == 2
    bad = {'version': '1.0', 'challenge': 'ego4d_nlq_challenge', 'results': [{'clip_uid': 'v', 'annotation_uid': 'a', 'query_idx': 0, 'predicted_times': []}]}
    (tmp_path / 'bad.json').write_text(json.dumps(bad))
    code, out, err = cli('evaluate', 'mr', '--benchmark', 'charades-sta', '--gt', tmp_path / 'gt.jsonl', '--pred', tmp_path / 'bad.json')
    assert code == 2 and 'predicted_times' in err
    (tmp_path / 'x.json').write_text('{"a": 1}')
    with pytest.raises(UniMDError, match='not a prediction file'): read_format(tmp_path / 'x.json')
    (tmp_path / 'gt2.jsonl').write_text((tmp_path / 'gt.jsonl').read_text() * 2)      # ground truth given for predictions
    with pytest.raises(UniMDError, match="missing field 'pred_relevant_windows'"): read_format(tmp_path / 'gt2.jsonl')


def test_export_top_k_and_table_values_are_checked(run, tmp_path):
    "--top-k -1 is refused (it used to drop each video's last prediction); a CSV score 'abc' is one line naming the line."
    code, out, err = cli('export', run / 'run', '--format', 'activitynet', '--top-k', '-1', '--out', tmp_path / 'a.json')
    assert code == 2 and err.count('\n') == 1 and '--top-k -1' in err and not (tmp_path / 'a.json').exists()
    assert cli('export', run / 'run', '--format', 'activitynet', '--top-k', '1', '--out', tmp_path / 'a.json')[0] == 0
    assert all(len(rows) == 1 for rows in json.loads((tmp_path / 'a.json').read_text())['results'].values())
    for col, value in (('score', 'abc'), ('start', 'nan'), ('end', '')):
        df = pd.DataFrame([('open door', 'tad', 1, '1.0', '4.0', '0.8'), ('sit', 'tad', 1, '1.0', '4.0', '0.5')],
                          columns=['query', 'task', 'rank', 'start', 'end', 'score'])
        df.loc[1, col] = value
        df.to_csv(tmp_path / 'v.csv', index=False)
        code, out, err = cli('export', tmp_path / 'v.csv', '--format', 'activitynet', '--out', tmp_path / 'b.json')
        assert code == 2 and err.count('\n') == 1 and 'Traceback' not in err, err
        assert f"v.csv line 3: {col} is" in err and 'not a number' in err and not (tmp_path / 'b.json').exists()


def test_export_never_writes_over_an_input_or_silently_over_a_file(run, tmp_path):
    (tmp_path / 'mine.json').write_text('keep me')
    code, out, err = cli('export', run / 'run', '--format', 'activitynet', '--out', tmp_path / 'mine.json')
    assert code == 2 and 'mine.json already exists' in err and '--force' in err
    assert (tmp_path / 'mine.json').read_text() == 'keep me'
    assert cli('export', run / 'run', '--format', 'activitynet', '--out', tmp_path / 'mine.json', '--force')[0] == 0
    assert 'results' in json.loads((tmp_path / 'mine.json').read_text())
    before = (run / 'run' / 'predictions_tad.json').read_bytes()
    for out_path in (run / 'run' / 'predictions_tad.json', run / 'run' / 'metrics.json'):
        code, out, err = cli('export', run / 'run', '--format', 'activitynet', '--out', out_path, '--force')
        assert code == 2 and 'is also an input of this command' in err
    assert (run / 'run' / 'predictions_tad.json').read_bytes() == before
