"""The pipeline as library code (mim_pretrain.apis): what each step returns,
the metrics JSON the test step writes, and schedule edits found by type."""
import argparse
import json
import os
import os.path as osp
import sys
import time

import pytest
import torch
from conftest import seg_data_options
from mmengine.config import Config, DictAction

from mim_pretrain import apis
from mim_pretrain.apis import (PRETRAIN, collect_run, config_of, epoch_options,
                               extract_weights, last_checkpoint, read_metrics,
                               summary_row, summary_table, transfer_options,
                               verdict, write_summary)
from mim_pretrain.apis.main_job import Plan, Step

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# ------------------------------------------------ schedule edits by type


def _apply(config, options):
    """``config`` loaded with ``options`` merged, as tools/train.py does."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(parser.parse_args(['--cfg-options',
                                           *options]).cfg_options)
    return {s['type']: s for s in cfg.param_scheduler}


def _reordered(tmp_path, config, name):
    """``config`` with its scheduler list reversed."""
    path = tmp_path / name
    path.write_text(f"_base_ = '{osp.join(REPO, config)}'\n"
                    'param_scheduler = [_base_.param_scheduler[1], '
                    '_base_.param_scheduler[0]]\n')
    return str(path)


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_transfer_options_find_the_schedulers_by_type(task, tmp_path):
    """A config whose schedulers are in the other order gets the same
    edits, at the other indices."""
    config = config_of(task, 'scratch', tiny=True)
    swapped = _reordered(tmp_path, config, f'{task}.py')
    assert [s['type'] for s in Config.fromfile(swapped).param_scheduler
            ][0] != 'LinearLR'
    want = _apply(osp.join(REPO, config), transfer_options(task, 120,
                                                           config))
    got = _apply(swapped, transfer_options(task, 120, swapped))
    assert got == want
    assert want['LinearLR']['end'] == (20 if task == 'det' else 12)
    main = want['MultiStepLR' if task == 'det' else 'PolyLR']
    assert main['end'] == 120
    if task == 'det':
        assert main['milestones'] == [105, 115]
    else:
        assert main['begin'] == 12


def test_epoch_options_find_the_schedulers_by_type(tmp_path):
    config = PRETRAIN['mae'][1]
    swapped = _reordered(tmp_path, config, 'mae.py')
    opts = epoch_options(swapped, 60)
    assert opts[1:] == ['param_scheduler.0.end=60',
                        'param_scheduler.0.T_max=58']
    got = _apply(swapped, opts)
    assert got == _apply(osp.join(REPO, config), epoch_options(config, 60))
    assert got['CosineAnnealingLR']['T_max'] == 58


def test_a_missing_scheduler_is_named(tmp_path):
    config = config_of('seg', 'scratch', tiny=True)
    path = tmp_path / 'no_poly.py'
    path.write_text(f"_base_ = '{osp.join(REPO, config)}'\n"
                    'param_scheduler = [_base_.param_scheduler[0]]\n')
    with pytest.raises(ValueError, match=r'no_poly.py: expected one PolyLR '
                       r"in param_scheduler, found 0 \(its schedulers: "
                       r"\['LinearLR'\]\)"):
        transfer_options('seg', 100, str(path))
    with pytest.raises(ValueError, match='expected one CosineAnnealingLR'):
        epoch_options(str(path), 60)


# ----------------------------------------------------------- the steps


def test_extract_weights_returns_what_it_wrote(tmp_path):
    full = tmp_path / 'full.pth'
    torch.save({'state_dict': {'backbone.w': torch.ones(2),
                               'head.b': torch.zeros(1)},
                'meta': {'epoch': 3, 'hub': object}}, full)
    out = str(tmp_path / 'plain.pth')
    kept = extract_weights(str(full), out, 'backbone.', strip_prefix=True)
    saved = torch.load(out, weights_only=True)
    assert list(kept) == list(saved['state_dict']) == ['w']
    assert saved['meta'] == {'epoch': 3}
    with pytest.raises(SystemExit, match='no tensor key starts with'):
        extract_weights(str(full), out, 'neck.')


def test_extract_weights_half_keeps_integer_tensors(tmp_path):
    full = tmp_path / 'full.pth'
    torch.save({'state_dict': {'backbone.w': torch.full((2, ), 1 / 3),
                               'backbone.idx': torch.arange(3)}}, full)
    out = str(tmp_path / 'half.pth')
    extract_weights(str(full), out, 'backbone.', half=True)
    saved = torch.load(out, weights_only=True)['state_dict']
    assert saved['backbone.w'].dtype == torch.float16
    assert torch.allclose(saved['backbone.w'].float(),
                          torch.full((2, ), 1 / 3), atol=1e-3)
    assert saved['backbone.idx'].dtype == torch.int64


def test_last_checkpoint_reads_mmengines_record(tmp_path):
    with pytest.raises(SystemExit, match='training wrote no checkpoint'):
        last_checkpoint(str(tmp_path))
    ckpt = tmp_path / 'iter_5.pth'
    (tmp_path / 'last_checkpoint').write_text(str(ckpt))
    with pytest.raises(SystemExit, match='recorded but missing'):
        last_checkpoint(str(tmp_path))
    torch.save({}, ckpt)
    assert last_checkpoint(str(tmp_path)) == str(ckpt)


def test_metrics_json_wins_over_the_logs(tmp_path):
    """A work dir's test_metrics.json is what is read; the mmengine logs
    only for work dirs tested without it."""
    work = tmp_path / 'run' / 'seg'
    stamped = work / '20260101_000000'
    stamped.mkdir(parents=True)
    (stamped / '20260101_000000.json').write_text('{"mIoU": 10.0}\n')
    assert read_metrics(str(work), ['mIoU'])['mIoU'] == 10.0
    (work / 'test_metrics.json').write_text('{"mIoU": 42.0, "aAcc": 90.0}')
    got = read_metrics(str(work), ['mIoU'])
    assert (got['mIoU'], got['kind'], got['source']) == (
        42.0, 'test', str(work / 'test_metrics.json'))
    with pytest.raises(ValueError, match='no metrics'):
        read_metrics(str(work), ['coco/bbox_mAP'])


def _fake_tools(monkeypatch, calls, det_ap=0.25, miou=61.0):
    """Replace the child processes of a transfer by what they leave
    behind: a checkpoint record after training, the metrics JSON after a
    test."""

    def run_command(cmd, out=None):
        calls.append(cmd)
        work = cmd[cmd.index('--work-dir') + 1]
        os.makedirs(work, exist_ok=True)
        if 'tools/train.py' in cmd:
            ckpt = osp.join(work, 'iter_10.pth')
            torch.save({}, ckpt)
            with open(osp.join(work, 'last_checkpoint'), 'w') as f:
                f.write(ckpt)
        else:
            metrics = {'coco/bbox_mAP': det_ap, 'coco/segm_mAP': det_ap / 2,
                       'mIoU': miou}
            with open(cmd[cmd.index('--out-metrics') + 1], 'w') as f:
                json.dump(metrics, f)
        return 0

    # the names the transfer steps call: child processes (several GPUs)
    # and, on one device, the tools' entry points in this process
    monkeypatch.setattr('mim_pretrain.apis.transfer.run_command', run_command)
    for tool in ('train', 'test'):
        monkeypatch.setattr(
            f'mim_pretrain.apis.transfer.{tool}_main',
            lambda argv, tool=tool: run_command(
                [sys.executable, f'tools/{tool}.py', *argv]))


def test_transfer_returns_the_metrics_its_tests_wrote(tmp_path, monkeypatch,
                                                      capsys):
    calls = []
    _fake_tools(monkeypatch, calls)
    ckpt = tmp_path / 'pre.pth'
    torch.save({'state_dict': {'backbone.cls_token': torch.ones(1, 1, 4),
                               'neck.x': torch.ones(1)}}, ckpt)
    work = tmp_path / 'run'
    got = apis.transfer_main(['--method', 'lomar', '--checkpoint', str(ckpt),
                              '--tiny', '--ms-flip', '--pretrain-epochs', '3',
                              '--work-dir', str(work)])
    assert got['backbone'] == str(work / 'backbone.pth')
    assert list(torch.load(got['backbone'])['state_dict']) == [
        'backbone.cls_token']
    assert sorted(got['metrics']) == ['det', 'seg', 'seg_ms-flip']
    assert got['metrics']['det']['coco/bbox_mAP'] == 0.25
    # each test wrote its metrics where it was told, and testing the last
    # checkpoint of its training
    tests = [c for c in calls if 'tools/test.py' in c]
    assert [c[c.index('--out-metrics') + 1] for c in tests] == [
        str(work / t / 'test_metrics.json')
        for t in ('det', 'seg', 'seg_ms-flip')]
    assert tests[0][3] == str(work / 'det' / 'iter_10.pth')
    out = capsys.readouterr().out
    assert '| lomar | 3 | 25.0 | 12.5 | 61.0 | 61.0 |' in out
    assert '[transfer 7/7] results' in out
    row = collect_run(str(work))
    assert row['metrics']['seg']['source'] == str(work / 'seg' /
                                                  'test_metrics.json')


def test_summary_rows_table_and_files(tmp_path):
    seeds = [{'det': {'coco/bbox_mAP': 0.02, 'coco/segm_mAP': 0.01},
              'seg': {'mIoU': 60.}},
             {'det': {'coco/bbox_mAP': 0.04, 'coco/segm_mAP': 0.03},
              'seg': {'mIoU': 64.}}]
    rows = [summary_row('mae', seeds, 12.34, 20),
            summary_row('scratch', [{'det': {}, 'seg': {'mIoU': 50.}}] * 2)]
    assert rows[0]['seeds'][1] == dict(APbox=4.0, APmask=3.0, mIoU=64.0)
    assert (rows[0]['APbox'], rows[0]['mIoU'], rows[0]['pretrain_s']) == (
        3.0, 62.0, 12.3)
    assert rows[1]['APbox'] is None
    table = summary_table(rows).splitlines()
    assert table[2] == ('| MAE | 12 s (20 it) | 3.0 (2.0-4.0) | '
                        '2.0 (1.0-3.0) | 62.0 (60.0-64.0) |')
    assert table[3] == '| random init | - | n/a | n/a | 50.0 (50.0-50.0) |'
    outcome = verdict(rows)
    md, js = write_summary(str(tmp_path), rows, outcome, {'curves': []},
                           100.04, 2)
    assert 'mean (lowest-highest) over 2 seeds' in open(md).read()
    assert sorted(json.load(open(js))) == ['outcome', 'pictures', 'points',
                                           'rows', 'total_s']


def test_plan_step_failure_shows_the_log(tmp_path, capsys):
    plan = Plan(['det', 'seg'], {'det': 1, 'seg': 1})
    log = str(tmp_path / 'step.log')

    def fails(out):
        print('what the step said', file=out)
        raise SystemExit('[transfer] failed (train): exit code 1')

    with pytest.raises(SystemExit) as err:
        plan.run('det', 'a step', ['python', 'x.py'], log=log, call=fails)
    assert 'what the step said' in str(err.value.code)
    assert str(err.value.code).endswith(
        '[main] step failed (a step): [transfer] failed (train): exit code '
        f'1; full log: {log}')
    assert plan.run('seg', 'another', ['true'], call=lambda out: 7) == 7
    assert '[main 1/2] another' in capsys.readouterr().out


def test_parallel_steps_overlap_with_their_threads(tmp_path, capsys):
    """Two workers: the steps run two at a time (each sleeps 1 s, with
    a start and end stamp), every child gets the intra-op thread count,
    and each step's output lands in its own log."""
    code = ('import os, sys, time; t0 = time.time(); time.sleep(1); '
            'print(os.environ["OMP_NUM_THREADS"], '
            'os.environ["MKL_NUM_THREADS"], t0, time.time())')
    steps = [Step('seg', f'step {i}', [sys.executable, '-c', code],
                  str(tmp_path / f'{i}.log')) for i in range(4)]
    plan = Plan(['seg'] * 4, {'seg': 1}, workers=2)
    start = time.time()
    plan.run_parallel(steps, threads=3)
    took = time.time() - start
    spans = []
    for i in range(4):
        omp, mkl, t0, t1 = open(tmp_path / f'{i}.log').read().split()
        assert (omp, mkl) == ('3', '3')
        spans.append((float(t0), float(t1)))
    # steps 0 and 1 ran at the same time, and 2 started after one ended
    assert spans[1][0] < spans[0][1] and spans[2][0] >= spans[0][1] - 0.05
    assert took < 6  # four 1-s steps, two at a time (plus start-ups)
    assert len(plan.done) == 4
    assert '[main 4/4] step 3' in capsys.readouterr().out


