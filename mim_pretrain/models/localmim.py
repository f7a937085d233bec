"""LocalMIM: local multi-scale reconstruction (Wang et al., CVPR 2023).

An MAE-style encoder (only visible tokens + cls pass the blocks) is tapped at
several blocks; every tap has its own LayerNorm and a small decoder that
reconstructs, at the masked positions only, a target at a scale that gets
coarser with depth: 4x finer than the patch grid after block 1, 2x after
block 3, the patch grid after block depth-3, 2x coarser after the last block
(56/28/14/7 cells at 224 px with 16-px patches).
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..registry import register_pretrain_model
from .vit import Block, VisionTransformer, sincos_pos_embed_2d

SCALES = (4., 2., 1., 0.5)


def random_masking(batch: int, num_tokens: int, mask_ratio: float,
                   device: torch.device
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE's per-sample random masking by sorting noise.

    Returns:
        tuple: ``ids_keep`` ``[B, n_keep]`` (visible token indices, in the
        shuffled order), ``ids_restore`` ``[B, N]`` and the mask ``[B, N]``
        (1 = masked), exactly ``N - int(N * (1 - mask_ratio))`` per sample.
    """
    n_keep = int(num_tokens * (1 - mask_ratio))
    if not 1 <= n_keep < num_tokens:
        raise ValueError(
            f'mask_ratio {mask_ratio} keeps {n_keep} of {num_tokens} '
            'patches; it must keep at least one and mask at least one')
    noise = torch.rand(batch, num_tokens, device=device)
    ids_shuffle = noise.argsort(dim=1)
    ids_restore = ids_shuffle.argsort(dim=1)
    mask = torch.ones(batch, num_tokens, device=device)
    mask[:, :n_keep] = 0
    mask = mask.gather(1, ids_restore)
    return ids_shuffle[:, :n_keep], ids_restore, mask


