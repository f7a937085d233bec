"""LocalMIM: local multi-scale reconstruction (Wang et al., CVPR 2023).

An MAE-style encoder (only visible tokens + cls pass the blocks) is tapped at
several blocks; every tap has its own LayerNorm and a small decoder
(:class:`~.necks.LocalMIMDecoders`) that reconstructs, at the masked
positions only, a target at a scale that gets coarser with depth: 4x finer
than the patch grid after block 1, 2x after block 3, the patch grid after
block depth-3, 2x coarser after the last block (56/28/14/7 cells at 224 px
with 16-px patches).
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..registry import register_pretrain_model
from .necks.localmim_decoders import SCALES
from .utils import random_masking, resample_mask
from .vit import VisionTransformer


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
    last block's, which is the encoder's final ``norm``. ``tap_dims`` and
    ``tap_strides`` give the channels and the stride of every tap (the
    encoder width and the patch size).
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
        if not isinstance(self.norm, nn.LayerNorm):
            raise ValueError('LocalMIMViT needs final_norm=True')
        self.out_indices = taps
        self.mask_ratio = mask_ratio
        self.tap_dims = [self.embed_dims] * len(taps)
        self.tap_strides = [patch_size] * len(taps)
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

    def weights(self, n: int) -> List[float]:
        """The weight of each of ``n`` taps; an error when ``loss_weights``
        has another length."""
        w = list(self.loss_weights) if self.loss_weights else [1.] * n
        if len(w) != n:
            raise ValueError(f'{len(w)} loss_weights for {n} taps')
        return w

    def loss(self, preds: List[torch.Tensor], targets: List[torch.Tensor],
             mask: torch.Tensor, grid: Tuple[int, int]
             ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The weighted loss and its per-tap parts.

        Args:
            preds: each tap's prediction ``[B, D_i, H_i, W_i]``.
            targets: the targets, of the same shapes.
            mask: the patch (or unit) mask ``[B, h*w]``, 1 = masked.
            grid: ``(h, w)`` of the mask; it is resampled to each target
                grid (repeated up, average-pooled down).

        Returns:
            tuple: the sum of the tap losses with ``loss_weights`` (what is
            optimised) and the unweighted tap losses ``[num_taps]``: MSE
            over the feature dim, averaged over the masked cells.
        """
        out = []
        for pred, target in zip(preds, targets):
            if pred.shape != target.shape:
                raise ValueError(f'prediction {tuple(pred.shape)} and target '
                                 f'{tuple(target.shape)} differ')
            m = resample_mask(mask, grid, target.shape[-2:])
            err = (pred.float() - target.float()).pow(2).mean(dim=1)
            out.append((err * m).sum() / m.sum())
        per_tap = torch.stack(out)
        weights = self.weights(len(per_tap))
        return sum(w * v for w, v in zip(weights, per_tap)), per_tap


@register_pretrain_model()
class LocalMIM(BaseSelfSupervisor):
    """LocalMIM pretraining (mmpretrain self-supervisor).

    ``backbone``: :class:`LocalMIMViT`; ``neck``:
    :class:`~.necks.LocalMIMDecoders`; ``head``: :class:`LocalMIMHead`;
    ``target_generator``: :class:`HOGTarget` or :class:`PixelTarget`. The
    target cell of each tap is its stride over its decoder's scale
    (``patch_size / scale``). The configs state the decoders' ``in_dims``
    and ``out_channels``; the built parts are checked against each other
    once, here, with an error that names the mismatch. Subclasses for other
    encoders set :attr:`tap_name` and override :meth:`neck_defaults` and
    :meth:`predict_targets`.
    """

    # the log names each tap's loss ``loss_<tap_name><index>``
    tap_name = 'block'

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 target_generator: dict, **kwargs) -> None:
        if isinstance(backbone, dict):
            backbone = MODELS.build(backbone)
        if isinstance(target_generator, dict):
            target_generator = MODELS.build(target_generator)
        if isinstance(neck, dict):
            neck = {**self.neck_defaults(backbone), **neck}
        cells = self.tap_cells(
            backbone, neck['scales'] if isinstance(neck, dict) else
            neck.scales)
        super().__init__(
            backbone=backbone, neck=neck, head=head,
            target_generator=target_generator, **kwargs)
        self.cells = cells
        self.check_dims()

    def neck_defaults(self, backbone: nn.Module) -> dict:
        """Neck options that follow from the encoder, under the config's."""
        return dict(scales=SCALES)

    def tap_cells(self, backbone: nn.Module,
                  scales: Sequence[float]) -> List[int]:
        """Target cell of every tap: its stride over its decoder's scale,
        checked to be whole pixels."""
        strides = backbone.tap_strides
        if len(scales) != len(strides):
            raise ValueError(f'{len(strides)} taps {backbone.out_indices} '
                             f'but {len(scales)} decoder scales')
        cells = [int(t / s) for t, s in zip(strides, scales)]
        if any(t / s != c for t, s, c in zip(strides, scales, cells)):
            raise ValueError(f'tap strides {strides} and scales '
                             f'{tuple(scales)} do not give integer cell '
                             'sizes')
        return cells

    def check_dims(self) -> None:
        """Raise when the decoders do not fit the encoder's taps, the
        targets or the loss weights."""
        decoders = self.neck.decoders
        got = [dec.in_dims for dec in decoders]
        if got != list(self.backbone.tap_dims):
            raise ValueError(f'decoder in_dims {got} differ from the '
                             f'{self.tap_name} widths '
                             f'{self.backbone.tap_dims}')
        wants = [self.target_generator.out_channels(c) for c in self.cells]
        for dec, cell, want in zip(decoders, self.cells, wants):
            if dec.out_channels != want:
                raise ValueError(
                    f'a decoder of scale {dec.scale} predicts '
                    f'{dec.out_channels} channels but its target '
                    f'({cell}-px cells) has {want}; the targets need '
                    f'neck.out_channels={wants}')
        self.head.weights(len(decoders))

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
        loss, per_tap = self.head.loss(preds, targets, mask, grid)
        losses = dict(loss=loss)
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
