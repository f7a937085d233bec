"""Pieces of the main job (the README's first command) and its picture
tools; the whole job runs for minutes and is checked from a fresh clone, not
here."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from mim_pretrain.apis import (BUDGET_CONFIGS, PRETRAIN, budget_options,
                               contact_sheet, epoch_options, main_job_main,
                               pictures, read_budget_points, transfer_options,
                               verdict)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_verdict_says_plainly_whether_pretraining_won():
    rows = [dict(method='lomar', APbox=5.0, APmask=4.0, mIoU=50.0),
            dict(method='scratch', APbox=4.0, APmask=4.5, mIoU=48.0)]
    lines = verdict(rows)
    assert lines[0] == ('LoMaR vs random init: box AP +1.0, mask AP -0.5, '
                        'mIoU +2.0')
    assert lines[1] == ('Above the random initialisation in this one-seed '
                        'run: LoMaR on box AP, mIoU.')
    assert 'One seed per run' in lines[2]
    for row in rows:
        row['mIoU'] = row['APbox'] = 0.
    lines = verdict(rows)
    assert lines[0].startswith('box AP stayed below 1')
    assert lines[1] == 'LoMaR vs random init: mask AP -0.5, mIoU +0.0 (a tie)'
    assert lines[2] == 'No pretrained initialisation beat the random one here.'


def test_verdict_weighs_differences_against_the_seed_range():

    def row(method, mious):
        seeds = [dict(APbox=10., APmask=8., mIoU=v) for v in mious]
        return dict(method=method, APbox=10., APmask=8.,
                    mIoU=sum(mious) / len(mious), seeds=seeds)

    # +3 mean, but the seeds range over 2 and 6 points
    lines = verdict([row('mae', [60., 62.]), row('scratch', [55., 61.])])
    assert 'mIoU +3.0 (within the seed ranges, 8.0 together)' in lines[0]
    assert 'No pretrained initialisation beat' in lines[1]
    assert len(lines) == 2  # several seeds: no one-seed warning
    # +8: more than 2 + 6
    lines = verdict([row('mae', [65., 67.]), row('scratch', [55., 61.])])
    assert lines[1] == 'No pretrained initialisation beat the random one here.'
    lines = verdict([row('mae', [65.5, 67.5]), row('scratch', [55., 61.])])
    assert lines[1] == ('Pretraining beat the random initialisation by more '
                        'than the two seed ranges together: MAE on mIoU.')


def test_verdict_says_when_detection_did_not_get_going():
    rows = [dict(method='localmim', APbox=0.3, APmask=0.0, mIoU=80.0),
            dict(method='scratch', APbox=0.1, APmask=0.0, mIoU=60.0)]
    lines = verdict(rows)
    assert lines[0].startswith('box AP and mask AP stayed below 1 for every '
                               'initialisation')
    assert lines[1] == 'LocalMIM vs random init: mIoU +20.0'
    assert lines[2].startswith('LocalMIM fine-tunes UperNet with its '
                               "authors' learning rate, 4x the others'")
    assert lines[3] == ('Above the random initialisation in this one-seed '
                        'run: LocalMIM on mIoU.')


def test_contact_sheet_enlarges_and_stacks(tmp_path):
    import cv2
    import numpy as np
    files = []
    for i, shape in enumerate([(10, 20, 3), (12, 16, 3)]):
        files.append(str(tmp_path / f'{i}.png'))
        cv2.imwrite(files[-1], np.full(shape, 40 * i, np.uint8))
    out = contact_sheet([('a', files), ('b', files[:1]), ('empty', [])],
                        str(tmp_path / 's.png'))
    sheet = cv2.imread(out)
    # two rows of title 36 + the row's tallest image x 3 + border 8
    assert sheet.shape[0] == (36 + 36 + 8) + (36 + 30 + 8)
    assert sheet.shape[1] == 20 * 3 + 8 + 16 * 3 + 8
    assert contact_sheet([('x', [])], str(tmp_path / 'n.png')) is None


def test_epoch_options_stretch_the_schedule():
    cfg = PRETRAIN['lomar'][1]
    assert epoch_options(cfg, 60) == [
        'train_cfg.max_epochs=60', 'param_scheduler.1.end=60',
        'param_scheduler.1.T_max=58']
    with pytest.raises(SystemExit, match='warm-up'):
        epoch_options(cfg, 2)


def test_budget_options_find_the_hook(tmp_path):
    for config in BUDGET_CONFIGS.values():
        assert budget_options(config, 90) == ['custom_hooks.1.budget_s=90']
    with pytest.raises(ValueError, match='expected one TimeBudgetHook'):
        budget_options(PRETRAIN['lomar'][1], 90)
    with pytest.raises(SystemExit, match='must be positive'):
        budget_options(BUDGET_CONFIGS['lomar'], -1)
    with pytest.raises(SystemExit, match='budget_points.json: not written'):
        read_budget_points(str(tmp_path))


def test_budget_configs_are_the_tiny_configs_for_a_time():
    """The main job's pretraining configs change only the run's length and
    schedule kind, not the model, data or optimizer."""
    from mmengine.config import Config
    for m, config in BUDGET_CONFIGS.items():
        budget = Config.fromfile(osp.join(REPO, config))
        tiny = Config.fromfile(osp.join(REPO, PRETRAIN[m][1]))
        assert budget.model == tiny.model
        assert budget.optim_wrapper == tiny.optim_wrapper
        assert budget.train_dataloader.dataset == \
            tiny.train_dataloader.dataset
        assert budget.train_dataloader.sampler.type == 'InfiniteSampler'
        assert budget.train_cfg.type == 'ResumableIterBasedTrainLoop'
        hook = budget.custom_hooks[1]
        assert (hook.type, hook.budget_s) == ('TimeBudgetHook', 120)


def test_transfer_options_keep_the_schedule_shape():
    assert transfer_options('det', 300) == [
        'train_cfg.max_iters=300', 'default_hooks.checkpoint.interval=300',
        'train_cfg.val_interval=150', 'param_scheduler.0.end=50',
        'param_scheduler.1.end=300', 'param_scheduler.1.milestones=[264,288]']
    assert transfer_options('seg', 200)[2:] == [
        'train_cfg.val_interval=66', 'param_scheduler.0.end=20',
        'param_scheduler.1.begin=20', 'param_scheduler.1.end=200']


@pytest.mark.parametrize('args,message', [
    (['--seeds', '0'], '--seeds must be at least 1'),
    (['--det-iters', '5'], '--det-iters 5: at least 10')])
def test_bad_budgets_fail_before_any_work(tmp_path, args, message):
    with pytest.raises(SystemExit, match=message):
        main_job_main(['--work-dir', str(tmp_path / 'w'), '--data',
                       str(tmp_path / 'd'), *args])
    assert not (tmp_path / 'w').exists() and not (tmp_path / 'd').exists()


def test_main_job_help():
    res = subprocess.run([sys.executable, 'tools/main_job.py', '--help'],
                         cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0 and '--pretrain-minutes' in res.stdout


def test_plot_logs_draws_loss_and_metrics(tmp_path):
    runs = []
    for name, offset in (('a', 0.0), ('b', 0.2)):
        run = tmp_path / name / '20260101_000000' / 'vis_data'
        run.mkdir(parents=True)
        with open(run / 'scalars.json', 'w') as f:
            for it in range(1, 41):
                f.write(json.dumps(dict(lr=1e-3, loss=2 - it / 40 + offset,
                                        epoch=1, iter=it, step=it)) + '\n')
                if it % 20 == 0:
                    f.write(json.dumps({'coco/bbox_mAP': it / 100,
                                        'step': 1}) + '\n')
        runs.append(str(tmp_path / name))
    series = pictures.read_scalars(pictures.find_scalars(runs[0]))
    assert series['coco/bbox_mAP'] == [(20, 0.2), (40, 0.4)]
    assert pictures.default_keys([series]) == ['loss', 'coco/bbox_mAP']
    out = str(tmp_path / 'curves.png')
    pictures.plot_logs_main([*runs, '--out', out, '--names', 'A', 'B'])
    assert osp.getsize(out) > 10000
    with pytest.raises(KeyError, match="'mIoU' is in none of the logs"):
        pictures.plot_logs_main([*runs, '--out', out, '--keys', 'mIoU'])
    with pytest.raises(FileNotFoundError, match='no vis_data/scalars.json'):
        pictures.find_scalars(str(tmp_path))


@pytest.mark.slow
def test_tensorboard_logging_when_switched_on(tmp_path, synthetic_data):
    """A config that adds TensorboardVisBackend writes TensorBoard events
    with the loss in them."""
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    root, _ = synthetic_data
    cfg = tmp_path / 'tb.py'
    cfg.write_text(
        f"_base_ = '{REPO}/mmpretrain_configs/mae/mae_vit-tiny-p8_1xb32-20e_"
        "synthetic.py'\n"
        "visualizer = dict(vis_backends=[dict(type='LocalVisBackend'), "
        "dict(type='TensorboardVisBackend')])\n")
    work = str(tmp_path / 'work')
    res = subprocess.run(
        [sys.executable, 'tools/train.py', str(cfg), '--work-dir', work,
         '--cfg-options', f'train_dataloader.dataset.data_root={root}/'
         'imagenet', 'train_dataloader.dataset.indices=8',
         'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False', 'train_cfg.max_epochs=1',
         'default_hooks.logger.interval=1'],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    events = glob.glob(f'{work}/*/vis_data/events.out.tfevents.*')
    assert len(events) == 1
    acc = EventAccumulator(events[0])
    acc.Reload()
    assert len(acc.Scalars('loss')) == 2


def test_efficiency_plot_draws_points_ranges_and_the_baseline(tmp_path):
    out = str(tmp_path / 'eff.png')
    curves = {'LoMaR': [(40., {'mIoU': [30.]}), (120., {'mIoU': [40., 44.]})],
              'MAE': [(120., {'mIoU': [35., 36., None]})]}
    pictures.plot_efficiency(curves, {'mIoU': [20., 24.]},
                             [('mIoU', 'mIoU')],
                             out, title='t')
    assert osp.getsize(out) > 10000
    with pytest.raises(ValueError, match="no point has 'APbox'"):
        pictures.plot_efficiency(curves, {'mIoU': [20.]},
                                 [('APbox', 'box AP')], out)


def test_main_job_plans_every_step_before_any_work(tmp_path):
    """The default job: 3 seeds of 4 initialisations and one earlier
    checkpoint per method, each to both tasks, 2 at a time, no validation
    inside the transfers, a 1.5-minute budget; --quick: one seed, no
    points, 0.5 minutes. Nothing is written while planning."""
    from mim_pretrain.apis.main_job import MainJob, build_main_job_parser

    def plan(*argv):
        return MainJob(build_main_job_parser().parse_args(
            ['--work-dir', str(tmp_path / 'w'), '--data',
             str(tmp_path / 'd'), *argv]))

    job = plan()
    assert job.plan.kinds.count('det') == job.plan.kinds.count('seg') == \
        4 * 3 + 3 * 1
    assert job.plan.workers == min(2, len(os.sched_getaffinity(0)))
    assert job.budget_opts['lomar'][0].endswith('.budget_s=90')
    assert 'train_cfg.val_begin=41' in job.transfer_opts['mae', 'det']
    assert 'train_cfg.val_begin=81' in job.transfer_opts['scratch', 'seg']
    quick = plan('--quick')
    assert quick.plan.kinds.count('det') == 4 and quick.n_points == 0
    assert quick.budget_opts['mae'][0].endswith('.budget_s=30')
    assert plan('--quick', '--points', '2').n_points == 2
    with pytest.raises(SystemExit, match='--points 3: the pretraining '
                       'configs save 2 earlier checkpoints'):
        plan('--points', '3')
    with pytest.raises(SystemExit, match='--workers must be at least 1'):
        plan('--workers', '0')
    assert not (tmp_path / 'w').exists() and not (tmp_path / 'd').exists()
