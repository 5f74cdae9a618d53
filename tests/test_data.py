"unimd.data and unimd.stats: real annotation counts, the format pitfalls on small hand-written files, writer round trips."
import json, os, stat, subprocess
from pathlib import Path
import pytest
from unimd.core import UniMDError, Action, Sentence, Video, Moment, MR
from unimd.data import atomic_file
from unimd.data import *
from unimd.interchange import *
from unimd.stats import dataset_stats

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get('UNIMD_DATA', ROOT.parent / 'shared' / 'data'))
real = pytest.mark.skipif(not all((DATA / d).is_dir() for d in ('charades', 'charades_sta', 'anet', 'anet_captions', 'ego4d', 'qvhighlights')),
                          reason=f'annotation folder {DATA} is absent or incomplete: set UNIMD_DATA to the folder '
                          'holding the datasets (see data/README.md)')

# ---------------------------------------------------------------- real files

@real
def test_charades_counts():
    tr, te = read_charades('train', DATA), read_charades('test', DATA)
    assert (len(tr), len(te)) == (7985, 1863)
    assert (sum(len(v.actions) for v in tr.values()), sum(len(v.actions) for v in te.values())) == (49809, 16691)
    assert sum(not v.actions for v in tr.values()) == 174               # empty action cells stay as videos
    assert all(0 <= a.start <= a.end <= v.duration for v in tr.values() for a in v.actions)
    assert charades_classes(DATA)[0] == 'Holding some clothes' and len(charades_classes(DATA)) == 157
    assert tr['46GP8'].actions[0].label == charades_classes(DATA)[92]

@real
def test_charades_sta_counts_and_join():
    tr, te = read_charades_sta('train', root=DATA), read_charades_sta('test', root=DATA)
    assert (len(tr), sum(len(v.sentences) for v in tr.values())) == (5338, 12408)
    assert (len(te), sum(len(v.sentences) for v in te.values())) == (1334, 3720)
    cha = read_charades('train', DATA)
    assert all(v.duration == cha[k].duration for k, v in tr.items())   # durations joined from Charades
    assert tr['IOL8Q'].sentences[0].windows == ((12.0, 20.9),)           # reversed line swapped
    dups = duplicate_sentences(tr)
    assert 12408 - sum(len(q) - 1 for q in dups.values()) == 7868       # duplicates kept as separate queries
    joined = read_charades_sta('train', cha, DATA)
    assert len(joined) == 7985 and not cha['AO8RW'].sentences           # input untouched
    idx = task_index(joined)
    assert (len(idx['both']), len(idx['tad_only']), len(idx['mr_only'])) == (5338, 2473, 0)

@real
def test_anet_counts():
    tr, va, te = (read_anet(s, DATA) for s in ('train', 'val', 'test'))
    assert (len(tr), len(va), len(te)) == (10024, 4926, 5044)
    assert (sum(len(v.actions) for v in tr.values()), sum(len(v.actions) for v in va.values())) == (15410, 7654)
    assert 'v_v_Vg4a8igc0' in tr and all(k.startswith('v_') for k in tr)
    bsn = read_anet('val', DATA, source='bsn')
    assert (len(bsn), sum(len(v.actions) for v in bsn.values())) == (4728, 7293)
    assert len(anet_classes(DATA)) == 200

@real
def test_anet_captions_counts():
    cap = {s: read_anet_captions(s, DATA) for s in ('train', 'val_1', 'val_2')}
    assert [len(c) for c in cap.values()] == [10009, 4917, 4885]
    assert [sum(len(v.sentences) for v in c.values()) for c in cap.values()] == [37421, 17505, 17031]
    assert not any(s.text[0].isspace() for v in cap['train'].values() for s in v.sentences)
    merged = merge_videos(read_anet('val', DATA), cap['val_1'])
    assert all(w[1] <= v.duration for v in merged.values() for s in v.sentences for w in s.windows)

@real
def test_ego4d_counts():
    mq = {**read_ego4d_mq('train', DATA), **read_ego4d_mq('val', DATA)}
    nlq = {**read_ego4d_nlq('train', DATA), **read_ego4d_nlq('val', DATA)}
    assert (len(mq), sum(len(v.actions) for v in mq.values())) == (2034, 18799)
    assert (len(nlq), sum(len(v.sentences) for v in nlq.values())) == (1326, 15165)
    assert sum(a.start == a.end for v in mq.values() for a in v.actions) == 389        # zero length kept
    assert sum(w[0] == w[1] for v in nlq.values() for s in v.sentences for w in s.windows) == 1308
    assert 'walk_down_stairs_/_walk_up_stairs' in {a.label for v in mq.values() for a in v.actions}
    assert len(ego4d_mq_classes(DATA)) == 110
    assert sum(len(v.sentences) for v in read_ego4d_nlq('test', DATA).values()) == 4004

