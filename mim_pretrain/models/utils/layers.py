"""Layers shared by the encoders, the decoders and the necks.

timm's ``DropPath``, ``LayerScale`` and ``Mlp`` are used as they are: their
state-dict names are the ones this toolkit's checkpoints hold
(``ls1.gamma``, ``mlp.fc1`` / ``mlp.fc2``; ``DropPath`` and the ``Mlp``'s
``act``, ``drop1``, ``norm``, ``drop2`` hold none) and they compute the same
thing with the same random draws (``DropPath``: one ``bernoulli_`` per
sample, divided by the keep probability; ``Mlp`` with ``drop=0``: dropout
is the identity and draws nothing).
"""
from typing import List, Tuple

import torch
import torch.nn as nn
from timm.layers import DropPath, LayerScale, Mlp

__all__ = ['DropPath', 'LayerScale', 'Mlp', 'LayerNorm2d', 'rescale_layers']


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a ``[B, C, H, W]`` map.

    Not mmpretrain's ``LayerNorm2d``, although its parameters have the same
    names: that one returns a ``.contiguous()`` copy, and the (transposed)
    convolutions after it then run other kernels than on this channels-last
    view, which changes seeded losses and gradients at float rounding.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def rescale_layers(scale: float, dims: int, pool: str = 'avg',
                   eps: float = 1e-6) -> Tuple[List[nn.Module], int]:
    """Layers that resample a ``[B, dims, h, w]`` map by ``scale``.

    4x: two stride-2 transposed convs (dims -> dims/2 -> dims/4) with
    LayerNorm + GELU between; 2x: one (dims -> dims/2); 1x: nothing;
    0.5x / 0.25x: 2x2 / 4x4 pooling (``'avg'`` or ``'max'``).

    Args:
        scale: 4, 2, 1, 0.5 or 0.25.
        dims: input channels.
        pool: ``'avg'`` or ``'max'``, for the coarser scales.
        eps: epsilon of the 4x branch's LayerNorm.

    Returns:
        tuple: the layers and their output channels.
    """
    if scale == 4:
        return [
            nn.ConvTranspose2d(dims, dims // 2, 2, 2),
            LayerNorm2d(dims // 2, eps=eps),
            nn.GELU(),
            nn.ConvTranspose2d(dims // 2, dims // 4, 2, 2)
        ], dims // 4
    if scale == 2:
        return [nn.ConvTranspose2d(dims, dims // 2, 2, 2)], dims // 2
    if scale == 1:
        return [], dims
    if scale in (0.5, 0.25):
        k = int(1 / scale)
        return [nn.AvgPool2d(k) if pool == 'avg' else nn.MaxPool2d(k)], dims
    raise ValueError(f'scale must be one of (4, 2, 1, 0.5, 0.25), got '
                     f'{scale}')
