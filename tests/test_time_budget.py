"""TimeBudgetHook: a run and its cosine schedule fitted to a wall-clock
budget, checked on a toy model whose iterations take a known time."""
import json
import math
import os.path as osp
import time

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

import mim_pretrain  # noqa: F401
from mim_pretrain.engine import BUDGET_POINTS

STEP_S = 0.02  # each toy iteration sleeps this long


class _Sleepy(BaseModel):

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))

    def forward(self, inputs, data_samples=None, mode='loss'):
        time.sleep(STEP_S)
        return dict(loss=(self.w * inputs.float().mean()).sum() ** 2)


class _Data(torch.utils.data.Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.full((2, ), float(i)))


class _RecordLR(Hook):
    priority = 'VERY_LOW'

    def __init__(self):
        self.lrs = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])


def _runner(tmp_path, budget_s, warmup=10, loop='IterBasedTrainLoop',
            schedulers=None, fractions=(0.5, )):
    lr = 0.1
    if schedulers is None:
        schedulers = [
            dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                 begin=0, end=warmup),
            dict(type='CosineAnnealingLR', T_max=10000 - warmup,
                 eta_min=0.001, by_epoch=False, begin=warmup, end=10000)]
    train_cfg = dict(type=loop, max_iters=10000) if 'Iter' in loop else \
        dict(type=loop, max_epochs=3)
    record = _RecordLR()
    runner = Runner(
        model=_Sleepy(), work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=_Data(), batch_size=2, num_workers=0,
            sampler=dict(type='InfiniteSampler', shuffle=False),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr)),
        param_scheduler=schedulers, train_cfg=train_cfg,
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1000),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=100000, save_last=True)),
        custom_hooks=[dict(type='TimeBudgetHook', budget_s=budget_s,
                           save_fractions=fractions), record],
        default_scope='mmengine', log_level='WARNING')
    return runner, record


def test_run_and_schedule_fit_the_budget(tmp_path):
    budget, warmup = 1.2, 10
    runner, record = _runner(tmp_path, budget, warmup)
    t0 = time.perf_counter()
    runner.train()
    took = time.perf_counter() - t0
    total = runner.iter
    # about budget / STEP_S iterations (the sleep dominates each one)
    assert 0.6 * budget / STEP_S < total <= budget / STEP_S + 1
    assert took < budget + 5  # set-up and checkpoints on top of the budget
    points = json.load(open(osp.join(str(tmp_path), BUDGET_POINTS)))
    # (the half is of the length fitted after the warm-up; a run that got
    # slower stops an iteration or so before it)
    assert abs(points[0]['iter'] - 0.5 * total) <= 1.5
    assert points[1]['iter'] == total
    assert all(osp.isfile(p['checkpoint']) for p in points)
    assert points[0]['seconds'] < points[1]['seconds'] <= budget + 0.5
    # the cosine is the one of a run configured with the length fitted
    # after the warm-up (a run that got slower, e.g. on a busy machine,
    # stops before that length, when the budget is spent)
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'TimeBudgetHook')
    fitted = hook.main.end
    assert hook.main.T_max == fitted - warmup and total <= fitted
    base, eta_min = 0.1, 0.001
    for t in range(warmup, total):
        want = eta_min + (base - eta_min) * (
            1 + math.cos(math.pi * (t - warmup) / (fitted - warmup))) / 2
        assert record.lrs[t] == pytest.approx(want, rel=1e-6), t
    # and the warm-up the configured one (mmengine's LinearLR reaches the
    # full rate at its last iteration)
    for t in range(warmup):
        want = base * (0.1 + 0.9 * t / (warmup - 1))
        assert record.lrs[t] == pytest.approx(want, rel=1e-6), t


def test_budget_hook_refuses_what_it_cannot_fit(tmp_path):
    runner, _ = _runner(tmp_path / 'a', 1.0, loop='EpochBasedTrainLoop',
                        schedulers=[dict(type='LinearLR', by_epoch=False,
                                         begin=0, end=5)])
    with pytest.raises(ValueError, match='iteration-based train loop'):
        runner.train()
    runner, _ = _runner(tmp_path / 'b', 1.0, schedulers=[
        dict(type='LinearLR', by_epoch=False, begin=0, end=5),
        dict(type='CosineAnnealingLR', T_max=10, by_epoch=False, begin=8,
             end=20)])
    with pytest.raises(ValueError, match='starts where it ends'):
        runner.train()
    with pytest.raises(ValueError, match='budget_s must be positive'):
        _runner(tmp_path / 'c', 0.0)
    with pytest.raises(ValueError, match='save_fractions'):
        _runner(tmp_path / 'd', 1.0, fractions=(1.5, ))
