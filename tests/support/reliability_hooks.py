"""Hooks the reliability tests inject into real tools/train.py runs (via
PYTHONPATH and custom_imports). They record what a run did, or kill it."""
import json
import os
import signal

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from mim_pretrain import compat


def _append(path, record):
    with open(path, 'a') as f:
        f.write(json.dumps(record) + '\n')


def _checksum(model):
    model = getattr(model, 'module', model)
    return float(sum(p.detach().double().sum() for p in model.parameters()))


@HOOKS.register_module()
class RecordLossHook(Hook):
    """Append ``{iter, loss}`` of every step to ``path``."""
    priority = 'LOWEST'

    def __init__(self, path):
        self.path = path

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if get_rank() == 0:
            _append(self.path, dict(iter=runner.iter,
                                    loss=float(outputs['loss'])))


@HOOKS.register_module()
class KillAtIterHook(Hook):
    """SIGKILL the process after the step of iteration ``iteration``
    (1-based), i.e. mid-epoch when the epoch is longer."""
    priority = 'LOWEST'

    def __init__(self, iteration):
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class KillDuringSaveHook(Hook):
    """SIGKILL the process while it writes the checkpoint ``filename``: the
    bytes are written to the temporary file, the rename never happens."""

    def __init__(self, filename):
        self.filename = filename

    def before_train(self, runner):
        replace = compat.os.replace

        def dying_replace(src, dst):
            if os.path.basename(dst) == self.filename:
                os.kill(os.getpid(), signal.SIGKILL)
            return replace(src, dst)

        compat.os.replace = dying_replace


@HOOKS.register_module()
class RankStateHook(Hook):
    """Per rank: weights checksum before/after training, a draw of the step
    stream and the image files of the first batches."""
    priority = 'LOWEST'

    def __init__(self, path, iters=2):
        self.path = path
        self.iters = iters

    def before_train(self, runner):
        _append(self.path, dict(rank=get_rank(), what='initial',
                                value=_checksum(runner.model)))

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter < self.iters:
            state = torch.random.get_rng_state()
            files = [s.img_path for s in data_batch['data_samples']]
            _append(self.path, dict(rank=get_rank(), what='iter',
                                    iter=runner.iter,
                                    rng=int(state.double().sum()),
                                    files=files))

    def after_train(self, runner):
        _append(self.path, dict(rank=get_rank(), what='final',
                                value=_checksum(runner.model)))


@HOOKS.register_module()
class RSSHook(Hook):
    """Resident memory (MiB, from /proc) every ``interval`` iterations."""
    priority = 'LOWEST'

    def __init__(self, path, interval=10):
        self.path = path
        self.interval = interval

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if (runner.iter + 1) % self.interval == 0:
            with open('/proc/self/statm') as f:
                pages = int(f.read().split()[1])
            _append(self.path, dict(iter=runner.iter + 1,
                                    rss_mib=pages * os.sysconf(
                                        'SC_PAGE_SIZE') / 2**20))
