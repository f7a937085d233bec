"""Training for a wall-clock budget instead of a number of iterations."""
import json
import logging
import os.path as osp
import time
from typing import List, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner.loops import IterBasedTrainLoop

from ..registry import register_engine

# what the hook writes in the work dir: one entry per checkpoint it saved
BUDGET_POINTS = 'budget_points.json'


def _type_name(scheduler) -> str:
    return type(scheduler).__name__


@register_engine(HOOKS)
class TimeBudgetHook(Hook):
    """Fit an iteration-based run and its learning-rate schedule into a
    wall-clock budget, and save checkpoints at fractions of it.

    Methods whose iterations cost different amounts are compared at equal
    time, as the LoMaR and LocalMIM papers compare them with MAE, rather
    than at equal iterations. The run's config has an
    ``IterBasedTrainLoop`` (or this toolkit's resumable one) whose
    ``max_iters`` is only an upper bound, a ``LinearLR`` warm-up of a fixed
    number of iterations, and after it one scheduler that runs to the end
    (e.g. ``CosineAnnealingLR``). When the warm-up ends, the hook measures
    how long an iteration takes (over the second half of the warm-up,
    data loading included) and sets the loop's ``max_iters`` and the
    scheduler's ``end`` (and ``T_max``) so that training ends when the
    budget is spent. The scheduler has not started yet at that point, so its
    curve is exactly the one a run configured with that length would
    follow. Should iterations get slower later, training stops when the
    budget is spent (the schedule then ends early) and the log says so.

    The clock starts when training starts (``before_train``: model built,
    weights loaded, the loop's data iterator created) and counts the data
    loading, the steps and the hooks, the checkpoints this hook saves
    excepted.

    Every checkpoint it saves, and the last one, is listed with the training
    time it took to reach it in ``budget_points.json`` in the work dir:
    ``[{"iter": ..., "seconds": ..., "checkpoint": ...}, ...]``, which is
    what a plot of a downstream score against pretraining time reads.

    Args:
        budget_s: the wall-clock budget of the training loop, in seconds.
        save_fractions: also save a checkpoint when these fractions of the
            iterations are done (e.g. ``(1 / 3, 2 / 3)``); the end of
            training is always saved by the checkpoint hook.

    Raises:
        ValueError: a budget that is not positive, a fraction outside
            (0, 1), or (at the start of training) a run that is not
            iteration-based or whose schedulers are not a warm-up followed
            by one scheduler.
    """

    priority = 'LOW'  # after the logger has read the iteration's time

    def __init__(self, budget_s: float,
                 save_fractions: Sequence[float] = ()) -> None:
        if not budget_s > 0:
            raise ValueError(f'TimeBudgetHook: budget_s must be positive, '
                             f'got {budget_s!r}')
        bad = [f for f in save_fractions if not 0 < f < 1]
        if bad:
            raise ValueError('TimeBudgetHook: save_fractions must lie in '
                             f'(0, 1), got {bad}')
        self.budget_s = float(budget_s)
        self.save_fractions = sorted(set(float(f) for f in save_fractions))
        self.save_at: List[int] = []
        self.points: List[dict] = []
        self.paused = 0.0
        self.start: Optional[float] = None
        self.half_done: Optional[float] = None
        self.fitted = False

    def _schedulers(self, runner) -> list:
        schedulers = runner.param_schedulers
        if isinstance(schedulers, dict):  # one list per optimizer
            schedulers = [s for group in schedulers.values() for s in group]
        return list(schedulers or [])

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        if not isinstance(loop, IterBasedTrainLoop):
            raise ValueError(
                'TimeBudgetHook needs an iteration-based train loop '
                f"(train_cfg type='IterBasedTrainLoop'), got "
                f'{type(loop).__name__}')
        scheds = self._schedulers(runner)
        warm = [s for s in scheds if _type_name(s) == 'LinearLR']
        rest = [s for s in scheds if _type_name(s) != 'LinearLR']
        if len(warm) != 1 or len(rest) != 1 or rest[0].begin != warm[0].end:
            raise ValueError(
                'TimeBudgetHook needs param_scheduler = a LinearLR warm-up '
                'and one scheduler that starts where it ends; got '
                f'{[(_type_name(s), s.begin, s.end) for s in scheds]}')
        if warm[0].end < 3 or warm[0].end >= loop.max_iters:
            raise ValueError(
                f'TimeBudgetHook: the warm-up ({warm[0].end} iterations) is '
                'what the speed is measured on; it needs at least 3 '
                f'iterations and fewer than max_iters ({loop.max_iters})')
        if runner.iter > 0:
            raise ValueError(
                'TimeBudgetHook: resuming a time-budget run is not supported '
                f'(resumed at iteration {runner.iter}): the budget would '
                'restart; train it again, or drop the hook and set max_iters')
        self.warmup_end = warm[0].end
        self.half = self.warmup_end // 2
        self.main = rest[0]
        self.start = time.perf_counter()
        print_log(
            f'TimeBudgetHook: training for {self.budget_s:.0f} s; the '
            f'schedule is fitted to it after the {self.warmup_end} warm-up '
            'iterations', logger='current')

    def _elapsed(self) -> float:
        return time.perf_counter() - self.start - self.paused

    def _fit(self, runner) -> None:
        """At the end of the warm-up: the run's length from its speed."""
        done = runner.iter + 1
        elapsed = self._elapsed()
        # the first half of the warm-up (data workers starting, allocator
        # and thread pools warming up) is left out
        per_iter = (elapsed - self.half_done) / (done - self.half)
        total = done + int((self.budget_s - elapsed) / per_iter)
        total = max(done + 1, min(total, runner.train_loop.max_iters))
        runner.train_loop._max_iters = total
        self.main.end = total
        if hasattr(self.main, 'T_max'):
            self.main.T_max = total - self.main.begin
        self.save_at = sorted({max(done, round(f * total))
                               for f in self.save_fractions} - {total})
        self.fitted = True
        print_log(
            f'TimeBudgetHook: {per_iter:.3f} s per iteration over the '
            f'warm-up, so {total} iterations in {self.budget_s:.0f} s; '
            f'{_type_name(self.main)} now ends at {total}' +
            (f'; checkpoints also at iterations {self.save_at}'
             if self.save_at else ''), logger='current')

    def _record(self, runner, checkpoint: str) -> None:
        self.points.append(dict(iter=runner.iter + 1,
                                seconds=round(self._elapsed(), 2),
                                checkpoint=checkpoint))
        with open(osp.join(runner.work_dir, BUDGET_POINTS), 'w') as f:
            json.dump(self.points, f, indent=1)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        done = runner.iter + 1
        if done == self.half:
            self.half_done = self._elapsed()
        if done == self.warmup_end and not self.fitted:
            self._fit(runner)
        if done in self.save_at:
            pause = time.perf_counter()
            name = f'iter_{done}.pth'
            runner.save_checkpoint(runner.work_dir, name,
                                   save_optimizer=False,
                                   save_param_scheduler=False)
            self.paused += time.perf_counter() - pause
            self._record(runner, osp.join(runner.work_dir, name))
        if (self.fitted and done < runner.train_loop.max_iters
                and self._elapsed() >= self.budget_s):
            print_log(
                f'TimeBudgetHook: the {self.budget_s:.0f} s budget is spent '
                f'at iteration {done} of {runner.train_loop.max_iters} '
                '(iterations got slower than in the warm-up); stopping here, '
                'before the schedule ends', logger='current',
                level=logging.WARNING)
            runner.train_loop._max_iters = done
        if done == runner.train_loop.max_iters:
            # saved next by the checkpoint hook (save_last)
            self._record(runner, osp.join(runner.work_dir, f'iter_{done}.pth'))
