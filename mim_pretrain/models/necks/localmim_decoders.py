"""LocalMIM's local decoders: one small decoder per encoder tap (the
algorithm's neck), shared by the ViT and the Swin versions."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from ...registry import register_pretrain_model
from ..utils import SinCosPosition, rescale_layers, xavier_init_
from ..vit import Block

# output grid / patch grid of each ViT tap's decoder, shallow to deep
SCALES = (4., 2., 1., 0.5)


def scale_head(scale: float, dims: int, out_channels: int) -> nn.Sequential:
    """A local decoder's scale head: resample by ``scale`` (average pooling
    for 0.5x), then a 1x1 conv to ``out_channels``."""
    if scale not in SCALES:
        raise ValueError(f'decoder scale must be one of {SCALES}, got '
                         f'{scale}')
    layers, width = rescale_layers(scale, dims, 'avg')
    return nn.Sequential(*layers, nn.Conv2d(width, out_channels, 1))


class LocalDecoder(nn.Module):
    """One tap's decoder: Linear -> mask tokens + restore order -> sin-cos
    position -> one transformer block -> LayerNorm -> drop cls -> 2-D grid
    -> scale head -> 1x1 conv to the target size.

    Args:
        in_dims: encoder channels.
        out_channels: target channels per cell.
        scale: output grid / patch grid (4, 2, 1 or 0.5).
        dims: decoder width (256).
        num_heads: decoder heads (8).
        mlp_ratio: decoder MLP ratio (4).
        with_cls: the input starts with a cls token (ViT); False for
            encoders without one (Swin).
    """

    def __init__(self,
                 in_dims: int,
                 out_channels: int,
                 scale: float,
                 dims: int = 256,
                 num_heads: int = 8,
                 mlp_ratio: float = 4.,
                 with_cls: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.dims = dims
        self.in_dims = in_dims
        self.out_channels = out_channels
        self.prefix = int(with_cls)
        self.embed = nn.Linear(in_dims, dims)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dims))
        self.block = Block(dim=dims, num_heads=num_heads, mlp_ratio=mlp_ratio)
        self.norm = nn.LayerNorm(dims, eps=1e-6)
        self.pred = scale_head(scale, dims, out_channels)
        self._pos = SinCosPosition(dims)

    def forward(self, x: torch.Tensor, ids_restore: torch.Tensor,
                grid: Tuple[int, int]) -> torch.Tensor:
        """``[B, prefix + n_vis, in_dims]`` -> ``[B, out, h*scale,
        w*scale]``; ``ids_restore`` puts ``[visible, mask tokens]`` back in
        raster order."""
        x = self.embed(x)
        p = self.prefix
        b, n_vis, c = x.shape[0], x.shape[1] - p, x.shape[2]
        n = ids_restore.shape[1]
        tokens = torch.cat(
            [x[:, p:], self.mask_token.expand(b, n - n_vis, -1)], dim=1)
        tokens = tokens.gather(1, ids_restore[..., None].expand(-1, -1, c))
        # the cls token's position is zero, as in MAE
        x = torch.cat(
            [x[:, :p], tokens + self._pos(grid, x.device, x.dtype)], dim=1)
        x = self.norm(self.block(x))[:, p:]
        x = x.transpose(1, 2).reshape(b, c, *grid)
        return self.pred(x)


def per_tap(name: str, value: Union[int, Sequence[int]],
            taps: int) -> List[int]:
    """One value per tap from a number shared by all taps or a sequence;
    an error names the option whose length differs from the scales'."""
    if isinstance(value, int):
        return [value] * taps
    if len(value) != taps:
        raise ValueError(f'{len(value)} {name} for {taps} decoder scales')
    return list(value)


@register_pretrain_model()
class LocalMIMDecoders(BaseModule):
    """The local decoders of all taps (the algorithm's neck).

    Args:
        in_dims: encoder channels, one number for all taps (ViT) or one per
            tap (Swin).
        scales: output scale of each tap's decoder, shallow to deep.
        out_channels: target channels per cell for each tap (the configs
            state them: ``3 * nbins`` for HOG, ``cell * cell * 3`` for
            pixels; :class:`~mim_pretrain.models.LocalMIM` checks them).
        dims: decoder width, one for all taps (the authors' ViT: 256) or one
            per tap (the authors' Swin: 64, 128, 128, 128).
        num_heads: decoder heads, one for all taps or one per tap.
        with_cls: the taps start with a cls token (see
            :class:`LocalDecoder`).
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 in_dims: Union[int, Sequence[int]],
                 scales: Sequence[float] = SCALES,
                 out_channels: Sequence[int] = (27, 27, 27, 27),
                 dims: Union[int, Sequence[int]] = 256,
                 num_heads: Union[int, Sequence[int]] = 8,
                 with_cls: bool = True,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        n = len(scales)
        in_dims, out_channels, dims, num_heads = (
            per_tap(name, value, n) for name, value in (
                ('in_dims', in_dims), ('out_channels', out_channels),
                ('dims', dims), ('num_heads', num_heads)))
        for d, h in zip(dims, num_heads):
            if d % h:
                raise ValueError(f'decoder dims {d} is not a multiple of its '
                                 f'num_heads {h}')
        self.scales = tuple(scales)
        self.decoders = nn.ModuleList([
            LocalDecoder(i, c, s, d, h, with_cls=with_cls)
            for i, s, c, d, h in zip(in_dims, scales, out_channels, dims,
                                     num_heads)
        ])

    def init_weights(self) -> None:
        """MAE's initialisation: xavier Linear layers, mask tokens
        ``N(0, 0.02)``; the convolutions keep PyTorch's."""
        super().init_weights()
        xavier_init_(self)
        for dec in self.decoders:
            nn.init.normal_(dec.mask_token, std=.02)

    def forward(self, taps: List[torch.Tensor],
                ids_restore: Union[torch.Tensor, Sequence[torch.Tensor]],
                grid: Union[Tuple[int, int], Sequence[Tuple[int, int]]]
                ) -> List[torch.Tensor]:
        """Decode every tap; ``ids_restore`` and ``grid`` are shared by all
        taps (ViT) or given per tap (Swin, one grid per stage)."""
        n = len(self.decoders)
        if len(taps) != n:
            raise ValueError(f'{len(taps)} encoder taps for {n} decoders')
        if isinstance(ids_restore, torch.Tensor):
            ids_restore = [ids_restore] * n
        # one (h, w) for every tap; h may be a 0-d tensor under jit tracing
        if not isinstance(grid[0], (tuple, list)):
            grid = [grid] * n
        return [dec(t, ids, g) for dec, t, ids, g in zip(
            self.decoders, taps, ids_restore, grid)]
