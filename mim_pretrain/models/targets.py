"""Reconstruction targets over square cells: HOG and normalised pixels.

Both map images ``[B, 3, H, W]`` to a feature map ``[B, D, H / cell,
W / cell]`` for any cell size, as batched tensor ops (no loops over cells),
so LocalMIM can ask each tap for the scale of its output grid (4/8/16/32-px
cells at 224 for ViT-B's four taps).
"""
import math
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import register_pretrain_model
from .utils import float32_region, normalize_patches, patchify


@register_pretrain_model()
class HOGTarget(nn.Module):
    """Histograms of oriented gradients per cell (MaskFeat / LocalMIM).

    Per RGB channel a fixed 3x3 Sobel filter (reflect padding) gives the
    gradient ``(gx, gy)``; its magnitude is put, unsplit, into one of
    ``nbins`` orientation bins over [0, pi) (bin ``floor(atan2(gx, gy) / pi *
    nbins) mod nbins``, the convention of the MaskFeat HOG layer LocalMIM
    uses), averaged over each cell, L2-normalised over the bins, and the
    three channels are concatenated: ``D = 3 * nbins``.

    With ``sobel_biases=n`` (the authors' ``--hog_bias``: their ViT-L,
    Swin-B HOG and Swin-L runs) each of the ``n`` targets of
    :meth:`multi_scale` has its own frozen, randomly initialised bias
    ``(bx, by)`` added to the two Sobel responses before magnitude and
    orientation, as their HOG layers (3x3 convolutions with ``bias=True``,
    a weight overwritten with Sobel and PyTorch's default bias init
    ``U(-1/3, 1/3)``, one layer per target scale). On smooth regions the
    gradient is then the bias itself, which changes those targets a lot.
    The biases are drawn from ``bias_seed`` alone (not the global random
    state) and kept as the buffer ``sobel_bias`` ``[n, 2]``, so a run and
    its checkpoint carry the same targets.

    Args:
        nbins: orientation bins (9 for ViT-B, 18 for ViT-L in LocalMIM).
        in_channels: image channels.
        sobel_biases: number of biased targets (one per tap, 0 for none).
        bias_seed: seed of the biases.
    """

    def __init__(self, nbins: int = 9, in_channels: int = 3,
                 sobel_biases: int = 0, bias_seed: int = 0) -> None:
        super().__init__()
        self.nbins = nbins
        self.in_channels = in_channels
        if not isinstance(sobel_biases, int) or sobel_biases < 0:
            raise ValueError('sobel_biases must be a number of targets >= 0, '
                             f'got {sobel_biases!r}')
        self.sobel_biases = sobel_biases
        if sobel_biases:
            gen = torch.Generator().manual_seed(bias_seed)
            # nn.Conv2d's default bias init: U(-1/sqrt(fan_in), ..), fan_in 9
            bias = (torch.rand(sobel_biases, 2, generator=gen) * 2 - 1) / 3
            self.register_buffer('sobel_bias', bias)
        wx = torch.tensor([[1., 0., -1.], [2., 0., -2.], [1., 0., -1.]])
        self.register_buffer(
            'weight_x', wx.view(1, 1, 3, 3).repeat(in_channels, 1, 1, 1),
            False)
        self.register_buffer('weight_y', self.weight_x.transpose(2, 3),
                             False)

    def out_channels(self, cell: int) -> int:
        """Feature size of one cell: ``in_channels * nbins``."""
        return self.in_channels * self.nbins

    def histogram(self, imgs: torch.Tensor,
                  bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Per-pixel orientation histogram ``[B, C, nbins, H, W]``, float32,
        with an optional Sobel bias ``(bx, by)``.

        Always float32, also under autocast: in bf16 the Sobel responses
        keep 8 bits, which moves pixels across orientation bins and zeroes
        the small magnitudes of smooth regions.
        """
        with float32_region(imgs):
            x = F.pad(imgs.float(), (1, 1, 1, 1), mode='reflect')
            gx = F.conv2d(x, self.weight_x.float(), groups=self.in_channels)
            gy = F.conv2d(x, self.weight_y.float(), groups=self.in_channels)
            if bias is not None:
                gx, gy = gx + bias[0].float(), gy + bias[1].float()
            magnitude = torch.sqrt(gx**2 + gy**2)
            phase = torch.atan2(gx, gy) / math.pi * self.nbins
            bins = phase.floor().long() % self.nbins
            # the magnitude in its pixel's bin, 0 in the others: a
            # comparison with the bin ids rather than a scatter into zeros
            # (the same values; one fused kernel under torch.compile, where
            # the scatter hits an inductor C++ codegen error on CPUs)
            ids = torch.arange(self.nbins, device=bins.device)
            hist = (bins.unsqueeze(2) == ids.view(1, 1, -1, 1, 1)).to(
                magnitude.dtype) * magnitude.unsqueeze(2)
        return hist

    @torch.no_grad()
    def forward(self, imgs: torch.Tensor, cell: int) -> torch.Tensor:
        """HOG features ``[B, C * nbins, H / cell, W / cell]``."""
        return self.multi_scale(imgs, [cell])[0]

    @torch.no_grad()
    def multi_scale(self, imgs: torch.Tensor,
                    cells: Sequence[int]) -> List[torch.Tensor]:
        """HOG features for several cell sizes, ``forward(imgs, c)`` for each
        ``c``, from one histogram.

        A cell whose size is a multiple of a smaller one's is averaged from
        that one's already pooled map (an average of equal-sized block
        averages is the block average), so the per-pixel histogram, the
        largest tensor here, is made and pooled once. With
        ``sobel_biases`` every cell has its own biased histogram: ``cells``
        then needs one entry per bias.
        """
        if not self.sobel_biases:
            return self.pool(self.histogram(imgs), cells)
        if len(cells) != self.sobel_biases:
            raise ValueError(f'HOGTarget with sobel_biases='
                             f'{self.sobel_biases} makes one target per '
                             f'bias; got {len(cells)} cells {list(cells)}')
        return [
            self.pool(self.histogram(imgs, bias), [cell])[0]
            for bias, cell in zip(self.sobel_bias, cells)
        ]

    def pool(self, hist: torch.Tensor,
             cells: Sequence[int]) -> List[torch.Tensor]:
        """Cell averages of a per-pixel histogram, L2-normalised over the
        bins, for every cell size (see :meth:`multi_scale`)."""
        b, c, n, h, w = hist.shape
        with float32_region(hist):  # pooling and the L2 norm: float32
            pooled = {1: hist.reshape(b, c * n, h, w)}
            for cell in sorted(set(cells)):
                src = max(k for k in pooled if cell % k == 0)
                pooled[cell] = F.avg_pool2d(pooled[src], cell // src)
            outs = []
            for cell in cells:
                x = pooled[cell]
                x = x.reshape(b, c, n, *x.shape[-2:])
                outs.append(F.normalize(x, p=2, dim=2).flatten(1, 2))
        return outs


@register_pretrain_model()
class PixelTarget(nn.Module):
    """Per-cell normalised pixels: each ``cell x cell x C`` block, flattened
    in MAE's (row, col, channel) order, minus its mean over its (unbiased)
    standard deviation (eps 1e-6).

    Args:
        in_channels: image channels.
        norm_pix: normalise each cell (True in LocalMIM).
    """

    def __init__(self, in_channels: int = 3, norm_pix: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.norm_pix = norm_pix

    def out_channels(self, cell: int) -> int:
        """Feature size of one cell: ``cell * cell * in_channels``."""
        return cell * cell * self.in_channels

    @torch.no_grad()
    def multi_scale(self, imgs: torch.Tensor,
                    cells: Sequence[int]) -> List[torch.Tensor]:
        """``forward(imgs, c)`` for every ``c`` in ``cells``."""
        return [self(imgs, cell) for cell in cells]

    @torch.no_grad()
    def forward(self, imgs: torch.Tensor, cell: int) -> torch.Tensor:
        """Pixel features ``[B, cell * cell * C, H / cell, W / cell]``,
        float32 (also under autocast, see :func:`float32_region`)."""
        b, _, h, w = imgs.shape
        x = patchify(imgs.float(), cell).reshape(b, h // cell, w // cell, -1)
        if self.norm_pix:
            with float32_region(x):
                x = normalize_patches(x)
        return x.permute(0, 3, 1, 2)
