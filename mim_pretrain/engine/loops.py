"""Training loops with exact resume.

mmengine's loops resume the model, optimizer, schedulers and counters, but
not where a run was inside its random streams and its data:

* ``EpochBasedTrainLoop`` restarts a resumed epoch from its first batch (the
  batches before the checkpoint are trained twice and the iteration count
  overshoots);
* neither loop restores the random state, so masks, windows and
  augmentations after a resume differ from those of the uninterrupted run.

These loops fix both. The random streams of the main process (``torch``,
``numpy``, ``random``) are re-seeded before every batch is fetched and before
every step, from ``(seed, rank, iteration)``: what a step draws is a function
of its iteration, so a resumed run draws what the uninterrupted run drew, and
ranks draw differently from each other (masks, windows, augmentation) while
the initial weights stay rank 0's (DDP broadcasts them). On resume the
batches of the current epoch that were already trained are fetched (so data
workers advance their own random streams exactly as before) but not trained
on.

Exactness holds for ``num_workers=0`` and for workers that are not
persistent (they are re-created each epoch in both runs); persistent workers
keep their random state across epochs, which a resumed run cannot rebuild.

:func:`mim_pretrain.apis.run.train_main` (``tools/train.py``) uses these
loops in place of mmengine's ``EpochBasedTrainLoop`` and
``IterBasedTrainLoop`` and logs it; a config can also name them directly.
"""
import logging
import random
from typing import Optional

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner.loops import EpochBasedTrainLoop, IterBasedTrainLoop

# phases of an iteration with their own stream
_FETCH, _STEP = 0, 1


def reseed(seed: Optional[int], rank: int, iteration: int,
           phase: int) -> None:
    """Seed torch (CPU and CUDA), numpy and ``random`` for one phase of one
    iteration of one rank.

    Args:
        seed: the run's seed (``runner.seed``); None leaves the streams alone.
        rank: the process rank.
        iteration: the iteration (0-based) the phase belongs to.
        phase: 0 for fetching the batch, 1 for the training step.
    """
    if seed is None:
        return
    state = np.random.SeedSequence(
        [int(seed) % 2**32, rank, iteration, phase]).generate_state(2)
    value = int(state[0]) << 32 | int(state[1])
    torch.manual_seed(value)
    np.random.seed(value % 2**32)
    random.seed(value)


def _describe_dataset(dataset) -> str:
    parts = [type(dataset).__name__]
    for key in ('data_root', 'ann_file'):
        value = getattr(dataset, key, None)
        if value:
            parts.append(f'{key}={value!r}')
    return ' '.join(parts)


def check_not_empty(dataloader, what: str = 'training') -> None:
    """Raise when a dataloader yields no batch.

    Args:
        dataloader: the built dataloader.
        what: its role, for the message.

    Raises:
        ValueError: the dataloader is empty; names the dataset.
    """
    if len(dataloader) == 0:
        dataset = dataloader.dataset
        raise ValueError(
            f'the {what} data gives no batch ({_describe_dataset(dataset)}: '
            f'{len(dataset)} samples, batch size {dataloader.batch_size}, '
            f'drop_last={dataloader.drop_last}): check data_root, ann_file '
            'and the dataset filters (e.g. filter_cfg), so the run does not '
            'train on nothing')


class _ExactResumeMixin:
    """What both loops share: seeding and the empty-data check."""

    def _seed(self, iteration: int, phase: int) -> None:
        reseed(self.runner.seed, get_rank(), iteration, phase)


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(_ExactResumeMixin, EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` with exact mid-epoch resume (module docstring).

    Same arguments as mmengine's ``EpochBasedTrainLoop``.
    """

    def __init__(self, runner, dataloader, max_epochs: int, **kwargs) -> None:
        super().__init__(runner, dataloader, max_epochs, **kwargs)
        check_not_empty(self.dataloader)

    def run_epoch(self) -> None:
        """Iterate one epoch, skipping the batches a resumed run has done."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        length = len(self.dataloader)
        done = self._iter - self._epoch * length
        if not 0 <= done < length:
            raise RuntimeError(
                f'resumed at iteration {self._iter} of epoch {self._epoch}, '
                f'but an epoch has {length} iterations: the dataset or batch '
                'size differs from the run that wrote the checkpoint')
        batches = iter(self.dataloader)
        if done:
            print_log(
                f'Resuming inside epoch {self._epoch + 1}: fetching and '
                f'skipping the {done} batches already trained (the data '
                'order and augmentations stay those of the interrupted run)',
                logger='current', level=logging.INFO)
            for i in range(done):
                self._seed(self._epoch * length + i, _FETCH)
                next(batches)
        for idx in range(done, length):
            self._seed(self._iter, _FETCH)
            data_batch = next(batches)
            self._seed(self._iter, _STEP)
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(_ExactResumeMixin, IterBasedTrainLoop):
    """``IterBasedTrainLoop`` with per-iteration seeding (module docstring).

    Same arguments as mmengine's ``IterBasedTrainLoop``. mmengine already
    skips the trained batches on resume; this loop seeds each fetch and step
    from the iteration so the resumed run draws what the uninterrupted one
    drew.
    """

    def __init__(self, runner, dataloader, max_iters: int, **kwargs) -> None:
        super().__init__(runner, dataloader, max_iters, **kwargs)
        check_not_empty(self.dataloader)

    def run(self) -> torch.nn.Module:
        """Launch training."""
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            print_log(
                f'Resuming at iteration {self._iter}: fetching and skipping '
                'the batches already trained', logger='current',
                level=logging.INFO)
            for i in range(self._iter):
                self._seed(i, _FETCH)
                next(self.dataloader_iterator)
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            self._seed(self._iter, _FETCH)
            data_batch = next(self.dataloader_iterator)
            self._seed(self._iter, _STEP)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None
                    and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model


# mmengine's loop names and their exact-resume replacements
RESUMABLE_LOOPS = {
    'EpochBasedTrainLoop': 'ResumableEpochBasedTrainLoop',
    'IterBasedTrainLoop': 'ResumableIterBasedTrainLoop',
}
