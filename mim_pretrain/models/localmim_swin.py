"""LocalMIM on Swin: a masked hierarchical encoder with one tap per stage.

The mask is drawn on the grid of the coarsest stage (32x32-px units for a
patch-4, 4-stage Swin at any input size), so it stays aligned at every stage:
a masked unit is an 8x8 block of tokens at stage 0, 4x4 at stage 1, 2x2 at
stage 2 and one token at stage 3. The encoder runs in one of two modes:

* ``'efficient'`` (LocalMIM / GreenMIM): masked tokens are dropped after the
  patch embedding; window attention runs over the visible tokens only. The
  visible tokens of each window (plain or shifted) are gathered into padded
  ``window x window`` slots; windows without a visible token are dropped and
  empty slots are masked out of the keys. qkv, projection, MLP and patch
  merging see only the visible tokens.
* ``'simple'`` (SimMIM-style): a learned mask token replaces the masked patch
  embeddings and every token goes through the ordinary Swin.

The parameter names are those of the Swin backbones mmdet, mmseg and
mmpretrain ship (``patch_embed.projection``, ``stages.{i}.blocks.{j}.attn.
w_msa.{qkv,proj,relative_position_bias_table}``, ``ffn.layers.{0.0,1}``,
``stages.{i}.downsample.{norm,reduction}`` with nn.Unfold's channel order,
``norm3``), so a pretraining checkpoint loads into them by prefix.
"""
from functools import partial
from typing import Dict, Hashable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_

from ..registry import register_pretrain_model
from .localmim import LocalMIM
from .utils import (DropPath, beit_bias_index, cached, pretrained_cfg,
                    random_masking, resample_mask, xavier_init_)

# name -> (embed_dims, depths, num_heads), Swin's published sizes
SWIN_ARCHS: Dict[str, Tuple[int, Tuple[int, ...], Tuple[int, ...]]] = {
    'tiny': (96, (2, 2, 6, 2), (3, 6, 12, 24)),
    'small': (96, (2, 2, 18, 2), (3, 6, 12, 24)),
    'base': (128, (2, 2, 18, 2), (4, 8, 16, 32)),
    'large': (192, (2, 2, 18, 2), (6, 12, 24, 48)),
}
MODES = ('efficient', 'simple')
GEOMETRIES = ('swin', 'authors')


def resolve_swin_arch(arch: Union[str, dict]
                      ) -> Tuple[int, Tuple[int, ...], Tuple[int, ...]]:
    """(embed_dims, depths, num_heads) of a Swin arch name or dict.

    Args:
        arch: a name of ``SWIN_ARCHS`` or a dict with ``embed_dims``,
            ``depths`` and ``num_heads`` (one per stage).
    """
    if isinstance(arch, str):
        if arch.lower() not in SWIN_ARCHS:
            raise ValueError(f'unknown Swin arch {arch!r}; use one of '
                             f'{sorted(SWIN_ARCHS)} or a dict')
        return SWIN_ARCHS[arch.lower()]
    need = {'embed_dims', 'depths', 'num_heads'}
    if set(arch) != need:
        raise ValueError(f'a Swin arch dict needs exactly the keys '
                         f'{sorted(need)}; got {sorted(arch)}')
    if len(arch['depths']) != len(arch['num_heads']):
        raise ValueError(f'{len(arch["depths"])} depths but '
                         f'{len(arch["num_heads"])} num_heads')
    return (arch['embed_dims'], tuple(arch['depths']),
            tuple(arch['num_heads']))


