"Tests for unimd.ablation: study tables, baselines paired by seed, result files, and one tiny real study run."
import json
import numpy as np
import pandas as pd
import pytest
import torch
from unimd.core import UniMDError
from unimd.config import update_config
from unimd.ablation import (Run, slug, mode, run_config, total_steps, study_metrics, long_rows, paper_long, as_table, deltas,
                            save_results, load_results, run_study, synthetic_config, chance_rows, evaluate_checkpoint,
                            COLUMNS, EGO4D_MIX, steps_per_epoch, match_steps, matched_run, plot_deltas, STUDY_METRICS)


def table():
    return pd.DataFrame([[20.0, None], [None, 10.0], [21.5, 11.0]], index=['ded TAD', 'ded MR', 'co'], columns=['TAD mAP', 'MR R1@50'])


def test_paper_table_round_trip(tmp_path):
    df = paper_long(table(), 'ego4d')
    assert list(df.columns) == COLUMNS and len(df) == 4 and (df.source == 'paper').all()
    back = as_table(load_results(save_results(df, tmp_path / 'r.csv')))
    assert back.fillna(-1).values.tolist() == table().fillna(-1).values.tolist()
    assert list(back.index) == ['ded TAD', 'ded MR', 'co']


def test_load_results_rejects_other_csv(tmp_path):
    (tmp_path / 'x.csv').write_text('a,b\n1,2\n')
    with pytest.raises(UniMDError, match='not a study result file'): load_results(tmp_path / 'x.csv')
    assert load_results(tmp_path / 'missing.csv') is None


def test_deltas_pair_baseline_by_source_and_seed():
    rows = []
    for seed, (ded, co) in enumerate([(10.0, 12.0), (20.0, 21.0)]):
        rows += long_rows('ours', 'synthetic', 'ded TAD', seed, {'TAD mAP': ded}) + long_rows('ours', 'synthetic', 'co', seed, {'TAD mAP': co})
    df = pd.concat([pd.DataFrame(rows, columns=COLUMNS), paper_long(table(), 'ego4d')])
    d = deltas(df, {'TAD': 'ded TAD', 'MR': 'ded MR'})
    assert d.query("source == 'ours' and run == 'co'").delta.tolist() == [2.0, 1.0]       # each seed against its own baseline
    assert d.query("source == 'paper' and run == 'co'").set_index('metric').delta.round(6).to_dict() == {'TAD mAP': 1.5, 'MR R1@50': 1.0}
    assert d.query("run == 'ded TAD'").delta.eq(0).all()
    assert d.seed.isna().sum() == 4                                                     # the paper has no seed


def test_runs_and_configs():
    assert slug('w query, 3 FC') == 'w_query_3_fc' and Run('MR->TAD').name == 'mr_tad' and Run('x', folder='y').name == 'y'
    cfg = run_config(synthetic_config('tiny'), Run('a', {'model': {'lambda_tad': 1.0}, **mode('cotrain', 'alt')}), 7)
    assert (cfg.model.lambda_tad, cfg.train.mode, cfg.train.sampler, cfg.train.seed) == (1.0, 'cotrain', 'alt', 7)
    with pytest.raises(UniMDError, match='unknown config key'): run_config(synthetic_config('tiny'), Run('a', {'train': {'modes': 1}}), 0)
    with pytest.raises(UniMDError, match="'tiny' or 'quick'"): synthetic_config('huge')
    assert total_steps([{'phase': 0, 'step': 5}, {'phase': 0, 'step': 10}, {'phase': 1, 'step': 4}]) == 14
    assert study_metrics({'mr_R5@0.5': 1.0, 'tad_mAP': 2.0}, 'anet') == {'TAD mAP': 2.0, 'MR R5@50': 1.0}


