"""Image relative position encoding (iRPE) as LoMaR uses it.

LoMaR puts a contextual, "product"-method iRPE on the keys of every attention
block (Wu et al., ICCV 2021; the authors' code configures it with
``ratio=1.9, method='product', mode='ctx', shared_head=True, skip=1,
rpe_on='k'``). For query token i and key token j the attention logit is::

    (q_i . k_j) / sqrt(head_dim) + q_i . w[:, bucket(i, j)]

with the *unscaled* query in the second term, ``w`` a learned
``[head_dim, num_buckets]`` table per block shared by all heads (stored as
``lookup_table_weight`` of shape ``[1, head_dim, num_buckets]``, the
authors' name and shape) and zero-initialised.

Buckets: a relative offset ``d`` along one axis maps to ``d`` itself when
``|d| <= alpha`` and otherwise to
``sign(d) * min(round(alpha + ln(|d| / alpha) / ln(gamma / alpha) *
(beta - alpha)), beta)`` truncated to an integer. With alpha 1.9, beta 3.8,
gamma 15.2 that is ``|d|`` in {2, 3} -> 2 and ``|d| >= 4`` -> 3, so offsets
are clipped and the same table serves any grid. The 2-D bucket is
``(row_bucket + B) * (2B + 1) + (col_bucket + B)`` with ``B = int(beta)``,
49 buckets; every pair that involves a prefix (cls) token gets one extra
bucket, 50 in all.
"""
import math
from typing import Dict, Hashable, Optional, Tuple

import torch
import torch.nn as nn

from .cache import cached


def piecewise_bucket(d: torch.Tensor, alpha: float, beta: float,
                     gamma: float) -> torch.Tensor:
    """Bucket of integer relative offsets along one axis.

    Args:
        d: integer tensor of offsets (any shape).
        alpha: offsets up to this magnitude keep their own bucket.
        beta: the largest bucket magnitude.
        gamma: sets how fast larger offsets are compressed.

    Returns:
        torch.Tensor: long tensor of buckets in ``[-int(beta), int(beta)]``.
    """
    d = d.to(torch.float64)
    mag = d.abs()
    far = alpha + torch.log(mag.clamp(min=1e-12) / alpha) / math.log(
        gamma / alpha) * (beta - alpha)
    far = torch.sign(d) * far.round().clamp(max=beta)
    return torch.where(mag <= alpha, d, far).to(torch.long)


def irpe_bucket_ids(grid_h: int,
                    grid_w: int,
                    num_prefix: int = 1,
                    alpha: float = 1.9,
                    beta: float = 3.8,
                    gamma: float = 15.2) -> torch.Tensor:
    """Bucket index of every (query, key) pair of a token grid.

    Tokens are ``num_prefix`` prefix tokens (the cls token) followed by the
    ``grid_h x grid_w`` patch tokens in raster order.

    Args:
        grid_h: grid rows.
        grid_w: grid columns.
        num_prefix: number of prefix tokens; their pairs use the last bucket.
        alpha: see :func:`piecewise_bucket`.
        beta: see :func:`piecewise_bucket`.
        gamma: see :func:`piecewise_bucket`.

    Returns:
        torch.Tensor: long ``[L, L]`` with ``L = num_prefix + grid_h *
        grid_w``, values in ``[0, num_irpe_buckets(beta) + (num_prefix > 0))``.
    """
    rows = torch.arange(grid_h).repeat_interleave(grid_w)
    cols = torch.arange(grid_w).repeat(grid_h)
    half = int(beta)
    r = piecewise_bucket(rows[:, None] - rows[None, :], alpha, beta, gamma)
    c = piecewise_bucket(cols[:, None] - cols[None, :], alpha, beta, gamma)
    patch = (r + half) * (2 * half + 1) + (c + half)
    if num_prefix == 0:
        return patch
    n = num_prefix + grid_h * grid_w
    ids = torch.full((n, n), num_irpe_buckets(beta), dtype=torch.long)
    ids[num_prefix:, num_prefix:] = patch
    return ids


def num_irpe_buckets(beta: float = 3.8) -> int:
    """Number of 2-D "product" buckets for patch pairs: ``(2 int(beta)+1)^2``.
    """
    return (2 * int(beta) + 1)**2


class IRPEKeyBias(nn.Module):
    """Contextual product iRPE on the keys: the additive attention bias.

    The table always keeps the prefix bucket when ``num_prefix`` is 1, so a
    pretrained table loads unchanged; the tokens given to :meth:`forward` may
    be the grid with its prefix token (pretraining, global attention) or the
    grid alone (windowed attention downstream, where windows have no cls).

    Args:
        head_dim: per-head channels.
        num_prefix: prefix (cls) tokens in front of the grid; 0 or 1.
        alpha: see :func:`piecewise_bucket`.
        beta: see :func:`piecewise_bucket`.
        gamma: see :func:`piecewise_bucket`.
    """

    def __init__(self,
                 head_dim: int,
                 num_prefix: int = 1,
                 alpha: float = 1.9,
                 beta: float = 3.8,
                 gamma: float = 15.2) -> None:
        super().__init__()
        self.num_prefix = num_prefix
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.num_buckets = num_irpe_buckets(beta) + (1 if num_prefix else 0)
        # authors' name and layout: [shared heads = 1, head_dim, buckets]
        self.lookup_table_weight = nn.Parameter(
            torch.zeros(1, head_dim, self.num_buckets))
        self._ids: Dict[Hashable, torch.Tensor] = {}

    def bucket_ids(self, grid: Tuple[int, int], device: torch.device,
                   num_prefix: Optional[int] = None) -> torch.Tensor:
        """Cached ``[L, L]`` bucket indices of a grid (computed once)."""
        prefix = self.num_prefix if num_prefix is None else num_prefix
        return cached(
            self._ids, (grid[0], grid[1], prefix, device),
            lambda: irpe_bucket_ids(grid[0], grid[1], prefix, self.alpha,
                                    self.beta, self.gamma).to(device))

    def forward(self, q: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """Bias ``q_i . w[:, bucket(i, j)]`` for every head and pair.

        Args:
            q: unscaled queries ``[B, heads, L, head_dim]``.
            grid: (rows, cols) of the patch tokens; ``L`` must be
                ``num_prefix + rows * cols`` or ``rows * cols``.

        Returns:
            torch.Tensor: ``[B, heads, L, L]``, to add to the scaled logits.
        """
        b, h, n, _ = q.shape
        prefix = n - grid[0] * grid[1]
        if prefix not in (0, self.num_prefix):
            raise ValueError(
                f'iRPE got {n} tokens for a {grid[0]}x{grid[1]} grid with '
                f'{self.num_prefix} prefix token(s)')
        ids = self.bucket_ids(grid, q.device, prefix)
        # q . w for every bucket, then pick each pair's bucket
        per_bucket = q @ self.lookup_table_weight[0].to(q.dtype)  # B,h,L,nb
        return per_bucket.gather(-1, ids.expand(b, h, n, n))

    def extra_repr(self) -> str:
        return (f'buckets={self.num_buckets}, alpha={self.alpha}, '
                f'beta={self.beta}, gamma={self.gamma}')