def take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` ``[B, N, C]`` at ``index`` ``[1 or B, M]`` (shared by
    the batch or per sample): ``[B, M, C]``."""
    if index.shape[0] == 1:
        return x.index_select(1, index[0])
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))


def visible_order(level_mask: torch.Tensor) -> torch.Tensor:
    """Token order that puts the visible positions first, each group in
    raster order: ``[Bm, N]`` from a 0/1 mask ``[Bm, N]`` (1 = masked).

    Its first ``n_visible`` entries are the visible positions; its argsort
    is the ``ids_restore`` of :class:`~.localmim.LocalDecoder`.
    """
    return torch.argsort(level_mask.to(torch.int8), dim=1, stable=True)


def authors_positions(pos: torch.Tensor, grid: Tuple[int, int],
                      unit: int) -> torch.Tensor:
    """The positions the authors' code gives tokens after a patch merging.

    Their encoder keeps the tokens unit-major (mask units in raster order,
    each unit's ``unit x unit`` tokens in raster order inside it), while
    their patch merging selects the next grid's raster coordinates with the
    unit-major visibility mask: the ``k``-th visible token (unit-major)
    gets the ``k``-th raster position whose unit-major index is visible.
    Both lists are sorted the same way, so a token's position is its own
    unit-major index read as a raster index. Where a unit is a single token
    (the coarsest stage) this is the true position.

    Args:
        pos: raster positions ``[Bm, N]`` of the visible tokens on ``grid``.
        grid: the stage grid ``(h, w)``.
        unit: tokens per mask-unit side at this stage.

    Returns:
        torch.Tensor: ``[Bm, N]`` positions on ``grid``, a permutation of
        the visible unit-major indices.
    """
    w = grid[1]
    r, c = pos // w, pos % w
    units_per_row = w // unit
    return ((r // unit) * units_per_row + c // unit) * unit * unit + \
        (r % unit) * unit + c % unit


class Windows:
    """Where each token sits in a batch of (padded) attention windows.

    Attributes:
        index: ``[Bm, K * L]`` token feeding each window slot; slots that
            hold no token point at a zero row appended after the tokens
            (``padded``).
        slot: ``[Bm, N]`` slot of each token.
        mask: None or an additive mask ``[Bm, K, L, L]`` (0 or -inf): the
            Swin region mask of shifted windows and the empty key slots.
        size: ``L``, slots per window.
        padded: whether some slots are empty.
    """

    def __init__(self, index: torch.Tensor, slot: torch.Tensor,
                 mask: Optional[torch.Tensor], size: int,
                 padded: bool) -> None:
        self.index, self.slot, self.mask = index, slot, mask
        self.size, self.padded = size, padded
        self.num = index.shape[1] // size

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[B, N, C]`` -> windows ``[B, K, L, C]``."""
        if self.padded:
            x = F.pad(x, (0, 0, 0, 1))
        return take(x, self.index).view(x.shape[0], self.num, self.size, -1)

    def scatter(self, y: torch.Tensor) -> torch.Tensor:
        """Window slots ``[B, K * L, C]`` -> tokens ``[B, N, C]``."""
        return take(y, self.slot)

    def attn_mask(self, bias: torch.Tensor) -> torch.Tensor:
        """Relative position bias ``[heads, L, L]`` plus this layout's mask,
        as ``[Bm, K * heads, L, L]`` (the windows are laid out as
        ``[B, K * heads, L, head_dim]``)."""
        heads, n = bias.shape[0], self.size
        if self.mask is None:
            out = bias.expand(self.num, -1, -1, -1)
            return out.reshape(1, self.num * heads, n, n)
        out = self.mask.to(bias.dtype).unsqueeze(2) + bias
        return out.reshape(out.shape[0], self.num * heads, n, n)


def window_layout(pos: torch.Tensor, grid: Tuple[int, int], window: int,
                  shift: int) -> Windows:
    """Swin's windows over the tokens present at ``pos`` ``[Bm, N]`` (raster
    positions on ``grid``; all of them for the ordinary Swin).

    Official Swin partitions: a cyclic shift by ``-shift``, non-overlapping
    ``window x window`` windows, and a region mask that keeps tokens from
    opposite borders apart in the wrapped windows. Windows holding no
    present token are dropped; a window's empty slots are masked out of the
    keys. Empty query slots may attend to empty keys only (their outputs are
    dropped), so no row is all -inf, even in a wholly empty window (possible
    with per-sample masks).
    """
    h, w = grid
    bm, n = pos.shape
    size = window * window
    rr, cc = (pos // w - shift) % h, (pos % w - shift) % w
    win = (rr // window) * (w // window) + cc // window
    within = (rr % window) * window + cc % window
    table = pos.new_full((bm, h * w), n)  # n: the zero row
    table.scatter_(1, win * size + within,
                   torch.arange(n, device=pos.device).expand(bm, n))
    table = table.view(bm, -1, size)
    occupied = (table < n).any(-1)
    kept = int(occupied.sum(1).max())  # one host sync per stage and shift
    order = torch.argsort((~occupied).to(torch.int8), dim=1,
                          stable=True)[:, :kept]
    index = table.gather(1, order[..., None].expand(-1, -1, size))
    rank = torch.full_like(occupied, -1, dtype=torch.long)
    rank.scatter_(1, order,
                  torch.arange(kept, device=pos.device).expand(bm, kept))
    slot = rank.gather(1, win) * size + within
    padded = kept * size != n
    mask = None
    if shift or padded:

        def region(v, length):
            return (v >= length - window).long() + (v >= length - shift).long()

        # region of every slot's token (0 without shift), -1 when empty
        label = F.pad(region(rr, h) * 3 + region(cc, w) if shift else
                      torch.zeros_like(pos), (0, 1), value=-1)
        label = label.gather(1, index.view(bm, -1)).view(bm, kept, size)
        mask = torch.zeros(label.shape + (size, ), device=pos.device)
        mask.masked_fill_(label[..., :, None] != label[..., None, :],
                          float('-inf'))
    return Windows(index.view(bm, -1), slot, mask, size, padded=padded)


def merge_index(pos: Optional[torch.Tensor], grid: Tuple[int, int],
                device: torch.device
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Children of each 2x2 merged token, for patch merging.

    Args:
        pos: raster positions ``[Bm, N]`` of the present tokens (every 2x2
            group wholly present or absent), or None for the full grid.
        grid: the grid before merging.
        device: where to build the indices.

    Returns:
        tuple: ``[Bm, N / 4, 4]`` token indices of the children of each
        merged token, in nn.Unfold's order (0,0), (0,1), (1,0), (1,1); and
        the merged tokens' positions on the halved grid (None for full).
    """
    h, w = grid
    if pos is None:
        parents = torch.arange(h // 2 * (w // 2), device=device)[None]
        rank = None
    else:
        bm, n = pos.shape
        top_left = ((pos // w) % 2 == 0) & ((pos % w) % 2 == 0)
        parents = pos[top_left].view(bm, n // 4)
        parents = (parents // w // 2) * (w // 2) + (parents % w) // 2
        rank = pos.new_full((bm, h * w), -1)
        rank.scatter_(1, pos, torch.arange(n, device=device).expand(bm, n))
    pr, pc = parents // (w // 2), parents % (w // 2)
    children = torch.stack([(2 * pr + dr) * w + 2 * pc + dc
                            for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1))],
                           dim=-1)
    if rank is not None:
        children = rank.gather(1, children.flatten(1)).view(children.shape)
        return children, parents
    return children, None


class SwinPatchEmbed(nn.Module):
    """Conv patch embedding + LayerNorm (mmdet/mmseg ``PatchEmbed`` names).
    """

    def __init__(self, patch_size: int, in_channels: int,
                 embed_dims: int, norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.projection = nn.Conv2d(in_channels, embed_dims, patch_size,
                                    patch_size)
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps)

    def forward(self, x: torch.Tensor
                ) -> Tuple[torch.Tensor, Tuple[int, int]]:
        x = self.projection(x)
        grid = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose(1, 2)), grid


class WindowMSA(nn.Module):
    """Window self-attention with Swin's relative position bias, through
    ``scaled_dot_product_attention``, over any :class:`Windows` layout.

    Args:
        dims: token channels.
        num_heads: heads.
        window_size: window side.
        qkv_bias: bias of the qkv projection.
        attn_drop: attention dropout (training only).
    """

    def __init__(self, dims: int, num_heads: int, window_size: int,
                 qkv_bias: bool = True, attn_drop: float = 0.) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.attn_drop = attn_drop
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1)**2, num_heads))
        self.qkv = nn.Linear(dims, dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(dims, dims)
        self.register_buffer(
            'relative_position_index',
            beit_bias_index(window_size, window_size, prefix=0),
            persistent=False)

    def bias(self) -> torch.Tensor:
        """``[heads, L, L]`` bias of every (query, key) slot pair."""
        return self.relative_position_bias_table[
            self.relative_position_index].permute(2, 0, 1)

    def forward(self, x: torch.Tensor, windows: Windows) -> torch.Tensor:
        """Tokens ``[B, N, C]`` -> attended tokens ``[B, N, C]``."""
        b, _, c = x.shape
        heads, size = self.num_heads, windows.size
        qkv = windows.gather(self.qkv(x))  # qkv on present tokens only
        k = qkv.shape[1]
        q, key, v = qkv.view(b, k, size, 3, heads, c // heads).permute(
            3, 0, 1, 4, 2, 5).reshape(3, b, k * heads, size, c // heads)
        out = F.scaled_dot_product_attention(
            q, key, v, attn_mask=windows.attn_mask(self.bias().to(q.dtype)),
            dropout_p=self.attn_drop if self.training else 0.)
        out = out.view(b, k, heads, size, c // heads).transpose(2, 3)
        return self.proj(windows.scatter(out.reshape(b, k * size, c)))


class SwinAttention(nn.Module):
    """Holds the window attention as ``w_msa`` (mmdet/mmseg names); the
    plain or shifted layout comes from the stage."""

    def __init__(self, dims: int, num_heads: int, window_size: int,
                 qkv_bias: bool = True, attn_drop: float = 0.) -> None:
        super().__init__()
        self.w_msa = WindowMSA(
            dims=dims, num_heads=num_heads, window_size=window_size,
            qkv_bias=qkv_bias, attn_drop=attn_drop)

    def forward(self, x: torch.Tensor, windows: Windows) -> torch.Tensor:
        return self.w_msa(x, windows)


class SwinFFN(nn.Module):
    """Linear -> GELU -> Linear, named as mmcv's ``FFN``
    (``layers.0.0``, ``layers.1``).

    Not timm's ``Mlp`` (``fc1``, ``fc2``): these names are the ones mmdet's,
    mmseg's and mmpretrain's Swin load, so the checkpoint needs no renaming.
    """

    def __init__(self, dims: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(dims, hidden), nn.GELU()),
            nn.Linear(hidden, dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SwinBlock(nn.Module):
    """Pre-norm Swin block on a token set and its window layout."""

    def __init__(self, dims: int, num_heads: int, window_size: int,
                 mlp_ratio: float = 4., qkv_bias: bool = True,
                 drop_path: float = 0., attn_drop: float = 0.,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dims, eps=norm_eps)
        self.attn = SwinAttention(
            dims=dims, num_heads=num_heads, window_size=window_size,
            qkv_bias=qkv_bias, attn_drop=attn_drop)
        self.norm2 = nn.LayerNorm(dims, eps=norm_eps)
        self.ffn = SwinFFN(dims=dims, hidden=int(dims * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0. \
            else nn.Identity()

    def forward(self, x: torch.Tensor, windows: Windows) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), windows))
        return x + self.drop_path(self.ffn(self.norm2(x)))


class PatchMerging(nn.Module):
    """2x2 patch merging on gathered children: LayerNorm(4C) ->
    Linear(4C, 2C, no bias), the 4C channels in nn.Unfold's order
    (channel-major: ``c * 4 + k``, k over (0,0), (0,1), (1,0), (1,1)), as
    mmdet's, mmseg's and mmcv's PatchMerging."""

    def __init__(self, dims: int, norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dims, eps=norm_eps)
        self.reduction = nn.Linear(4 * dims, 2 * dims, bias=False)

    def forward(self, x: torch.Tensor,
                children: torch.Tensor) -> torch.Tensor:
        """``[B, N, C]`` and children ``[Bm, N / 4, 4]`` -> ``[B, N / 4,
        2C]``."""
        b, _, c = x.shape
        x = take(x, children.flatten(1)).view(b, -1, 4, c)
        return self.reduction(self.norm(x.transpose(2, 3).reshape(
            b, -1, 4 * c)))


class SwinStage(nn.Module):
    """Blocks (plain and shifted windows alternating) and an optional
    patch merging at the end (mmdet/mmseg layout)."""

    def __init__(self, dims: int, depth: int, num_heads: int,
                 window_size: int, mlp_ratio: float, qkv_bias: bool,
                 drop_paths: Sequence[float], attn_drop: float,
                 downsample: bool, norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([
            SwinBlock(dims=dims, num_heads=num_heads,
                      window_size=window_size, mlp_ratio=mlp_ratio,
                      qkv_bias=qkv_bias, drop_path=drop_paths[i],
                      attn_drop=attn_drop, norm_eps=norm_eps)
            for i in range(depth)
        ])
        self.downsample = PatchMerging(dims, norm_eps) if downsample \
            else None


@register_pretrain_model()
class LocalMIMSwinTransformer(BaseModule):
    """The masked Swin encoder of LocalMIM, tapped after every stage.

    Args:
        arch: ``'tiny'``, ``'small'``, ``'base'``, ``'large'`` or a dict
            with ``embed_dims``, ``depths``, ``num_heads``.
        patch_size: patch side (4).
        in_channels: image channels.
        window_size: attention window side (7).
        mlp_ratio: MLP hidden / token channels.
        qkv_bias: bias of the qkv projections.
        drop_path_rate: stochastic depth of the last block (linear from 0).
        attn_drop_rate: attention dropout.
        mode: ``'efficient'`` (masked tokens dropped) or ``'simple'``
            (SimMIM-style mask token), see the module docstring.
        mask_ratio: share of the coarsest-grid units masked (0.75: 37 of
            49 at 224 px).
        mask_per_sample: draw a mask per image; False (the authors' choice)
            uses one mask for the whole batch.
        geometry: where the windows of the masked encoder put each visible
            token. ``'swin'``: at its own position (true Swin windows and
            relative offsets at every stage). ``'authors'``: as the
            authors' released code, whose patch merging hands the next
            stage the merged grid's raster coordinates in the order of its
            unit-major tokens, so after a merging each token takes the
            position whose raster index equals its unit-major index (see
            :func:`authors_positions`; stages 1 and 2 of a 4-stage Swin,
            efficient mode only).
        norm_eps: epsilon of every LayerNorm (the authors': 1e-6).
        with_cp: activation checkpointing of each block.
        init_cfg: mmengine init config.

    Taps: the output of every stage after its patch merging (strides 8,
    16, 32, 32 and channels 2C, 4C, 8C, 8C for 4 stages), each with its own
    LayerNorm: ``tap_norms.<stage>`` for the inner stages and
    ``norm<last stage>`` for the last, the final norm the downstream Swin
    backbones load.

    Every stage grid must be a multiple of the window; a grid equal to the
    window is attended without shift (official Swin, mmpretrain). A grid
    smaller than the window (official Swin shrinks the window) is an error.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 patch_size: int = 4,
                 in_channels: int = 3,
                 window_size: int = 7,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_path_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 mode: str = 'efficient',
                 mask_ratio: float = 0.75,
                 mask_per_sample: bool = False,
                 geometry: str = 'swin',
                 norm_eps: float = 1e-6,
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
        if geometry not in GEOMETRIES:
            raise ValueError(f'geometry must be one of {GEOMETRIES}, got '
                             f'{geometry!r}')
        if geometry == 'authors' and mode != 'efficient':
            raise ValueError("geometry='authors' reproduces the authors' "
                             "efficient encoder; mode='simple' has no "
                             "authors' version: use geometry='swin'")
        dims, depths, heads = resolve_swin_arch(arch)
        self.mode = mode
        self.geometry = geometry
        self.patch_size = patch_size
        self.window_size = window_size
        self.mask_ratio = mask_ratio
        self.mask_per_sample = mask_per_sample
        self.with_cp = with_cp
        self.num_stages = len(depths)
        last = self.num_stages - 1
        self.out_indices = list(range(self.num_stages))
        self.unit = patch_size * 2**last
        self.tap_dims = [dims * 2**min(i + 1, last) for i in self.out_indices]
        self.tap_strides = [patch_size * 2**min(i + 1, last)
                            for i in self.out_indices]
        self.patch_embed = SwinPatchEmbed(patch_size, in_channels, dims,
                                          norm_eps)
        if mode == 'simple':
            self.mask_token = nn.Parameter(torch.zeros(1, 1, dims))
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        for i, (depth, num_heads) in enumerate(zip(depths, heads)):
            self.stages.append(
                SwinStage(dims * 2**i, depth, num_heads, window_size,
                          mlp_ratio, qkv_bias,
                          rates[sum(depths[:i]):sum(depths[:i + 1])],
                          attn_drop_rate, downsample=i < last,
                          norm_eps=norm_eps))
        self.tap_norms = nn.ModuleDict({
            str(i): nn.LayerNorm(self.tap_dims[i], eps=norm_eps)
            for i in self.out_indices[:-1]
        })
        self.add_module(f'norm{last}',
                        nn.LayerNorm(self.tap_dims[-1], eps=norm_eps))
        self._dense: Dict[Hashable, Windows] = {}

    def init_weights(self) -> None:
        """GreenMIM's initialisation (xavier Linear and patch projection,
        truncated-normal bias tables) unless ``init_cfg`` loads weights."""
        super().init_weights()
        if pretrained_cfg(self.init_cfg):
            return
        w = self.patch_embed.projection.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        xavier_init_(self)
        for m in self.modules():
            if isinstance(m, WindowMSA):
                trunc_normal_(m.relative_position_bias_table, std=.02)
        if self.mode == 'simple':
            nn.init.normal_(self.mask_token, std=.02)

    def tap_norm(self, stage: int) -> nn.LayerNorm:
        """The LayerNorm of a stage's tap."""
        if stage == self.num_stages - 1:
            return getattr(self, f'norm{stage}')
        return self.tap_norms[str(stage)]

    def unit_grid(self, size: Sequence[int]) -> Tuple[int, int]:
        """Mask grid (coarsest stage) of an input ``(H, W)``; an error
        names the sizes that do not fit the stages' windows."""
        h, w = size[-2:]
        if h % self.unit or w % self.unit:
            raise ValueError(
                f'input {h}x{w} is not a multiple of {self.unit} px, the '
                f'mask unit (patch {self.patch_size} x 2^'
                f'{self.num_stages - 1})')
        for i in range(self.num_stages):
            s = self.patch_size * 2**i
            gh, gw = h // s, w // s
            if gh % self.window_size or gw % self.window_size:
                raise ValueError(
                    f'stage {i} grid {gh}x{gw} (input {h}x{w}) is not a '
                    f'multiple of the window {self.window_size}')
        return h // self.unit, w // self.unit

    def tap_grids(self, size: Sequence[int]) -> List[Tuple[int, int]]:
        """Grid of every tap for an input ``(H, W)``."""
        h, w = size[-2:]
        return [(h // s, w // s) for s in self.tap_strides]

    def draw_mask(self, batch: int, unit_grid: Tuple[int, int],
                  device: torch.device) -> torch.Tensor:
        """Random unit mask ``[1 or B, h*w]`` (1 = masked), the same for the
        whole batch unless ``mask_per_sample``."""
        rows = batch if self.mask_per_sample else 1
        return random_masking(rows, unit_grid[0] * unit_grid[1],
                              self.mask_ratio, device)[2]

    def forward(self, x: torch.Tensor,
                mask: Union[bool, None, torch.Tensor] = True):
        """Encode with a mask (pretraining) or without (features).

        Args:
            x: images ``[B, C, H, W]``.
            mask: True to draw a random mask; a 0/1 unit mask ``[1 or B,
                h*w]`` on the coarsest grid (1 = masked, the same number
                visible in every row) to use that one; None/False for plain
                features.

        Returns:
            With a mask: the normalised taps (list, one ``[B, n_visible_i,
            C_i]`` per stage, visible tokens in raster order), the unit mask
            ``[B, h*w]`` and the unit grid. Without: a tuple of the
            normalised taps as maps ``[B, C_i, H_i, W_i]``.
        """
        units = self.unit_grid(x.shape)
        tokens, grid = self.patch_embed(x)
        if mask is None or mask is False:
            taps = self.forward_stages(tokens, grid, None)
            return tuple(
                t.transpose(1, 2).reshape(t.shape[0], -1, *g)
                for t, g in zip(taps, self.tap_grids(x.shape)))
        if mask is True:
            mask = self.draw_mask(x.shape[0], units, x.device)
        mask = self._check_mask(mask, x.shape[0], units)
        level = resample_mask(mask, units, grid).flatten(1)
        n_vis = int((level[0] == 0).sum())
        pos = visible_order(level)[:, :n_vis]
        if self.mode == 'efficient':
            taps = self.forward_stages(take(tokens, pos), grid, pos)
        else:
            w = level[..., None].to(tokens.dtype)
            tokens = tokens * (1 - w) + self.mask_token.to(tokens.dtype) * w
            taps = self.forward_stages(tokens, grid, None)
            taps = [
                take(t, visible_order(
                    resample_mask(mask, units, g).flatten(1))[:, :t_vis])
                for t, g, t_vis in zip(
                    taps, self.tap_grids(x.shape), self._tap_visible(n_vis))
            ]
        return taps, mask.expand(x.shape[0], -1), units

    def _tap_visible(self, n_vis: int) -> List[int]:
        """Visible tokens of every tap, from those of stage 0."""
        return [n_vis // 4**min(i + 1, self.num_stages - 1)
                for i in self.out_indices]

    def _check_mask(self, mask: torch.Tensor, batch: int,
                    units: Tuple[int, int]) -> torch.Tensor:
        n = units[0] * units[1]
        if mask.dim() != 2 or mask.shape[0] not in (1, batch) or \
                mask.shape[1] != n:
            raise ValueError(f'a unit mask must be [1 or {batch}, {n}] for '
                             f'the {units[0]}x{units[1]} unit grid, got '
                             f'{tuple(mask.shape)}')
        visible = (mask == 0).sum(1)
        if visible.min() < 1 or visible.min() != visible.max():
            raise ValueError('every row of a unit mask needs the same, '
                             f'non-zero number of visible units; got '
                             f'{visible.tolist()}')
        return mask.float()

    def stage_windows(self, grid: Tuple[int, int],
                      pos: Optional[torch.Tensor], device: torch.device
                      ) -> Tuple[Windows, Windows]:
        """Plain and shifted window layouts of a stage grid over the tokens
        at ``pos`` (None: the full grid, cached); shift only where the grid
        is larger than the window, as official Swin."""
        ws = self.window_size
        shifts = (0, ws // 2 if min(grid) > ws else 0)
        if pos is not None:
            plain = window_layout(pos, grid, ws, 0)
            return plain, (window_layout(pos, grid, ws, shifts[1])
                           if shifts[1] else plain)

        def dense(shift: int) -> Windows:
            full = torch.arange(grid[0] * grid[1], device=device)[None]
            return window_layout(full, grid, ws, shift)

        plain, shifted = (cached(self._dense, (grid, s, device),
                                 partial(dense, s)) for s in shifts)
        return plain, shifted

    def window_positions(self, pos: Optional[torch.Tensor],
                         grid: Tuple[int, int], stage: int
                         ) -> Optional[torch.Tensor]:
        """Positions that the windows of ``stage`` are drawn from, for the
        tokens at ``pos`` (raster positions on ``grid``; None: full grid):
        their own, or with ``geometry='authors'`` those the authors' patch
        merging hands on (:func:`authors_positions`)."""
        if pos is None or self.geometry == 'swin' or stage == 0:
            return pos
        return authors_positions(pos, grid,
                                 2**(self.num_stages - 1 - stage))

    def forward_stages(self, x: torch.Tensor, grid: Tuple[int, int],
                       pos: Optional[torch.Tensor]) -> List[torch.Tensor]:
        """Run the stages on the tokens at ``pos`` (None: the full grid).

        Returns:
            list: the normalised tap of every stage, ``[B, n_i, C_i]``.
        """
        taps = []
        for i, stage in enumerate(self.stages):
            windows = self.stage_windows(
                grid, self.window_positions(pos, grid, i), x.device)
            for j, blk in enumerate(stage.blocks):
                if self.with_cp and self.training and x.requires_grad:
                    x = torch.utils.checkpoint.checkpoint(
                        blk, x, windows[j % 2], use_reentrant=False)
                else:
                    x = blk(x, windows[j % 2])
            if stage.downsample is not None:
                children, pos = merge_index(pos, grid, x.device)
                x = stage.downsample(x, children)
                grid = (grid[0] // 2, grid[1] // 2)
            taps.append(self.tap_norm(i)(x))
        return taps


def restore_ids(level_mask: torch.Tensor) -> torch.Tensor:
    """``ids_restore`` ``[B, N]`` for tokens ordered ``[visible (raster),
    mask tokens]``, from a 0/1 mask ``[B, N]``."""
    return visible_order(level_mask).argsort(dim=1)


@register_pretrain_model()
class LocalMIMSwin(LocalMIM):
    """LocalMIM pretraining of a Swin (mmpretrain self-supervisor).

    ``backbone``: :class:`LocalMIMSwinTransformer`; ``neck``:
    :class:`~.necks.LocalMIMDecoders` with one input width per stage
    (``in_dims``, filled from the backbone when omitted) and no cls token;
    ``head``: :class:`~.localmim.LocalMIMHead` (the same masked loss and
    weights as the ViT version); ``target_generator``: :class:`HOGTarget` or
    :class:`PixelTarget`. Each stage's decoder predicts at its tap's grid
    (``scales`` 1: one transformer block and a linear head), so the target
    cells are the tap strides, 8/16/32/32 px. Losses are logged as
    ``loss_stage<i>``.
    """

    tap_name = 'stage'

    def neck_defaults(self, backbone: nn.Module) -> dict:
        """One decoder per stage, at its tap's grid, on taps without a cls
        token, with the stage widths."""
        return dict(in_dims=backbone.tap_dims, with_cls=False,
                    scales=(1., ) * backbone.num_stages)

    def predict_targets(self, inputs: torch.Tensor):
        """Encode, decode and build targets: (preds, targets, unit mask,
        unit grid); the head resamples the unit mask to every target grid.
        """
        taps, mask, units = self.backbone(inputs)
        grids = self.backbone.tap_grids(inputs.shape)
        ids = [restore_ids(resample_mask(mask, units, g).flatten(1))
               for g in grids]
        preds = self.neck(taps, ids, grids)
        targets = self.target_generator.multi_scale(inputs, self.cells)
        return preds, targets, mask, units