@register_pretrain_model()
class LocalMIMViT(VisionTransformer):
    """The LocalMIM encoder: the shared ViT, MAE-style, with tapped blocks.

    Args:
        arch: ViT size (see :class:`VisionTransformer`).
        patch_size: patch side.
        mask_ratio: share of patches masked per image (0.75).
        out_indices: tapped blocks; negative values count from the end.
            Default ``(1, 3, -3, -1)`` = LocalMIM's [1, 3, depth-3, depth-1].
        pos_embed: ``'sincos'`` (fixed 2-D sin-cos, as LocalMIM).
        **kwargs: other :class:`VisionTransformer` options.

    Each tap has its own LayerNorm, ``tap_norms.<block index>``, except the
    last block's, which is the encoder's final ``norm``.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 patch_size: int = 16,
                 mask_ratio: float = 0.75,
                 out_indices: Sequence[int] = (1, 3, -3, -1),
                 pos_embed: str = 'sincos',
                 **kwargs) -> None:
        super().__init__(arch=arch, patch_size=patch_size,
                         pos_embed=pos_embed, **kwargs)
        taps = sorted({i % self.depth for i in out_indices})
        if len(taps) != len(out_indices) or any(
                not -self.depth <= i < self.depth for i in out_indices):
            raise ValueError(f'out_indices {tuple(out_indices)} must be '
                             f'distinct blocks of a {self.depth}-block ViT')
        if self.norm is None:
            raise ValueError('LocalMIMViT needs final_norm=True')
        self.out_indices = taps
        self.mask_ratio = mask_ratio
        self.tap_norms = nn.ModuleDict({
            str(i): nn.LayerNorm(self.embed_dims, eps=self.norm.eps)
            for i in taps if i != self.depth - 1
        })

    def forward(self, x: torch.Tensor, mask: Optional[bool] = True
                ) -> Union[Tuple[List[torch.Tensor], torch.Tensor,
                                 torch.Tensor], Tuple[torch.Tensor]]:
        """Encode the visible patches (training) or all of them.

        Args:
            x: images ``[B, C, H, W]``.
            mask: True to mask; None/False for plain feature extraction.

        Returns:
            tuple: with ``mask``: the normalised tap outputs (list, each
            ``[B, 1 + n_visible, C]``), the mask ``[B, h*w]`` (1 = masked)
            and ``ids_restore`` ``[B, h*w]``; without: a 1-tuple of the
            final features ``[B, 1 + h*w, C]``.
        """
        tokens, grid = self.embed(x)
        if not mask:
            return (self.encode_all(tokens, grid), )
        b, n, c = tokens.shape
        cls = self.cls_token.expand(b, -1, -1)
        ids_keep, ids_restore, masks = random_masking(
            b, n, self.mask_ratio, x.device)
        visible = tokens.gather(1, ids_keep[..., None].expand(-1, -1, c))
        last, taps = self.forward_blocks(
            torch.cat([cls, visible], 1), out_indices=self.out_indices)
        outs = []
        for i, tap in zip(self.out_indices, taps):
            outs.append(last if i == self.depth -
                        1 else self.tap_norms[str(i)](tap))
        return outs, masks, ids_restore


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a ``[B, C, H, W]`` map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def rescale_layers(scale: float, dims: int,
                   pool: str = 'avg') -> Tuple[List[nn.Module], int]:
    """Layers that resample a ``[B, dims, h, w]`` map by ``scale``.

    4x: two stride-2 transposed convs (dims -> dims/2 -> dims/4) with
    LayerNorm + GELU between; 2x: one (dims -> dims/2); 1x: nothing;
    0.5x / 0.25x: 2x2 / 4x4 pooling (``'avg'`` or ``'max'``).

    Returns:
        tuple: the layers and their output channels.
    """
    if scale == 4:
        return [
            nn.ConvTranspose2d(dims, dims // 2, 2, 2),
            LayerNorm2d(dims // 2, eps=1e-6),
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
        self.prefix = int(with_cls)
        self.embed = nn.Linear(in_dims, dims)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dims))
        self.block = Block(dims, num_heads, mlp_ratio)
        self.norm = nn.LayerNorm(dims, eps=1e-6)
        self.pred = scale_head(scale, dims, out_channels)
        self._pos: Dict[Tuple, torch.Tensor] = {}

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
        key = (grid, x.device, x.dtype)
        if key not in self._pos:
            self._pos[key] = sincos_pos_embed_2d(c, *grid).to(
                x.device, x.dtype)[None]
        # the cls token's position is zero, as in MAE
        x = torch.cat([x[:, :p], tokens + self._pos[key]], dim=1)
        x = self.norm(self.block(x))[:, p:]
        x = x.transpose(1, 2).reshape(b, c, *grid)
        return self.pred(x)


@register_pretrain_model()
class LocalMIMDecoders(BaseModule):
    """The local decoders of all taps (the algorithm's neck).

    Args:
        in_dims: encoder channels, one number for all taps (ViT) or one per
            tap (Swin).
        scales: output scale of each tap's decoder, shallow to deep.
        out_channels: target channels per cell for each tap.
        dims: decoder width.
        num_heads: decoder heads.
        with_cls: the taps start with a cls token (see
            :class:`LocalDecoder`).
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 in_dims: Union[int, Sequence[int]],
                 scales: Sequence[float] = SCALES,
                 out_channels: Sequence[int] = (27, 27, 27, 27),
                 dims: int = 256,
                 num_heads: int = 8,
                 with_cls: bool = True,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(scales) != len(out_channels):
            raise ValueError(f'{len(scales)} scales but {len(out_channels)} '
                             'out_channels')
        if isinstance(in_dims, int):
            in_dims = [in_dims] * len(scales)
        if len(in_dims) != len(scales):
            raise ValueError(f'{len(in_dims)} in_dims for {len(scales)} '
                             'taps')
        self.scales = tuple(scales)
        self.decoders = nn.ModuleList([
            LocalDecoder(d, c, s, dims, num_heads, with_cls=with_cls)
            for d, s, c in zip(in_dims, scales, out_channels)
        ])

    def init_weights(self) -> None:
        super().init_weights()
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
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
        if isinstance(grid[0], int):
            grid = [grid] * n
        return [dec(t, ids, g) for dec, t, ids, g in zip(
            self.decoders, taps, ids_restore, grid)]


def resample_mask(mask: torch.Tensor, grid: Tuple[int, int],
                  size: Tuple[int, int]) -> torch.Tensor:
    """Patch mask ``[B, h*w]`` on another grid ``[B, H', W']``.

    Repeated (nearest) up to finer grids; average-pooled down to coarser
    ones, which gives fractional weights.
    """
    m = mask.reshape(-1, 1, *grid)
    if size[0] >= grid[0]:
        m = m.repeat_interleave(size[0] // grid[0], 2).repeat_interleave(
            size[1] // grid[1], 3)
    else:
        m = F.avg_pool2d(m, (grid[0] // size[0], grid[1] // size[1]))
    return m[:, 0]


@register_pretrain_model()
class LocalMIMHead(BaseModule):
    """LocalMIM's loss: per-tap masked MSE, summed with weights.

    Args:
        loss_weights: weight of each tap's loss (default all 1).
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 loss_weights: Optional[Sequence[float]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_weights = loss_weights

    def loss(self, preds: List[torch.Tensor], targets: List[torch.Tensor],
             mask: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """Per-tap losses ``[num_taps]``: MSE over the feature dim, averaged
        over the masked cells (with the resampled mask's weights)."""
        out = []
        for pred, target in zip(preds, targets):
            if pred.shape != target.shape:
                raise ValueError(f'prediction {tuple(pred.shape)} and target '
                                 f'{tuple(target.shape)} differ')
            m = resample_mask(mask, grid, target.shape[-2:])
            err = (pred.float() - target.float()).pow(2).mean(dim=1)
            out.append((err * m).sum() / m.sum())
        return torch.stack(out)

    def weights(self, n: int) -> List[float]:
        w = list(self.loss_weights) if self.loss_weights else [1.] * n
        if len(w) != n:
            raise ValueError(f'{len(w)} loss_weights for {n} taps')
        return w


@register_pretrain_model()
class LocalMIM(BaseSelfSupervisor):
    """LocalMIM pretraining (mmpretrain self-supervisor).

    ``backbone``: :class:`LocalMIMViT`; ``neck``: :class:`LocalMIMDecoders`;
    ``head``: :class:`LocalMIMHead`; ``target_generator``:
    :class:`HOGTarget` or :class:`PixelTarget`. The cell size of each tap's
    target follows from its decoder's scale: ``patch_size / scale``.
    Subclasses for other encoders override :meth:`cells_from_cfg`,
    :meth:`tap_cells` and :meth:`predict_targets`.
    """

    # the log names each tap's loss ``loss_<tap_name><index>``
    tap_name = 'block'

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 target_generator: dict, **kwargs) -> None:
        if isinstance(target_generator, dict):
            target_generator = MODELS.build(target_generator)
        # the decoders' output sizes follow from the target and the scales
        if isinstance(neck, dict) and neck.get('out_channels') is None:
            neck = dict(neck, out_channels=[
                target_generator.out_channels(c)
                for c in type(self).cells_from_cfg(backbone, neck)
            ])
        super().__init__(
            backbone=backbone, neck=neck, head=head,
            target_generator=target_generator, **kwargs)
        self.cells = self.tap_cells()
        if len(self.neck.scales) != len(self.backbone.out_indices):
            raise ValueError(f'{len(self.backbone.out_indices)} taps '
                             f'{self.backbone.out_indices} but '
                             f'{len(self.neck.scales)} decoder scales')
        for dec, cell in zip(self.neck.decoders, self.cells):
            want = self.target_generator.out_channels(cell)
            if dec.pred[-1].out_channels != want:
                raise ValueError(
                    f'a decoder of scale {dec.scale} predicts '
                    f'{dec.pred[-1].out_channels} channels but its target '
                    f'({cell}-px cells) has {want}')

    @staticmethod
    def cells_from_cfg(backbone: dict, neck: dict) -> List[int]:
        """Target cell size of each tap, from the configs (before the
        modules are built): ``patch_size / scale``."""
        p = backbone.get('patch_size', 16)
        return [int(p / s) for s in neck.get('scales', SCALES)]

    def tap_cells(self) -> List[int]:
        """Target cell size of each tap, checked to be whole pixels."""
        p = self.backbone.patch_size
        cells = [int(p / s) for s in self.neck.scales]
        if any(p / s != c for s, c in zip(self.neck.scales, cells)):
            raise ValueError(f'patch size {p} and scales {self.neck.scales} '
                             'do not give integer cell sizes')
        return cells

    def extract_feat(self, inputs: torch.Tensor):
        """Features of all patches (no mask)."""
        return self.backbone(inputs, mask=None)

    def predict_targets(self, inputs: torch.Tensor):
        """Encode, decode and build targets: (preds, targets, mask, grid)."""
        taps, mask, ids_restore = self.backbone(inputs)
        p = self.backbone.patch_size
        grid = (inputs.shape[-2] // p, inputs.shape[-1] // p)
        preds = self.neck(taps, ids_restore, grid)
        targets = self.target_generator.multi_scale(inputs, self.cells)
        return preds, targets, mask, grid

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """``loss``: the weighted sum that is optimised; ``loss_block{i}``
        (``loss_<tap_name>{i}``): each tap's unweighted loss, for the log
        (see :meth:`parse_losses`).
        """
        preds, targets, mask, grid = self.predict_targets(inputs)
        per_tap = self.head.loss(preds, targets, mask, grid)
        weights = self.head.weights(len(per_tap))
        losses = dict(loss=sum(w * v for w, v in zip(weights, per_tap)))
        for i, v in zip(self.backbone.out_indices, per_tap):
            losses[f'loss_{self.tap_name}{i}'] = v.detach()
        return losses

    def parse_losses(self, losses: Dict[str, torch.Tensor]
                     ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Optimise ``losses['loss']`` only; log every entry.

        mmengine would sum every key containing "loss", counting the taps
        twice; the per-tap keys keep "loss" in their names so that the
        logger smooths them over the same window as the total.
        """
        log_vars = OrderedDict((k, v.mean()) for k, v in losses.items())
        return losses['loss'], log_vars
