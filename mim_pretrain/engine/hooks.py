"""Hooks (mmengine root registry, usable from every scope)."""
import logging
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

ACTIONS = ('stop', 'skip')


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop on, or skip, a step whose loss is NaN or infinite.

    The check runs before the backward pass (the hook wraps the optimizer
    wrapper's ``update_params``), so a non-finite loss never reaches the
    weights or the optimizer state. In distributed runs the ranks agree (one
    all-reduce of a flag per step) so that they all stop or all skip
    together; a rank that skipped a backward alone would hang DDP.

    Under AMP, gradient overflows with a finite loss are handled by the
    dynamic loss scale of ``AmpOptimWrapper`` (the step is skipped and the
    scale lowered); this hook only sees losses that are already non-finite.

    Args:
        action: ``'stop'`` (default) raises ``FloatingPointError`` naming the
            iteration and the loss terms; ``'skip'`` drops the step (no
            backward, no update), logs it and counts it.
        max_skips: with ``'skip'``, stop after this many skipped steps in a
            row (None: never).
    """

    priority = 'VERY_HIGH'

    def __init__(self, action: str = 'stop',
                 max_skips: Optional[int] = 10) -> None:
        if action not in ACTIONS:
            raise ValueError(f'FiniteLossHook: action must be one of '
                             f'{ACTIONS}, got {action!r}')
        self.action = action
        self.max_skips = max_skips
        self.skipped = 0
        self._in_a_row = 0

    def before_train(self, runner) -> None:
        wrapper = runner.optim_wrapper
        if getattr(wrapper, '_finite_loss_guard', False):
            return
        update = wrapper.update_params

        def guarded(loss: torch.Tensor, *args, **kwargs):
            if self._all_finite(loss):
                self._in_a_row = 0
                return update(loss, *args, **kwargs)
            self._non_finite(runner, loss)

        wrapper.update_params = guarded
        wrapper._finite_loss_guard = True

    @staticmethod
    def _all_finite(loss: torch.Tensor) -> bool:
        flag = torch.isfinite(loss.detach()).all().to(torch.float32)
        if get_world_size() > 1:
            flag = flag.reshape(1)
            torch_dist.all_reduce(flag, op=torch_dist.ReduceOp.MIN)
        return bool(flag.item())

    def _non_finite(self, runner, loss: torch.Tensor) -> None:
        where = (f'iteration {runner.iter + 1} (epoch {runner.epoch + 1})')
        value = loss.detach().float().reshape(-1)[0].item()
        advice = (
            'Check: the learning rate and warm-up (too high for this batch '
            'size?), fp16 overflow (use bf16 or a dynamic loss scale), '
            'inputs with NaN/inf (corrupt images), a division by a zero '
            'std in the target normalisation, and the last good checkpoint '
            '(resume from it with --resume). To skip such steps instead, '
            "add custom_hooks=[dict(type='FiniteLossHook', action='skip')].")
        if self.action == 'stop':
            raise FloatingPointError(
                f'the loss is {value} at {where} on some rank; training '
                f'stopped before the update, so the weights are intact. '
                f'{advice}')
        self.skipped += 1
        self._in_a_row += 1
        runner.optim_wrapper.zero_grad()
        print_log(
            f'FiniteLossHook: loss {value} at {where}: step skipped '
            f'({self.skipped} skipped so far, {self._in_a_row} in a row)',
            logger='current', level=logging.WARNING)
        runner.message_hub.update_info('skipped_nonfinite_steps',
                                       self.skipped)
        if self.max_skips is not None and self._in_a_row >= self.max_skips:
            raise FloatingPointError(
                f'{self._in_a_row} non-finite losses in a row, the last at '
                f'{where}; stopping. {advice}')
