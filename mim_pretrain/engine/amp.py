"""Mixed precision on any device: :class:`MixedPrecisionOptimWrapper`."""
import logging
from contextlib import contextmanager
from typing import Optional, Union

import torch
import torch.nn as nn
from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from ..registry import register_engine

DTYPES = ('auto', 'bfloat16', 'float16')


def bf16_supported(device_type: str) -> bool:
    """Whether ``device_type`` runs bfloat16 natively (CPUs: yes; CUDA:
    compute capability 8.0 (Ampere) or newer, not an emulation)."""
    if device_type == 'cuda':
        return torch.cuda.get_device_capability()[0] >= 8
    return device_type == 'cpu'


def resolve_amp_dtype(dtype: Union[str, torch.dtype, None],
                      device_type: str) -> torch.dtype:
    """The autocast dtype for ``dtype`` (``'auto'`` or None: bfloat16 where
    the device supports it, else float16) on ``device_type``."""
    if isinstance(dtype, torch.dtype):
        dtype = str(dtype).replace('torch.', '')
    if dtype is None:
        dtype = 'auto'
    if dtype not in DTYPES:
        raise ValueError(f'MixedPrecisionOptimWrapper: dtype must be one of '
                         f'{DTYPES}, got {dtype!r}')
    if dtype == 'auto':
        return (torch.bfloat16
                if bf16_supported(device_type) else torch.float16)
    if dtype == 'bfloat16' and not bf16_supported(device_type):
        raise ValueError(
            f'MixedPrecisionOptimWrapper: dtype bfloat16 on a {device_type} '
            'device without native bfloat16 (CUDA needs compute capability '
            ">= 8.0); use dtype='float16' (dynamic loss scale) or 'auto'")
    return getattr(torch, dtype)


@register_engine(OPTIM_WRAPPERS)
class MixedPrecisionOptimWrapper(AmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` that also runs on a CPU and uses
    bfloat16 where it can.

    * ``dtype='auto'`` (default): bfloat16 autocast where the device has it
      (CPUs, CUDA compute capability >= 8.0: A100, H100, H200), else
      float16. ``'bfloat16'`` / ``'float16'`` force one.
    * float16 gets a dynamic loss scale (``loss_scale``, as
      ``AmpOptimWrapper``); bfloat16 has float32's exponent range and gets
      none, which also drops the scaler's per-step overflow check and its
      host sync.
    * Weights, gradients and the optimizer state stay float32: autocast
      only lowers the precision of matmuls and convolutions.
    * On a CPU (mmengine's ``AmpOptimWrapper`` refuses to run there) it
      autocasts on the CPU, so mixed-precision dtype paths can be tested
      without a GPU.

    Args:
        loss_scale: ``'dynamic'``, a float (static) or a dict of
            ``GradScaler`` arguments; used with float16 only.
        dtype: ``'auto'``, ``'bfloat16'`` or ``'float16'``.
        device: the autocast device type (default: mmengine's
            ``get_device()``, the device the runner puts the model on).
        **kwargs: ``OptimWrapper`` arguments (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = 'auto',
                 device: Optional[str] = None,
                 **kwargs) -> None:
        # AmpOptimWrapper.__init__ asserts a GPU: set up its state here
        OptimWrapper.__init__(self, **kwargs)
        self.device_type = device or get_device()
        self.cast_dtype = resolve_amp_dtype(dtype, self.device_type)
        self._scale_update_param = None
        self.loss_scaler = None
        if self.cast_dtype == torch.float16:
            scaler = torch.amp.GradScaler
            if loss_scale == 'dynamic':
                self.loss_scaler = scaler(self.device_type)
            elif isinstance(loss_scale, float):
                self._scale_update_param = loss_scale
                self.loss_scaler = scaler(self.device_type,
                                          init_scale=loss_scale)
            elif isinstance(loss_scale, dict):
                self.loss_scaler = scaler(self.device_type, **loss_scale)
            else:
                raise TypeError('loss_scale must be "dynamic", a float or a '
                                f'dict, got {loss_scale!r}')
        print_log(
            f'mixed precision: {str(self.cast_dtype)[6:]} autocast on '
            f'{self.device_type}, ' +
            ('dynamic loss scale' if self.loss_scaler is not None
             and self._scale_update_param is None else
             f'static loss scale {self._scale_update_param}'
             if self.loss_scaler is not None else 'no loss scaling') +
            '; weights and optimizer state stay float32',
            logger='current', level=logging.INFO)

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        """Backward, through the loss scaler under float16."""
        if self.loss_scaler is None:
            OptimWrapper.backward(self, loss, **kwargs)
        else:
            super().backward(loss, **kwargs)

    def step(self, **kwargs) -> None:
        """Optimizer step, through the loss scaler under float16."""
        if self.loss_scaler is None:
            OptimWrapper.step(self, **kwargs)
        else:
            super().step(**kwargs)

    def state_dict(self) -> dict:
        """The optimizer's state, plus the loss scaler's under float16."""
        if self.loss_scaler is None:
            return OptimWrapper.state_dict(self)
        return super().state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state; a loss scaler's state is used under float16 and
        dropped (logged) otherwise, so bf16 and fp16 checkpoints resume
        either way."""
        if self.loss_scaler is None and 'loss_scaler' in state_dict:
            state_dict = dict(state_dict)
            state_dict.pop('loss_scaler')
            print_log('the checkpoint has a loss-scaler state; this run '
                      f'uses {str(self.cast_dtype)[6:]} without one, so it '
                      'is not used', logger='current')
        super().load_state_dict(state_dict)

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Gradient-accumulation context and autocast on ``device_type``."""
        with OptimWrapper.optim_context(self, model), torch.autocast(
                device_type=self.device_type, dtype=self.cast_dtype):
            yield
