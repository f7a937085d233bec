"""Hooks (mmengine root registry, usable from every scope)."""
import logging
import math
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from ..registry import register_engine

ACTIONS = ('stop', 'skip')


@register_engine(HOOKS)
class FiniteLossHook(Hook):
    """Stop on, or skip, a step whose loss or gradients are NaN or infinite,
    without a host sync of its own.

    How a non-finite step is kept off the weights:

    * float32 / bfloat16 with a fused optimizer (``fused=True`` AdamW, as
      every config here): the gradients are checked on the device after the
      backward (after DDP's all-reduce, so every rank sees the same flag)
      and the flag goes to the fused kernel as ``found_inf``, which leaves
      weights, moments and step count untouched when it is set: no host
      sync, no all-reduce;
    * float16 (a loss scaler): the scaler's own overflow check skips the
      update, as it does for any overflow;
    * any other optimizer: the flag is read on the host before the step
      (one sync per step; logged once at the start).

    The decision (stop, or count the skip) is taken after the iteration,
    from the loss value the runtime-info hook has already copied to the host
    for the log, so reading it costs nothing. It names the iteration whose
    update was skipped: that iteration itself. With gradient accumulation,
    the whole accumulated update of a window with a non-finite step is
    skipped.

    Args:
        action: ``'stop'`` (default) raises ``FloatingPointError`` naming the
            iteration; the weights are those before it. ``'skip'`` logs and
            counts the skipped update (``skipped_nonfinite_steps`` in the
            message hub) and goes on.
        max_skips: with ``'skip'``, stop after this many skipped steps in a
            row (None: never).
    """

    # after RuntimeInfoHook (VERY_HIGH), which syncs the loss for the log,
    # and before the checkpoint hook
    priority = 'HIGH'

    def __init__(self, action: str = 'stop',
                 max_skips: Optional[int] = 10) -> None:
        if action not in ACTIONS:
            raise ValueError(f'FiniteLossHook: action must be one of '
                             f'{ACTIONS}, got {action!r}')
        self.action = action
        self.max_skips = max_skips
        self.skipped = 0
        self._in_a_row = 0
        self._found_inf: Optional[torch.Tensor] = None
        self._host_skipped = False

    def before_train(self, runner) -> None:
        wrapper = runner.optim_wrapper
        if getattr(wrapper, '_finite_loss_guard', False):
            return
        if getattr(wrapper, 'loss_scaler', None) is not None:
            # float16: the scaler already skips non-finite updates
            wrapper._finite_loss_guard = True
            return
        optimizers = (list(wrapper.optim_wrappers.values())
                      if hasattr(wrapper, 'optim_wrappers') else [wrapper])
        for ow in optimizers:
            self._guard(ow)
        if not all(
                getattr(ow.optimizer, '_step_supports_amp_scaling', False)
                for ow in optimizers):
            print_log(
                'FiniteLossHook: the optimizer is not a fused one, so the '
                'gradient check is read on the host before every step (a '
                'sync); fused=True (AdamW, Adam, SGD) avoids it',
                logger='current')
        wrapper._finite_loss_guard = True

    def _guard(self, ow) -> None:
        step = ow.step
        opt = ow.optimizer
        fused = getattr(opt, '_step_supports_amp_scaling', False)

        # eager under mmengine's compile=True (which compiles train_step,
        # optimizer step included): the fused kernel is one kernel already
        @torch.compiler.disable
        def guarded(**kwargs):
            found_inf = nonfinite_grads(opt)
            self._found_inf = found_inf
            if not fused:
                if found_inf.item():
                    self._host_skipped = True
                    return None
                return step(**kwargs)
            opt.found_inf = found_inf
            opt.grad_scale = None
            try:
                return step(**kwargs)
            finally:
                del opt.found_inf, opt.grad_scale

        ow.step = guarded

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        loss = (outputs or {}).get('loss')
        # a host copy made already for the log: no wait here
        value = float(loss.detach().float().mean()) if isinstance(
            loss, torch.Tensor) else (float(loss) if loss is not None else 0.)
        bad = not math.isfinite(value)
        if self._found_inf is not None:
            bad = bad or bool(self._found_inf.item()) or self._host_skipped
        self._found_inf, self._host_skipped = None, False
        if not bad:
            self._in_a_row = 0
            return
        self._non_finite(runner, value)

    def _non_finite(self, runner, value: float) -> None:
        where = f'iteration {runner.iter + 1} (epoch {runner.epoch + 1})'
        what = (f'the loss is {value}' if not math.isfinite(value) else
                f'the loss is {value} but the gradients are not finite')
        advice = (
            'Check: the learning rate and warm-up (too high for this batch '
            'size?), fp16 overflow (use bf16 or a dynamic loss scale), '
            'inputs with NaN/inf (corrupt images), a division by a zero '
            'std in the target normalisation, and the last good checkpoint '
            '(resume from it with --resume). To skip such steps instead, '
            "add custom_hooks=[dict(type='FiniteLossHook', action='skip')].")
        if self.action == 'stop':
            raise FloatingPointError(
                f'{what} at {where} on some rank; training stopped and the '
                f'update of that iteration was not made, so the weights '
                f'are intact. {advice}')
        self.skipped += 1
        self._in_a_row += 1
        print_log(
            f'FiniteLossHook: {what} at {where}: update skipped '
            f'({self.skipped} skipped so far, {self._in_a_row} in a row)',
            logger='current', level=logging.WARNING)
        runner.message_hub.update_info('skipped_nonfinite_steps',
                                       self.skipped)
        if self.max_skips is not None and self._in_a_row >= self.max_skips:
            raise FloatingPointError(
                f'{self._in_a_row} non-finite losses in a row, the last at '
                f'{where}; stopping. {advice}')


