"""Position encodings: fixed sin-cos, relative position tables, and the one
function that resizes every position table to another grid.

iRPE (LoMaR's relative position on the keys) is in :mod:`.irpe`; its buckets
are clipped, so its table serves any grid without resizing.
"""
from typing import Dict, Hashable, Sequence, Tuple

import torch
import torch.nn.functional as F

from .cache import cached


def sincos_pos_embed_2d(embed_dims: int, grid_h: int, grid_w: int,
                        temperature: float = 10000.) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding, MAE's layout.

    The first half of the channels encodes the column, the second half the
    row; each half is ``[sin(pos * omega), cos(pos * omega)]`` with
    ``omega_k = 1 / temperature^(k / (C/4))``.

    Args:
        embed_dims: channels, a multiple of 4.
        grid_h: rows.
        grid_w: columns.
        temperature: the frequency base.

    Returns:
        torch.Tensor: ``[grid_h * grid_w, embed_dims]`` in raster order.
    """
    if embed_dims % 4:
        raise ValueError(f'sin-cos position needs embed_dims % 4 == 0, got '
                         f'{embed_dims}')
    quarter = embed_dims // 4
    omega = 1. / temperature**(
        torch.arange(quarter, dtype=torch.float64) / quarter)
    rows = torch.arange(grid_h, dtype=torch.float64).repeat_interleave(grid_w)
    cols = torch.arange(grid_w, dtype=torch.float64).repeat(grid_h)

    def enc(pos):
        out = pos[:, None] * omega[None]
        return torch.cat([out.sin(), out.cos()], dim=1)

    return torch.cat([enc(cols), enc(rows)], dim=1).float()


class SinCosPosition:
    """The sin-cos position of a token grid, ``[1, h*w, dims]``, computed
    once per (grid, device, dtype) and reused (it is not a parameter).

    Args:
        dims: channels.
    """

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self._tables: Dict[Hashable, torch.Tensor] = {}

    def __call__(self, grid: Tuple[int, int], device: torch.device,
                 dtype: torch.dtype) -> torch.Tensor:
        return cached(
            self._tables, (tuple(grid), device, dtype),
            lambda: sincos_pos_embed_2d(self.dims, *grid).to(device, dtype)[
                None])


def resize_pos_table(table: torch.Tensor, src: Sequence[int],
                     dst: Sequence[int]) -> torch.Tensor:
    """Resize a table whose rows are the cells of a 1-D or a 2-D grid.

    The one resizer of every position table: learned absolute position
    (the ``h x w`` patch grid), the BEiT relative position bias (the
    ``(2h - 1) x (2w - 1)`` grid of offsets) and ViTDet's decomposed tables
    (the ``2s - 1`` offsets of one axis). 2-D grids are resized bicubically,
    1-D ones linearly (``align_corners=False``), in the table's dtype, or in
    float32 for a half-precision table (CPU kernels and the precision of the
    cubic weights), so a float64 model keeps float64 tables.

    Args:
        table: ``[prod(src), C]``, the rows in raster order.
        src: the grid the table was made for (one or two sizes).
        dst: the grid wanted (as many sizes).

    Returns:
        torch.Tensor: ``[prod(dst), C]`` in the table's dtype.
    """
    if len(src) not in (1, 2) or len(dst) != len(src):
        raise ValueError(f'cannot resize a table from a {tuple(src)} grid to '
                         f'{tuple(dst)}: give one or two sizes for both')
    mode = 'linear' if len(src) == 1 else 'bicubic'
    grid = table.t().reshape(1, table.shape[1], *src)
    work = torch.promote_types(table.dtype, torch.float32)
    grid = F.interpolate(grid.to(work), size=tuple(dst), mode=mode,
                         align_corners=False)
    return grid[0].flatten(1).t().to(table.dtype)


def resize_beit_table(table: torch.Tensor, src: Tuple[int, int],
                      dst: Tuple[int, int]) -> torch.Tensor:
    """A BEiT relative position bias table for another grid of offsets.

    Args:
        table: ``[src[0] * src[1] + 3, heads]``: the offsets in raster order,
            then cls->token, token->cls, cls->cls (kept as they are).
        src: (rows, cols) of the table's offset grid, ``(2h - 1, 2w - 1)``
            for an ``h x w`` token grid.
        dst: (rows, cols) of the offset grid wanted.

    Returns:
        torch.Tensor: ``[dst[0] * dst[1] + 3, heads]``.
    """
    return torch.cat([resize_pos_table(table[:-3], src, dst), table[-3:]])


def beit_bias_index(h: int, w: int, prefix: int = 1) -> torch.Tensor:
    """Index into a BEiT relative position bias table for every token pair.

    Patch pair (i, j): ``(dr + h - 1) * (2w - 1) + (dc + w - 1)`` with
    ``(dr, dc)`` = position i - position j; with a cls token: cls->token
    ``T - 3``, token->cls ``T - 2``, cls->cls ``T - 1`` (``T`` the table
    length). Returns a long ``[L, L]``.
    """
    rows = torch.arange(h).repeat_interleave(w)
    cols = torch.arange(w).repeat(h)
    idx = (rows[:, None] - rows[None] + h - 1) * (2 * w - 1) + (
        cols[:, None] - cols[None] + w - 1)
    if not prefix:
        return idx
    total = (2 * h - 1) * (2 * w - 1) + 3
    out = torch.empty(h * w + 1, h * w + 1, dtype=torch.long)
    out[1:, 1:] = idx
    out[0, 1:] = total - 3
    out[1:, 0] = total - 2
    out[0, 0] = total - 1
    return out


def _axis_offsets(size: int, table: torch.Tensor) -> torch.Tensor:
    """``[size, size, C]`` embeddings of every (query, key) offset along one
    axis, the table linearly resized when it was made for another size."""
    length = 2 * size - 1
    if table.shape[0] != length:
        table = resize_pos_table(table, (table.shape[0], ), (length, ))
    coords = torch.arange(size, device=table.device)
    return table[coords[:, None] - coords[None, :] + size - 1]


def decomposed_rel_pos(q: torch.Tensor, grid: Tuple[int, int],
                       table_h: torch.Tensor,
                       table_w: torch.Tensor) -> torch.Tensor:
    """ViTDet's decomposed relative position bias.

    ``bias[i, j] = q_i . Rh[row_i - row_j] + q_i . Rw[col_i - col_j]`` with
    the unscaled query; pairs involving prefix (cls) tokens get 0.

    Args:
        q: ``[B, heads, L, head_dim]`` queries, prefix tokens first.
        grid: (rows, cols) of the grid tokens.
        table_h: ``[2 * rows' - 1, head_dim]``.
        table_w: ``[2 * cols' - 1, head_dim]``.

    Returns:
        torch.Tensor: ``[B, heads, L, L]``.
    """
    h, w = grid
    b, heads, n, d = q.shape
    prefix = n - h * w
    rq = q[:, :, prefix:].reshape(b, heads, h, w, d)
    rel_h = torch.einsum('bnhwc,hkc->bnhwk', rq, _axis_offsets(h, table_h))
    rel_w = torch.einsum('bnhwc,wkc->bnhwk', rq, _axis_offsets(w, table_w))
    bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(
        b, heads, h * w, h * w)
    if prefix:
        bias = F.pad(bias, (prefix, 0, prefix, 0))
    return bias
