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

Both keep mmengine's ``run``: the seeding goes through the data iterator
(:class:`SeededFetches`), and the epoch loop's dataloader skips the trained
batches of a resumed epoch (:class:`EpochBatches`). Every config of this
repository names them in ``train_cfg`` (``docs/configs.md``).
"""
import logging
import random
from typing import Iterator, Optional

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner.loops import EpochBasedTrainLoop, IterBasedTrainLoop

from ..registry import register_engine

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


class SeededFetches:
    """An iterator over batches that seeds the random streams around each
    fetch: ``(seed, rank, i, fetch)`` before fetching batch ``i`` and
    ``(seed, rank, i, step)`` after it, for the step that trains on it.

    Args:
        loop: the training loop (its runner's seed is read when used).
        batches: the iterator to fetch from.
        first: the iteration of the first batch fetched.
    """

    def __init__(self, loop, batches: Iterator, first: int = 0) -> None:
        self._loop = loop
        self._batches = batches
        self._next = first

    def __iter__(self) -> 'SeededFetches':
        return self

    def __next__(self):
        i = self._next
        seed = self._loop.runner.seed
        reseed(seed, get_rank(), i, _FETCH)
        batch = next(self._batches)
        reseed(seed, get_rank(), i, _STEP)
        self._next = i + 1
        return batch


class EpochBatches:
    """A training dataloader as an epoch loop iterates it for exact resume.

    Iterating it gives a :class:`SeededFetches` over the dataloader; in an
    epoch a resumed run entered after its start, the batches already
    trained are fetched first (so sampler and workers advance as before)
    and not returned. Every other attribute is the dataloader's.

    Args:
        loop: the epoch-based training loop.
        dataloader: the built dataloader.
    """

    def __init__(self, loop, dataloader) -> None:
        self.loop = loop
        self.dataloader = dataloader
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.dataloader)

    def __getattr__(self, name: str):
        # only reached for names not set in __init__: the dataloader's
        return getattr(self.__dict__['dataloader'], name)

    def __iter__(self) -> SeededFetches:
        loop, length = self.loop, len(self.dataloader)
        start = loop.epoch * length
        done = loop.iter - start
        if not 0 <= done < length:
            raise RuntimeError(
                f'resumed at iteration {loop.iter} of epoch {loop.epoch}, '
                f'but an epoch has {length} iterations: the dataset or batch '
                'size differs from the run that wrote the checkpoint')
        batches = SeededFetches(loop, iter(self.dataloader), start)
        if done:
            print_log(
                f'Resuming inside epoch {loop.epoch + 1}: fetching and '
                f'skipping the {done} batches already trained (the data '
                'order and augmentations stay those of the interrupted run)',
                logger='current', level=logging.INFO)
            for _ in range(done):
                next(batches)
        self.skipped = done
        return batches


@register_engine(LOOPS)
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` with exact mid-epoch resume (module docstring).

    Same arguments and ``run`` as mmengine's ``EpochBasedTrainLoop``; its
    dataloader is wrapped in :class:`EpochBatches`.
    """

    def __init__(self, runner, dataloader, max_epochs: int, **kwargs) -> None:
        super().__init__(runner, dataloader, max_epochs, **kwargs)
        check_not_empty(self.dataloader)
        self.dataloader = EpochBatches(self, self.dataloader)

    def run_iter(self, idx: int, data_batch) -> None:
        """mmengine's step; ``idx`` counts from the epoch's first batch,
        also after a resume that skipped some."""
        super().run_iter(idx + self.dataloader.skipped, data_batch)


@register_engine(LOOPS)
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` with per-iteration seeding (module docstring).

    Same arguments and ``run`` as mmengine's ``IterBasedTrainLoop``, which
    already skips the trained batches on resume; its data iterator is
    wrapped in :class:`SeededFetches`, so the resumed run draws what the
    uninterrupted one drew.
    """

    def __init__(self, runner, dataloader, max_iters: int, **kwargs) -> None:
        super().__init__(runner, dataloader, max_iters, **kwargs)
        check_not_empty(self.dataloader)
        self.dataloader_iterator = SeededFetches(self,
                                                 self.dataloader_iterator)


# mmengine's loop names and their exact-resume replacements
RESUMABLE_LOOPS = {
    'EpochBasedTrainLoop': 'ResumableEpochBasedTrainLoop',
    'IterBasedTrainLoop': 'ResumableIterBasedTrainLoop',
}
