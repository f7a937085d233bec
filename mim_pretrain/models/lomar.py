"""LoMaR: local masked reconstruction (Chen et al., arXiv 2206.00790).

Per image, ``num_windows`` windows of ``window_size x window_size`` patches
are cut from the patch grid; inside each window ``floor(window_size^2 *
mask_ratio)`` patches are replaced by a learned mask token and *all* window
tokens (plus cls) go through the encoder, with position coming only from
iRPE on the keys. A linear head after the final norm predicts the
per-patch-normalised pixels, and the MSE is averaged over masked patches.
"""
import math
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..registry import register_pretrain_model
from .utils import (float32_region, gather_patches, normalize_patches,
                    pretrained_cfg, upcast)
from .vit import VisionTransformer

__all__ = ['LoMaR', 'LoMaRHead', 'LoMaRViT']

SAMPLINGS = ('independent', 'shared')


@register_pretrain_model()
class LoMaRViT(VisionTransformer):
    """The LoMaR encoder: the shared ViT run on masked local windows.

    Args:
        arch: ViT size (see :class:`VisionTransformer`).
        patch_size: patch side.
        window_size: window side in patches (7 in the paper).
        num_windows: windows per image (4 in the paper).
        mask_ratio: share of each window that is masked; the count is
            ``floor(window_size**2 * mask_ratio)`` (39 of 49 in the paper).
        sampling: ``'independent'`` (default, the paper: every image gets
            its own ``num_windows`` random windows) or ``'shared'`` (the
            authors' code: window positions drawn once per batch with
            distinct rows and distinct columns, and image ``i``'s ``t``-th
            window is window ``(i + t * B) % num_windows``, so for a batch
            size divisible by ``num_windows`` each image gets the same window
            ``num_windows`` times, with different masks).
        irpe: iRPE options; ``dict()`` is LoMaR's (alpha 1.9, beta 3.8,
            gamma 15.2, one cls bucket).
        pos_embed: absolute position, ``'none'`` as in LoMaR.
        **kwargs: other :class:`VisionTransformer` options.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 patch_size: int = 16,
                 window_size: int = 7,
                 num_windows: int = 4,
                 mask_ratio: float = 0.8,
                 sampling: str = 'independent',
                 irpe: Optional[dict] = dict(),
                 pos_embed: str = 'none',
                 **kwargs) -> None:
        super().__init__(
            arch=arch, patch_size=patch_size, irpe=irpe, pos_embed=pos_embed,
            **kwargs)
        if sampling not in SAMPLINGS:
            raise ValueError(f'sampling must be one of {SAMPLINGS}, got '
                             f'{sampling!r}')
        if window_size < 1 or num_windows < 1:
            raise ValueError(f'window_size ({window_size}) and num_windows '
                             f'({num_windows}) must be positive')
        self.num_masked = math.floor(window_size**2 * mask_ratio)
        if not 1 <= self.num_masked <= window_size**2 - 1:
            raise ValueError(
                f'mask_ratio {mask_ratio} masks {self.num_masked} of the '
                f'{window_size**2} patches of a window; it must mask at '
                'least one and leave at least one visible')
        self.window_size = window_size
        self.num_windows = num_windows
        self.mask_ratio = mask_ratio
        self.sampling = sampling
        self.mask_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        # (row, col) offsets of a window's patches in raster order
        ws = window_size
        self.register_buffer('_row_offsets',
                             torch.arange(ws).repeat_interleave(ws), False)
        self.register_buffer('_col_offsets', torch.arange(ws).repeat(ws),
                             False)

    def init_weights(self) -> None:
        super().init_weights()
        if not pretrained_cfg(self.init_cfg):
            nn.init.normal_(self.mask_token, std=.02)

    def check_grid(self, grid: Tuple[int, int]) -> None:
        """Raise a clear error when windows cannot be cut from ``grid``."""
        h, w = grid
        if self.window_size > h or self.window_size > w:
            raise ValueError(
                f'window_size {self.window_size} does not fit the {h}x{w} '
                f'patch grid (input {h * self.patch_size}x'
                f'{w * self.patch_size}, patch {self.patch_size})')
        if self.sampling == 'shared' and min(
                h, w) - self.window_size + 1 < self.num_windows:
            raise ValueError(
                f"sampling='shared' draws {self.num_windows} distinct rows "
                f'and columns, but a {h}x{w} grid has only '
                f'{min(h, w) - self.window_size + 1} window positions per '
                'axis')

    def sample_windows(self, batch: int, grid: Tuple[int, int],
                       device: torch.device) -> torch.Tensor:
        """Top-left patch of every window.

        Returns:
            torch.Tensor: long ``[B, num_windows, 2]`` of (row, col).
        """
        self.check_grid(grid)
        h, w = grid
        ws, nw = self.window_size, self.num_windows
        if self.sampling == 'independent':
            rows = torch.randint(0, h - ws + 1, (batch, nw), device=device)
            cols = torch.randint(0, w - ws + 1, (batch, nw), device=device)
        else:
            rows = torch.randperm(h - ws + 1, device=device)[:nw]
            cols = torch.randperm(w - ws + 1, device=device)[:nw]
            which = (torch.arange(batch, device=device)[:, None] +
                     torch.arange(nw, device=device)[None] * batch) % nw
            rows, cols = rows[which], cols[which]
        return torch.stack([rows, cols], dim=-1)

    def window_patch_index(self, origins: torch.Tensor,
                           grid: Tuple[int, int]) -> torch.Tensor:
        """Raster indices of the patches of each window.

        Args:
            origins: ``[B, nw, 2]`` top-left (row, col) of each window.
            grid: the patch grid.

        Returns:
            torch.Tensor: long ``[B, nw, ws*ws]`` indices into ``h*w``.
        """
        rows = origins[..., :1] + self._row_offsets
        cols = origins[..., 1:] + self._col_offsets
        return rows * grid[1] + cols

    def sample_masks(self, batch: int, device: torch.device) -> torch.Tensor:
        """Exactly ``num_masked`` masked patches per window.

        Returns:
            torch.Tensor: bool ``[B, nw, ws*ws]``, True = masked.
        """
        noise = torch.rand(batch, self.num_windows, self.window_size**2,
                           device=device)
        # the lowest-noise patches are masked; MAE's random_masking keeps
        # them, so sharing it would give other masks for the same draws
        rank = noise.argsort(dim=-1).argsort(dim=-1)
        return rank < self.num_masked

    def forward(self,
                x: torch.Tensor,
                mask: Optional[bool] = True
                ) -> Union[Tuple[torch.Tensor, ...], Tuple[torch.Tensor]]:
        """Encode masked windows (training) or the whole image.

        Args:
            x: images ``[B, C, H, W]``.
            mask: True to sample and mask windows; None/False to encode the
                whole image (feature extraction).

        Returns:
            tuple: with ``mask``: window features ``[B*nw, 1 + ws*ws, C]``
            (cls first, final norm applied), the mask ``[B*nw, ws*ws]``
            (bool) and the window patch indices ``[B*nw, ws*ws]``; without:
            a 1-tuple of the features of all tokens ``[B, 1 + h*w, C]``.
        """
        if not mask:
            tokens, grid = self.embed(x)
            return (self.encode_all(tokens, grid), )
        # only the window patches are embedded: the cost does not grow
        # with the image (the patch embedding is per patch)
        x = self.patch_embed.fit(x)
        b, p = x.shape[0], self.patch_size
        grid = (x.shape[-2] // p, x.shape[-1] // p)
        index = self.window_patch_index(
            self.sample_windows(b, grid, x.device), grid)  # B, nw, P
        masks = self.sample_masks(b, x.device)
        win = self.patch_embed.embed_patches(
            gather_patches(x, index.flatten(1), p))  # B, nw*P, C
        pos = self.position(grid, win.device, win.dtype)
        if pos is not None:
            win = win + pos[0, index.flatten(1)]
        win = win.reshape(b * self.num_windows, -1, win.shape[-1])
        masks = masks.reshape(b * self.num_windows, -1)
        win = torch.where(masks[..., None], self.mask_token.to(win.dtype),
                          win)
        cls = self.cls_token.expand(win.shape[0], -1, -1)
        out, _ = self.forward_blocks(
            torch.cat([cls, win], dim=1),
            (self.window_size, self.window_size))
        return out, masks, index.reshape(b * self.num_windows, -1)


@register_pretrain_model()
class LoMaRHead(BaseModule):
    """LoMaR's prediction head and loss: one linear layer to pixels.

    Args:
        embed_dims: encoder channels.
        patch_size: patch side.
        in_channels: image channels.
        norm_pix: per-patch normalised pixel target (LoMaR: True).
        loss: the reconstruction loss config; mmpretrain's
            ``PixelReconstructionLoss`` (L2) averages the squared error over
            pixels, then over masked patches.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 embed_dims: int = 768,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 norm_pix: bool = True,
                 loss: dict = dict(
                     type='PixelReconstructionLoss', criterion='L2'),
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.norm_pix = norm_pix
        self.predictor = nn.Linear(embed_dims,
                                   patch_size**2 * in_channels)
        self.loss_module = MODELS.build(loss)

    def init_weights(self) -> None:
        super().init_weights()
        if not pretrained_cfg(self.init_cfg):
            nn.init.xavier_uniform_(self.predictor.weight)
            nn.init.zeros_(self.predictor.bias)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Pixels of every window patch: ``[B*nw, ws*ws, p*p*C]``."""
        return self.predictor(feats[:, 1:])

    def construct_target(self, imgs: torch.Tensor,
                         patch_index: torch.Tensor) -> torch.Tensor:
        """Pixel targets of the window patches, ``[B*nw, ws*ws, p*p*C]``.

        Args:
            imgs: the (mean/std-normalised) input images ``[B, C, H, W]``.
            patch_index: ``[B*nw, ws*ws]`` window patch indices; rows are
                image-major (``nw`` consecutive rows per image).
        """
        b = imgs.shape[0]
        pixels = gather_patches(imgs, patch_index.reshape(b, -1),
                                self.patch_size)  # B, nw*P, C, p, p
        # MAE's (p, q, c) order inside a patch, as patchify
        target = pixels.permute(0, 1, 3, 4, 2).reshape(
            *patch_index.shape, -1)
        return normalize_patches(target) if self.norm_pix else target

    def loss(self, feats: torch.Tensor, imgs: torch.Tensor,
             patch_index: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Masked-patch reconstruction loss."""
        pred = self(feats)
        # target and loss in float32 under autocast: a bf16 per-patch std is
        # off by up to 0.4%, and bf16 sums of the mask miscount the patches
        with float32_region(pred):
            target = self.construct_target(upcast(imgs), patch_index)
            return self.loss_module(upcast(pred), target,
                                    mask.to(upcast(pred).dtype))