def test_tiny_study_trains_reuses_and_refuses_another_config(tmp_path):
    torch.set_num_threads(1)
    base = update_config(synthetic_config('tiny', **EGO4D_MIX), {'data': {'synthetic': dict(n_train=24, n_test=8, n_classes=4)},
                                                                 'train': dict(epochs=1)})
    runs = [Run('dedicated TAD', mode('tad')), Run('TAD->MR', mode('tad2mr'))]   # TAD->MR: two phases, answers MR only
    df = run_study(base, runs, tmp_path, 'ego4d', log=lambda s: None)
    assert set(df.query("run == 'dedicated TAD'").metric) == {'TAD mAP', 'TAD R1@50'}
    assert set(df.query("run == 'TAD->MR'").metric) == {'MR R1@30', 'MR R1@50'}
    assert df.query("run == 'TAD->MR'").steps.iloc[0] > df.query("run == 'dedicated TAD'").steps.iloc[0]
    m = json.loads((tmp_path / 'tad_mr' / 'seed0' / 'metrics.json').read_text())
    assert len({h['phase'] for h in m['history']}) == 2
    again = run_study(base, runs, tmp_path, 'ego4d', log=lambda s: None)   # read back from metrics.json
    pd.testing.assert_frame_equal(df, again)
    with pytest.raises(UniMDError, match='another config'):
        run_study(update_config(base, {'train': {'lr': 0.5}}), runs[:1], tmp_path, 'ego4d', log=lambda s: None)
    from unimd.synthetic import make_world
    world = make_world(base.data.synthetic)
    test = {k: v for k, v in world.videos.items() if v.subset == 'test'}
    got = evaluate_checkpoint(tmp_path / 'dedicated_tad' / 'seed0', test, world.features, 'ego4d', ('tad',))
    assert np.allclose(list(got.values()), df.query("run == 'dedicated TAD'").value.values)
    ch = chance_rows(base, 'ego4d', seeds=(0, 1))
    assert set(ch.run) == {'chance'} and ch.seed.nunique() == 2 and ch.value.between(0, 100).all()


def test_plot_gives_the_paper_its_own_axes():
    ours = pd.DataFrame(long_rows('ours: synthetic', 'synthetic', 'ded TAD', 0, {'TAD mAP': 10.0, 'TAD x': 1.0})
                        + long_rows('ours: synthetic', 'synthetic', 'co', 0, {'TAD mAP': 20.0, 'TAD x': 2.0}), columns=COLUMNS)
    d = deltas(pd.concat([paper_long(table(), 'ego4d'), ours]), {'TAD': 'ded TAD', 'MR': 'ded MR'})
    axs = plot_deltas(d, ['co'])
    assert axs.shape == (2, 3)                                             # a row per source, a column per metric
    assert not axs[0, 0].get_shared_y_axes().joined(axs[0, 0], axs[1, 0])  # +10 synthetic points never squash +1.5 real
    assert axs[0, 0].get_ylim()[1] < 5 < axs[1, 0].get_ylim()[1]
    assert [t.get_text() for t in axs[0, 2].texts] == ['not reported']    # the paper has no 'TAD x'
    import matplotlib.pyplot as plt; plt.close('all')


def test_step_matched_runs_take_exactly_the_same_steps(tmp_path):
    torch.set_num_threads(1)
    from unimd.synthetic import make_world
    from unimd.checkpoint import load_checkpoint
    from unimd.train import train
    base = synthetic_config('tiny', world='mechanisms')
    world = make_world(base.data.synthetic)
    per_epoch = {m: steps_per_epoch(update_config(base, mode(m)), world) for m in ('tad', 'mr', 'cotrain')}
    assert len(set(per_epoch.values())) > 1                                # the recipes' epochs differ in length
    runs = [Run('dedicated TAD', mode('tad')), Run('dedicated MR', mode('mr')), Run('sync', mode('cotrain', 'sync'))]
    df = run_study(base, runs, tmp_path, 'mechanisms', world=world, log=lambda s: None, steps=5)
    assert set(df.steps) == {5} and set(df.query("run == 'sync'").metric) == set(STUDY_METRICS['mechanisms'])
    assert {load_checkpoint(tmp_path / r.name / 'seed0' / 'checkpoint.pt')['step'] for r in runs} == {5}
    cfg = run_config(base, runs[0], 1)                                     # an interrupted run resumes to exactly the target
    train(match_steps(cfg, 5, world), tmp_path / 'cut', progress=False, stop_after=2, world=world)
    assert load_checkpoint(tmp_path / 'cut' / 'checkpoint.pt')['step'] == 2
    assert matched_run(cfg, tmp_path / 'cut', 5, 'mechanisms', world)['steps'] == 5
    assert load_checkpoint(tmp_path / 'cut' / 'checkpoint.pt')['step'] == 5
    with pytest.raises(UniMDError, match='one phase'): run_study(base, [Run('TAD->MR', mode('tad2mr'))], tmp_path, 'ego4d', world=world, steps=5)