def test_a_failed_parallel_step_stops_the_others(tmp_path):
    """A failing step ends the run with its log's tail; the step still
    running is killed, not left behind."""
    slow = [sys.executable, '-c', 'import time; time.sleep(30)']
    fails = [sys.executable, '-c', 'print("what went wrong"); '
             'raise SystemExit(3)']
    plan = Plan(['det', 'det'], {'det': 1}, workers=2)
    start = time.time()
    with pytest.raises(SystemExit) as err:
        plan.run_parallel([Step('det', 'slow', slow, str(tmp_path / 'a')),
                           Step('det', 'fails', fails,
                                str(tmp_path / 'b'))], threads=1)
    assert time.time() - start < 10
    message = str(err.value.code)
    assert 'what went wrong' in message
    assert message.endswith(f'[main] step failed (fails): exit code 3; full '
                            f'log: {tmp_path / "b"}')


def test_a_short_pretraining_fails_before_any_work(tmp_path):
    with pytest.raises(SystemExit, match='budget must be positive, got 0 s'):
        apis.main_job_main(['--work-dir', str(tmp_path / 'w'), '--data',
                            str(tmp_path / 'd'), '--pretrain-minutes', '0'])
    assert not (tmp_path / 'w').exists() and not (tmp_path / 'd').exists()