@register_pretrain_model()
class LoMaR(BaseSelfSupervisor):
    """LoMaR pretraining algorithm (mmpretrain self-supervisor).

    ``backbone`` is a :class:`LoMaRViT`, ``head`` a :class:`LoMaRHead`; there
    is no neck (no decoder).
    """

    def extract_feat(self, inputs: torch.Tensor):
        """Features of the whole image (no windows, no mask)."""
        return self.backbone(inputs, mask=None)

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Sample windows and masks, encode, and return the loss."""
        feats, mask, patch_index = self.backbone(inputs)
        loss = self.head.loss(feats, inputs, patch_index, mask)
        return dict(loss=loss)

    @torch.no_grad()
    def reconstruct(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        """One masked-window reconstruction, for visualisation.

        Returns:
            dict: ``pred`` and ``target`` ``[B, nw, ws*ws, p*p*C]`` (in the
            normalised-target space when ``norm_pix``), ``mask`` and
            ``patch_index`` ``[B, nw, ws*ws]``.
        """
        feats, mask, patch_index = self.backbone(inputs)
        pred = self.head(feats)
        target = self.head.construct_target(inputs, patch_index)
        b = inputs.shape[0]
        return dict(
            pred=pred.reshape(b, -1, *pred.shape[1:]),
            target=target.reshape(b, -1, *target.shape[1:]),
            mask=mask.reshape(b, -1, mask.shape[-1]),
            patch_index=patch_index.reshape(b, -1, patch_index.shape[-1]))