def nonfinite_grads(optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """1.0 (float32, on the parameters' device) when any gradient of
    ``optimizer`` has a NaN or inf, else 0.0; computed on the device with
    the loss scaler's own kernel (no host sync)."""
    groups = {}
    for group in optimizer.param_groups:
        for p in group['params']:
            if p.grad is not None:
                groups.setdefault((p.grad.device, p.grad.dtype),
                                  []).append(p.grad)
    if not groups:
        return torch.zeros(())
    device = next(iter(groups))[0]
    found = torch.zeros((), device=device)
    for (dev, _), grads in groups.items():
        flag = torch.zeros((), device=dev)
        torch._amp_foreach_non_finite_check_and_unscale_(
            grads, flag, torch.ones((), device=dev))
        found += flag.to(device)
    return found.clamp_(max=1)


@register_engine(HOOKS)
class Fp16CompressionHook(Hook):
    """Compress DDP's gradient all-reduce to float16 (mmdet's ViTDet).

    mmdet's ``projects/ViTDet`` configs add ``Fp16CompresssionHook`` (three
    s's), which lives in that ``projects/`` folder and so is not in the mmdet
    package; this is the same hook: before training, a
    DistributedDataParallel model gets PyTorch's ``fp16_compress_hook``
    (gradients cast to float16 for the all-reduce, divided by the world
    size, cast back). It halves the gradient traffic; the weights, the
    optimizer and the local gradients keep their dtype.

    Unlike the upstream hook, which skips any run with a
    ``model_wrapper_cfg``, it registers on every DDP wrapper and says so,
    and it logs when there is nothing to compress (one process, or a
    wrapper without DDP's communication hooks).
    """

    def before_train(self, runner) -> None:
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
        from torch.nn.parallel import DistributedDataParallel
        model = runner.model
        if not getattr(runner, 'distributed', False):
            print_log('Fp16CompressionHook: not a distributed run, no '
                      'gradient all-reduce to compress', logger='current')
            return
        if not isinstance(model, DistributedDataParallel):
            print_log(
                f'Fp16CompressionHook: the model wrapper '
                f'{type(model).__name__} is not DistributedDataParallel; '
                'gradients are not compressed', logger='current',
                level=logging.WARNING)
            return
        model.register_comm_hook(
            state=None, hook=default_hooks.fp16_compress_hook)
        print_log(
            f'Fp16CompressionHook: float16 gradient all-reduce on '
            f'{type(model).__name__}', logger='current')