# ----------------------------------------------- the test step, for real


@pytest.mark.slow
def test_test_step_writes_its_metrics_json(tmp_path, synthetic_data):
    """tools/test.py --out-metrics writes the metrics it returns; they are
    what read_metrics / collect_run give back."""
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    root, _ = synthetic_data
    config = config_of('seg', 'scratch', tiny=True)
    cfg = Config.fromfile(osp.join(REPO, config))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'random.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    work = tmp_path / 'run' / 'seg'
    path = str(work / 'test_metrics.json')
    cmd = apis.launch_command('test', config, [
        ckpt, '--work-dir', str(work), '--out-metrics', path,
        '--cfg-options', *seg_data_options(root)])
    with open(tmp_path / 'log.txt', 'w') as log:
        code = apis.run_command(cmd, log)
    assert code == 0, open(tmp_path / 'log.txt').read()[-3000:]
    written = apis.read_test_metrics(path)
    assert set(written) >= {'aAcc', 'mIoU', 'mAcc'}
    assert 0 <= written['mIoU'] <= 100
    row = collect_run(str(tmp_path / 'run'))
    assert row['metrics']['seg'] == dict(written, source=path, kind='test')


def test_no_detection_is_zero_ap_under_cocometric_names():
    """CocoMetric returns nothing for a test set without one detection;
    the test step writes every AP it would have reported as 0.0, only when
    the appended count says there were no detections."""
    from types import SimpleNamespace

    from mmdet.evaluation import CocoMetric

    from mim_pretrain.apis.run import _detection_count, _no_detection_metrics
    runner = SimpleNamespace(test_evaluator=SimpleNamespace(metrics=[
        CocoMetric(metric=['bbox', 'segm', 'proposal'])]))
    filled = _no_detection_metrics(runner, {'coco/num_detections': 0})
    assert filled['coco/bbox_mAP'] == filled['coco/segm_mAP_50'] == 0.
    assert len(filled) == 1 + 2 * 6  # bbox and segm, 6 numbers each
    assert not any('proposal' in k or 'AR' in k for k in filled)
    # detections that CocoMetric scored, or no count at all: untouched
    some = {'coco/num_detections': 3, 'coco/bbox_mAP': 0.1}
    assert _no_detection_metrics(runner, some) == some
    assert _no_detection_metrics(runner, {}) == {}
    count = _detection_count()
    count.process({}, [{'pred_instances': {'labels': torch.zeros(4)}},
                       {'pred_instances': {'labels': torch.zeros(0)}}])
    assert count.compute_metrics(count.results) == {'num_detections': 4}