@real
def test_qvhighlights_counts():
    tr = read_qvhighlights('train', DATA)
    assert (sum(len(v.sentences) for v in tr.values()), len(tr)) == (7218, 7100)
    assert sum(len(s.windows) for v in tr.values() for s in v.sentences) == 12803

@real
def test_stats_charades_numbers():
    c = {x['key']: x for x in dataset_stats('charades', DATA)['claims']}
    assert round(c['actions_per_video']['measured'], 2) == 6.75
    assert round(c['sta_events_per_video']['measured'], 2) == 2.42
    assert round(c['sta_share']['measured'], 3) == 0.677
    assert c['sta_in_charades']['measured'] == 1.0 and c['mr_descriptions_for_tad']['measured'] == 16128
    assert round(c['tad_extra_for_mr']['measured'], 2) == 3.14

@real
def test_stats_anet_ego4d_numbers():
    a = {x['key']: x for x in dataset_stats('anet', DATA)['claims']}
    assert a['captions_in_anet']['measured'] == 1.0 and round(a['anet_in_captions']['measured'], 4) == 0.9984
    e = {x['key']: x for x in dataset_stats('ego4d', DATA)['claims']}
    assert round(e['one_task']['measured'], 3) == 0.994 and e['one_task']['agrees']

@real
def test_cli_stats_json():
    out = subprocess.run(['unimd', 'stats', '--dataset', 'charades', '--json'], capture_output=True, text=True,
                         env={**os.environ, 'UNIMD_DATA': str(DATA)}, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res['dataset'] == 'charades'
    assert {c['key']: c['measured_text'] for c in res['claims']}['actions_per_video'] == '6.75'
    assert all(c['agrees'] for c in res['claims'] if c['paper'] is not None)

def test_cli_stats_missing_data_is_one_line_error(tmp_path):
    out = subprocess.run(['unimd', 'stats', '--dataset', 'charades', '--root', str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2 and 'Charades_v1_classes.txt not found' in out.stderr and 'data/README.md' in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1

# ---------------------------------------------------------------- pitfalls on hand-written files

CLASSES = 'c000 Holding some clothes\nc001 Putting clothes somewhere\nc002 Opening a door\n'
HEADER = 'id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n'

def charades_root(tmp_path, rows, split='train'):
    (tmp_path / 'charades').mkdir(exist_ok=True)
    (tmp_path / 'charades' / 'Charades_v1_classes.txt').write_text(CLASSES)
    (tmp_path / 'charades' / f'Charades_v1_{split}.csv').write_text(HEADER + ''.join(rows))
    return tmp_path

GOOD = ['AAAAA,S1,Kitchen,6,7,Yes,"A person, then; another",a;b,"desc, with comma",c001 18.00 10.00;c000 2.00 31.50,30.00\n',
        'BBBBB,S1,Hall,6,7,Yes,script,x,desc,,12.50\n',
        'CCCCC,S1,Hall,6,7,Yes,script,x,desc,c002 40.00 41.00,20.00\n']

def test_charades_pitfalls(tmp_path):
    v = read_charades('train', charades_root(tmp_path, GOOD))
    assert v['AAAAA'].actions == [Action('Putting clothes somewhere', 10.0, 18.0),   # reversed -> swapped
                                  Action('Holding some clothes', 2.0, 30.0)]         # past the end -> clipped
    assert v['BBBBB'].actions == [] and v['BBBBB'].duration == 12.5                  # empty cell: video kept
    assert v['CCCCC'].actions == [Action('Opening a door', 20.0, 20.0)]              # wholly past the end: zero length

def test_charades_unknown_class(tmp_path):
    root = charades_root(tmp_path, GOOD[:1] + ['DDDDD,S,H,6,7,Yes,s,x,d,c157 1.00 2.00,20.00\n'])
    with pytest.raises(UniMDError, match=r"Charades_v1_train\.csv:3: unknown class 'c157'"): read_charades('train', root)

def test_charades_malformed_line(tmp_path):
    root = charades_root(tmp_path, GOOD[:2] + ['DDDDD,S,H,6,7,Yes,s,x,d,c001 1.00,20.00\n'])
    with pytest.raises(UniMDError, match=r"Charades_v1_train\.csv:4: .*c001 1\.00"): read_charades('train', root)
    root = charades_root(tmp_path, ['DDDDD,S,H,6,7,Yes,s,x,d,c001 1.00 2.00,long\n'])
    with pytest.raises(UniMDError, match=r"Charades_v1_train\.csv:2: length is not a number"): read_charades('train', root)

def test_missing_file_names_path_and_source(tmp_path):
    with pytest.raises(UniMDError) as e: read_charades('test', tmp_path)
    msg = str(e.value)
    assert str(tmp_path / 'charades' / 'Charades_v1_classes.txt') in msg and 'Allen Institute' in msg and 'UNIMD_DATA' in msg
    with pytest.raises(UniMDError, match='moment_detr'): read_qvhighlights('train', tmp_path)
    with pytest.raises(UniMDError, match='ego4d-data.org'): read_ego4d_nlq('val', tmp_path)

def test_charades_sta_pitfalls(tmp_path):
    root = charades_root(tmp_path, GOOD)
    (root / 'charades_sta').mkdir()
    sta = root / 'charades_sta' / 'charades_sta_train.txt'
    sta.write_text('AAAAA 8.0 3.0##a person folds clothes.\nAAAAA 25.0 31.2##a person leaves.\n'
                   'BBBBB 1.0 2.0##a person folds clothes.\n')
    v = read_charades_sta('train', root=root)
    assert set(v) == {'AAAAA', 'BBBBB'} and not v['AAAAA'].actions                # MR-only videos
    assert v['AAAAA'].sentences == [Sentence('AAAAA_0', 'a person folds clothes.', ((3.0, 8.0),)),
                                    Sentence('AAAAA_1', 'a person leaves.', ((25.0, 30.0),))]
    assert duplicate_sentences(v) == {'a person folds clothes.': ['AAAAA_0', 'BBBBB_0']}
    sta.write_text('AAAAA 8.0 3.0##ok.\nAAAAA 2.0 a person sits\n')
    with pytest.raises(UniMDError, match=r"charades_sta_train\.txt:2: expected .*a person sits"): read_charades_sta('train', root=root)
    sta.write_text('ZZZZZ 1.0 2.0##who?\n')
    with pytest.raises(UniMDError, match=r"charades_sta_train\.txt:1: video 'ZZZZZ' is not among"): read_charades_sta('train', root=root)

def test_anet_captions_pitfalls(tmp_path):
    (tmp_path / 'anet_captions').mkdir()
    f = tmp_path / 'anet_captions' / 'val_1.json'
    f.write_text(json.dumps({'v_abcdefghijk': {'duration': 10.0, 'timestamps': [[0, 4], [9, 3], [5, 12]],
                                               'sentences': ['One.', '  Two.', ' Three.']}}))
    v = read_anet_captions('val_1', tmp_path)['v_abcdefghijk']
    assert [(s.qid, s.text, s.windows) for s in v.sentences] == [
        ('v_abcdefghijk_0', 'One.', ((0.0, 4.0),)), ('v_abcdefghijk_1', 'Two.', ((3.0, 9.0),)),
        ('v_abcdefghijk_2', 'Three.', ((5.0, 10.0),))]
    f.write_text(json.dumps({'v_x': {'duration': 10.0, 'timestamps': [[0, 4]], 'sentences': ['a', 'b']}}))
    with pytest.raises(UniMDError, match='1 timestamps but 2 sentences'): read_anet_captions('val_1', tmp_path)
    f.write_text('{"v_x": {"duration": 10.0,\n "timestamps": [[0, 4]] "sentences": []}}')
    with pytest.raises(UniMDError, match=r'val_1\.json:2: not valid JSON'): read_anet_captions('val_1', tmp_path)

def test_anet_unknown_class_and_ids(tmp_path):
    (tmp_path / 'anet').mkdir()
    (tmp_path / 'anet' / 'activitynet_v1-3_action_label_mapping.json').write_text(json.dumps(['Archery', 'Ballet']))
    (tmp_path / 'anet' / 'activitynet_v1-3_valid_metadata.csv').write_text(
        'filename,video-duration,fps,video-frames\nv_v_Vg4a8igc0.mp4,36.5,30,1096\nv_abcdefghijk.mp4,20.0,30,600\n')
    gt = tmp_path / 'anet' / 'activitynet_v1-3_valid_tsp_groundtruth.csv'
    head = 'video-name,t-start,t-end,action-label,video-duration,filename,fps,video-frames,temporal-region-label\n'
    gt.write_text(head + 'v_Vg4a8igc0,0.0,36.73,Archery,36.5,v_v_Vg4a8igc0.mp4,30.0,1096,Action\n'
                         'abcdefghijk,1.0,2.0,Ballet,20.0,v_abcdefghijk.mp4,30.0,600,No action\n')
    v = read_anet('val', tmp_path)
    assert v['v_v_Vg4a8igc0'].actions == [Action('Archery', 0.0, 36.5)] and v['v_abcdefghijk'].actions == []
    gt.write_text(head + 'abcdefghijk,1.0,2.0,Knitting,20.0,v_abcdefghijk.mp4,30.0,600,Action\n')
    with pytest.raises(UniMDError, match=r"valid_tsp_groundtruth\.csv:2: unknown class 'Knitting'"): read_anet('val', tmp_path)
    assert [anet_vid(x) for x in ('abcdefghijk', 'v_abcdefghijk', 'v_abcdefghijk.mp4', 'v_Vg4a8igc0')] == \
           ['v_abcdefghijk'] * 3 + ['v_v_Vg4a8igc0']

def test_ego4d_mq_labels_and_zero_length(tmp_path):
    (tmp_path / 'ego4d' / 'mq').mkdir(parents=True)
    db = {'clip1': {'subset': 'validation', 'duration': 480.0, 'annotations': [
              {'label': 'walk_down_stairs_/_walk_up_stairs', 'segment': [10.0, 10.0], 'label_id': 1},
              {'label': 'cut_dough', 'segment': [470.0, 481.5], 'label_id': 0}]},
          'clip2': {'subset': 'training', 'duration': 480.0, 'annotations': []}}
    (tmp_path / 'ego4d' / 'mq' / 'clip_annotations_not_filter.json').write_text(json.dumps({'version': 'v1', 'database': db}))
    v = read_ego4d_mq('val', tmp_path)
    assert list(v) == ['clip1']
    assert v['clip1'].actions == [Action('walk_down_stairs_/_walk_up_stairs', 10.0, 10.0), Action('cut_dough', 470.0, 480.0)]
    assert ego4d_mq_classes(tmp_path) == ['cut_dough', 'walk_down_stairs_/_walk_up_stairs']
    assert read_ego4d_mq('train', tmp_path)['clip2'].actions == []

def test_qvhighlights_malformed_line(tmp_path):
    (tmp_path / 'qvhighlights').mkdir()
    f = tmp_path / 'qvhighlights' / 'highlight_val_release.jsonl'
    f.write_text('{"qid": 1, "query": "a dog runs", "vid": "a", "duration": 150, "relevant_windows": [[0, 4], [10, 160]]}\n'
                 '{"qid": 2, "query": "x"\n')
    with pytest.raises(UniMDError, match=r'highlight_val_release\.jsonl:2: .*"qid": 2'): read_qvhighlights('val', tmp_path)
    f.write_text(f.read_text().splitlines()[0] + '\n')
    assert read_qvhighlights('val', tmp_path)['a'].sentences == [Sentence('1', 'a dog runs', ((0.0, 4.0), (10.0, 150.0)))]

def test_bad_split_names():
    with pytest.raises(UniMDError, match="one of"): read_charades('val')
    with pytest.raises(UniMDError, match="one of"): read_anet('train', source='official')

# ---------------------------------------------------------------- merge, index, writers

def small_videos():
    a = {'v1': Video('v1', 30.0, 'train', [Action('sit', 1, 5)]), 'v2': Video('v2', 20.0, 'train', [Action('run', 0, 3)])}
    b = {'v1': Video('v1', 29.0, 'train', [], [Sentence('q1', 'a person sits.', ((1.0, 29.5),))]),
         'v3': Video('v3', 10.0, 'train', [], [Sentence('q3', 'nobody.', ((2.0, 4.0), (6.0, 8.0)))]),
         'v4': Video('v4', 10.0, 'train')}
    return a, b

def test_merge_and_task_index():
    a, b = small_videos()
    m = merge_videos(a, b)
    assert m['v1'].duration == 30.0 and m['v1'].actions == a['v1'].actions and m['v1'].sentences == b['v1'].sentences
    assert task_index(m) == {'both': ['v1'], 'tad_only': ['v2'], 'mr_only': ['v3']}   # v4 has nothing: left out
    short = merge_videos({'v1': Video('v1', 20.0)}, b)
    assert short['v1'].sentences[0].windows == ((1.0, 20.0),)                            # MR clipped to the TAD duration

def test_writer_round_trips(tmp_path):
    a, b = small_videos()
    m = merge_videos(a, b)
    gt = read_tad_json(write_tad_json(m, tmp_path / 'gt.json'))
    assert gt == {k: Video(k, v.duration, v.subset, v.actions, []) for k, v in m.items()}
    mr = read_mr_jsonl(write_mr_jsonl(m, tmp_path / 'gt.jsonl'), 'train')
    assert mr == {k: Video(k, v.duration, v.subset, [], v.sentences) for k, v in m.items() if v.sentences}
    line = json.loads((tmp_path / 'gt.jsonl').read_text().splitlines()[1])
    assert line == {'qid': 'q3', 'query': 'nobody.', 'vid': 'v3', 'duration': 10.0, 'relevant_windows': [[2.0, 4.0], [6.0, 8.0]]}
    tp = {'v1': {'sit': [Moment(1.0, 4.0, 0.2), Moment(0.5, 5.0, 0.9)], 'run': [Moment(3.0, 4.0, 0.5)]}}
    assert json.loads(write_tad_predictions(tp, tmp_path / 'p.json').read_text())['results']['v1'][0] == \
           {'segment': [0.5, 5.0], 'label': 'sit', 'score': 0.9}                          # best first
    back = read_tad_predictions(tmp_path / 'p.json')
    assert back['v1']['sit'] == sorted(tp['v1']['sit'], key=lambda x: -x.score) and back['v1']['run'] == tp['v1']['run']
    mp = {'v1': {'q1': [Moment(1.0, 4.0, 0.2), Moment(0.5, 5.0, 0.9)]}}
    line = json.loads(write_mr_predictions(mp, tmp_path / 'p.jsonl').read_text())
    assert line['qid'] == 'q1' and line['pred_relevant_windows'] == [[0.5, 5.0, 0.9], [1.0, 4.0, 0.2]]
    assert read_mr_predictions(tmp_path / 'p.jsonl') == {'v1': {'q1': [Moment(0.5, 5.0, 0.9), Moment(1.0, 4.0, 0.2)]}}
    pj = json.loads(write_tad_json(tp, tmp_path / 'pgt.json').read_text())['database']['v1']
    assert pj['annotations'][0] == {'segment': [0.5, 5.0], 'label': 'sit', 'score': 0.9}
    assert sorted(p.name for p in tmp_path.iterdir()) == ['gt.json', 'gt.jsonl', 'p.json', 'p.jsonl', 'pgt.json']

def test_atomic_file_leaves_old_file_on_failure(tmp_path):
    f = tmp_path / 'out.json'
    with atomic_file(f, 'w') as fh: fh.write('{"old": 1}')
    with pytest.raises(TypeError):
        with atomic_file(f, 'w') as fh: fh.write(None)          # the write itself fails
    assert f.read_text() == '{"old": 1}' and [p.name for p in tmp_path.iterdir()] == ['out.json']
    with atomic_file(tmp_path / 'new' / 'dir' / 'x.txt', 'w') as fh: fh.write('hi')
    assert (tmp_path / 'new' / 'dir' / 'x.txt').read_text() == 'hi'


@pytest.mark.parametrize('umask', [0o022, 0o077, 0o002])
def test_atomic_file_mode_follows_umask(tmp_path, umask):
    "A file written through atomic_file gets the mode open() gives under the same umask (mkstemp alone gives 0600)."
    old = os.umask(umask)
    try:
        with atomic_file(tmp_path / 'atomic.txt', 'w') as fh: fh.write('x')
        with atomic_file(tmp_path / 'atomic.txt', 'w') as fh: fh.write('y')          # replacing keeps the rule
        open(tmp_path / 'plain.txt', 'w').close()
    finally:
        os.umask(old)
    mode = lambda name: stat.S_IMODE((tmp_path / name).stat().st_mode)
    assert mode('atomic.txt') == mode('plain.txt') == 0o666 & ~umask