def test_collect_run_reads_only_the_tasks_asked(tmp_path):
    """A transfer call that ran seg only reads seg, while another call
    is still filling det/ of the same run folder."""
    (tmp_path / 'det').mkdir()
    (tmp_path / 'seg').mkdir()
    with open(tmp_path / 'seg' / 'test_metrics.json', 'w') as f:
        json.dump({'mIoU': 50.}, f)
    assert collect_run(str(tmp_path), ['seg'])['metrics']['seg']['mIoU'] == 50.
    with pytest.raises(ValueError, match='det'):
        collect_run(str(tmp_path))


def test_a_second_run_in_one_process_gets_its_own_visualizer():
    """Train and test in one process (tools/transfer.py): the test run must
    not reuse the training run's visualizer (mmengine keeps one per name),
    or --show-dir is ignored; a lone run keeps the config's name."""
    from mmengine.visualization import Visualizer

    from mim_pretrain.apis.run import _own_visualizer
    name = 'visualizer_of_a_first_run'
    Visualizer.get_instance(name)
    cfg = Config(dict(visualizer=dict(type='Visualizer', name=name)))
    _own_visualizer(cfg)
    assert cfg.visualizer.name == name + '_1'
    lone = Config(dict(visualizer=dict(type='Visualizer',
                                       name='a_name_nobody_made')))
    _own_visualizer(lone)
    assert lone.visualizer.name == 'a_name_nobody_made'
