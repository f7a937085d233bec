"""The one Vision Transformer of the toolkit.

Pretraining (LoMaR, LocalMIM) and the downstream backbone use these blocks
with the same parameter names, so a pretraining checkpoint loads into the
detection/segmentation backbone by prefix alone, iRPE tables included.

Parameter names (stable; timm's where timm has the part)::

    cls_token                        [1, 1, C]
    pos_embed                        [1, 1 + N, C]  if pos_embed='learned'
    patch_embed.proj.{weight,bias}   conv, kernel = stride = patch size
    blocks.{i}.norm1.{weight,bias}
    blocks.{i}.attn.qkv.{weight,bias}
    blocks.{i}.attn.proj.{weight,bias}
    blocks.{i}.attn.rpe_k.lookup_table_weight   [1, head_dim, 50]  (iRPE)
    blocks.{i}.attn.rel_pos_h / rel_pos_w        (ViTDet, optional)
    blocks.{i}.attn.relative_position_bias_table (BEiT, optional)
    blocks.{i}.ls1.gamma / ls2.gamma             (layer scale, optional)
    blocks.{i}.norm2.{weight,bias}
    blocks.{i}.mlp.fc1.{weight,bias}, blocks.{i}.mlp.fc2.{weight,bias}
    norm.{weight,bias}                            (final norm, optional)
"""
from typing import Dict, Hashable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_

from .utils import (DropPath, IRPEKeyBias, LayerScale, Mlp, SinCosPosition,
                    beit_bias_index, cached, decomposed_rel_pos,
                    pretrained_cfg, resize_beit_table, resize_pos_table,
                    xavier_init_)

# name -> (embed_dims, depth, num_heads, mlp_ratio)
ARCHS: Dict[str, Tuple[int, int, int, float]] = {
    's': (384, 12, 6, 4.0),
    'small': (384, 12, 6, 4.0),
    'b': (768, 12, 12, 4.0),
    'base': (768, 12, 12, 4.0),
    'l': (1024, 24, 16, 4.0),
    'large': (1024, 24, 16, 4.0),
    'h': (1280, 32, 16, 4.0),
    'huge': (1280, 32, 16, 4.0),
}


def resolve_arch(arch: Union[str, dict]) -> Tuple[int, int, int, float]:
    """(embed_dims, depth, num_heads, mlp_ratio) of an arch name or dict.

    Args:
        arch: a name of ``ARCHS`` or a dict with ``embed_dims``, ``depth``,
            ``num_heads`` and optionally ``mlp_ratio`` (default 4).

    Returns:
        tuple: embed_dims, depth, num_heads, mlp_ratio.
    """
    if isinstance(arch, str):
        if arch.lower() not in ARCHS:
            raise ValueError(f'unknown ViT arch {arch!r}; use one of '
                             f'{sorted(set(ARCHS))} or a dict')
        return ARCHS[arch.lower()]
    need = {'embed_dims', 'depth', 'num_heads'}
    unknown = set(arch) - need - {'mlp_ratio'}
    if not need <= set(arch) or unknown:
        raise ValueError(f'a ViT arch dict needs keys {sorted(need)} (and '
                         f'optionally mlp_ratio); got {sorted(arch)}')
    if arch['embed_dims'] % arch['num_heads']:
        raise ValueError(f'embed_dims {arch["embed_dims"]} is not divisible '
                         f'by num_heads {arch["num_heads"]}')
    return (arch['embed_dims'], arch['depth'], arch['num_heads'],
            float(arch.get('mlp_ratio', 4.0)))


class PatchEmbed(nn.Module):
    """Image to patch tokens with one strided convolution.

    Args:
        patch_size: side of a square patch.
        in_channels: input channels.
        embed_dims: token channels.
        pad: pad inputs to a multiple of the patch size (downstream);
            when False, a size the patch size does not divide is an error.
    """

    def __init__(self,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 embed_dims: int = 768,
                 pad: bool = False) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.pad = pad
        self.proj = nn.Conv2d(
            in_channels, embed_dims, kernel_size=patch_size,
            stride=patch_size)

    def fit(self, x: torch.Tensor) -> torch.Tensor:
        """Pad ``x`` to a multiple of the patch size (``pad``), or raise
        when the patch size does not divide it."""
        p = self.patch_size
        h, w = x.shape[-2:]
        if h % p or w % p:
            if not self.pad:
                raise ValueError(
                    f'input size {h}x{w} is not divisible by the patch size '
                    f'{p}')
            x = F.pad(x, (0, (-w) % p, 0, (-h) % p))
        return x

    def forward(self,
                x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Returns tokens ``[B, h*w, C]`` (raster order) and ``(h, w)``."""
        x = self.proj(self.fit(x))
        grid = (x.shape[2], x.shape[3])
        return x.flatten(2).transpose(1, 2), grid

    def embed_patches(self, pixels: torch.Tensor) -> torch.Tensor:
        """Tokens of patches already cut out, ``[..., in_channels, p, p]``
        -> ``[..., C]``: the convolution as the matmul it is (kernel =
        stride), for callers that embed only some patches."""
        return F.linear(pixels.flatten(-3), self.proj.weight.flatten(1),
                        self.proj.bias)


class Attention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention``.

    Position biases are added to the scaled logits through SDPA's additive
    ``attn_mask``, so the fused kernels still run.

    Args:
        dim: token channels.
        num_heads: heads.
        qkv_bias: bias of the qkv projection.
        attn_drop: dropout on attention weights (training only).
        irpe: None, or a dict of :class:`IRPEKeyBias` options (``alpha``,
            ``beta``, ``gamma``, ``num_prefix``) to put LoMaR's iRPE on the
            keys.
        rel_pos_size: None, or the (rows, cols) for which ViTDet-style
            decomposed relative position tables ``rel_pos_h`` /
            ``rel_pos_w`` (``[2 * size - 1, head_dim]``, zero-initialised)
            are made; they are linearly resized to other grids.
        rel_bias_size: None, or the (rows, cols) for which a BEiT-style
            relative position bias table ``relative_position_bias_table``
            (``[(2 rows - 1) (2 cols - 1) + 3, heads]``, zero-initialised;
            the last three entries are cls->token, token->cls, cls->cls) is
            made; it is resized bicubically to other grids.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int = 8,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 irpe: Optional[dict] = None,
                 rel_pos_size: Optional[Tuple[int, int]] = None,
                 rel_bias_size: Optional[Tuple[int, int]] = None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = attn_drop
        # the position biases are None when unused (they are not layers
        # applied to the tokens, so nn.Identity would not stand in for them)
        self.rpe_k = (IRPEKeyBias(self.head_dim, **irpe)
                      if irpe is not None else None)
        if rel_pos_size is not None:
            self.rel_pos_h = nn.Parameter(
                torch.zeros(2 * rel_pos_size[0] - 1, self.head_dim))
            self.rel_pos_w = nn.Parameter(
                torch.zeros(2 * rel_pos_size[1] - 1, self.head_dim))
        else:
            self.rel_pos_h = self.rel_pos_w = None
        self.rel_bias_size = rel_bias_size
        if rel_bias_size is not None:
            n = (2 * rel_bias_size[0] - 1) * (2 * rel_bias_size[1] - 1) + 3
            self.relative_position_bias_table = nn.Parameter(
                torch.zeros(n, num_heads))
        else:
            self.relative_position_bias_table = None
        self._bias_index: Dict[Hashable, torch.Tensor] = {}

    def beit_bias(self, grid: Tuple[int, int], prefix: int) -> torch.Tensor:
        """BEiT-style bias ``[heads, L, L]`` for a grid with ``prefix``
        (0 or 1) cls tokens."""
        table = self.relative_position_bias_table
        src = self.rel_bias_size
        if tuple(grid) != tuple(src):
            table = resize_beit_table(table, (2 * src[0] - 1, 2 * src[1] - 1),
                                      (2 * grid[0] - 1, 2 * grid[1] - 1))
        index = cached(
            self._bias_index, (grid[0], grid[1], prefix, table.device),
            lambda: beit_bias_index(*grid, prefix).to(table.device))
        return table[index].permute(2, 0, 1)

    def forward(self, x: torch.Tensor,
                grid: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """Attend.

        Args:
            x: tokens ``[B, L, C]``: prefix tokens then the grid in raster
                order.
            grid: (rows, cols) of the grid tokens; needed with iRPE.

        Returns:
            torch.Tensor: ``[B, L, C]``.
        """
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        bias = None
        if (self.rpe_k is not None or self.rel_pos_h is not None
                or self.relative_position_bias_table is not None) \
                and grid is None:
            raise ValueError('relative position needs the token grid')
        if self.rpe_k is not None:
            bias = self.rpe_k(q, grid)
        if self.rel_pos_h is not None:
            rel = decomposed_rel_pos(q, grid, self.rel_pos_h, self.rel_pos_w)
            bias = rel if bias is None else bias + rel
        if self.relative_position_bias_table is not None:
            rel = self.beit_bias(grid, n - grid[0] * grid[1]).to(q.dtype)
            bias = rel[None] if bias is None else bias + rel
        if bias is not None:
            # the fused kernels (memory-efficient: the one that computes the
            # bias gradient) need the bias in the query's dtype; a float32
            # bias next to bf16/fp16 queries falls back to the math kernel
            bias = bias.to(q.dtype)
        x = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias,
            dropout_p=self.attn_drop if self.training else 0.)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm transformer block with optional layer scale and drop path
    (``nn.Identity`` when off).

    Args:
        dim: token channels.
        num_heads: heads.
        mlp_ratio: hidden / token channels of the MLP.
        qkv_bias: bias of the qkv projection.
        drop_path: stochastic depth probability.
        layer_scale_init: None for no layer scale, else its initial value.
        norm_eps: LayerNorm epsilon.
        attn_drop: attention dropout.
        irpe: iRPE options (see :class:`Attention`), or None.
        rel_pos_size: grid of the decomposed relative position tables (see
            :class:`Attention`), or None.
        rel_bias_size: grid of the BEiT-style relative position bias table
            (see :class:`Attention`), or None.
        window_size: 0 for global attention; otherwise attention within
            non-overlapping ``window_size x window_size`` windows of the grid
            (zero-padded to a multiple of the window, as ViTDet), for tokens
            without a cls token.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int = 8,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_path: float = 0.,
                 layer_scale_init: Optional[float] = None,
                 norm_eps: float = 1e-6,
                 attn_drop: float = 0.,
                 irpe: Optional[dict] = None,
                 rel_pos_size: Optional[Tuple[int, int]] = None,
                 window_size: int = 0,
                 rel_bias_size: Optional[Tuple[int, int]] = None) -> None:
        super().__init__()
        self.window_size = window_size
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(
            dim=dim, num_heads=num_heads, qkv_bias=qkv_bias,
            attn_drop=attn_drop, irpe=irpe, rel_pos_size=rel_pos_size,
            rel_bias_size=rel_bias_size)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))
        if layer_scale_init is not None:
            self.ls1 = LayerScale(dim, init_values=layer_scale_init)
            self.ls2 = LayerScale(dim, init_values=layer_scale_init)
        else:
            self.ls1 = self.ls2 = nn.Identity()
        # one module for both branches: each call draws its own mask
        self.drop_path = DropPath(drop_path) if drop_path > 0. \
            else nn.Identity()

    def forward(self, x: torch.Tensor,
                grid: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        if self.window_size:
            y = self._window_attention(self.norm1(x), grid)
        else:
            y = self.attn(self.norm1(x), grid)
        x = x + self.drop_path(self.ls1(y))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))

    def _window_attention(self, x: torch.Tensor,
                          grid: Tuple[int, int]) -> torch.Tensor:
        """Attention inside windows; ``x`` is ``[B, h*w, C]`` (no cls)."""
        b, n, c = x.shape
        h, w = grid
        if n != h * w:
            raise ValueError(f'window attention takes the {h}x{w} grid '
                             f'tokens only (got {n} tokens: no cls token)')
        ws = self.window_size
        x = x.view(b, h, w, c)
        ph, pw = (-h) % ws, (-w) % ws
        if ph or pw:
            x = F.pad(x, (0, 0, 0, pw, 0, ph))
        hp, wp = h + ph, w + pw
        x = x.view(b, hp // ws, ws, wp // ws, ws, c).transpose(2, 3)
        x = self.attn(x.reshape(-1, ws * ws, c), (ws, ws))
        x = x.view(b, hp // ws, wp // ws, ws, ws, c).transpose(2, 3)
        x = x.reshape(b, hp, wp, c)[:, :h, :w]
        return x.reshape(b, h * w, c)


class VisionTransformer(BaseModule):
    """The shared ViT encoder: patch embedding, cls token, blocks, norm.

    Subclasses decide which tokens go through the blocks (all of them,
    MAE-style visible ones, LoMaR windows); they share these parameters.

    Args:
        arch: ``'s'``, ``'b'``, ``'l'``, ``'h'`` or a dict with
            ``embed_dims``, ``depth``, ``num_heads`` (and ``mlp_ratio``).
        patch_size: patch side.
        in_channels: image channels.
        pos_embed: ``'none'`` (LoMaR: position only from iRPE), ``'sincos'``
            (fixed 2-D sin-cos for the actual grid, not a parameter) or
            ``'learned'`` (a parameter for ``img_size``, resized bicubically
            to other grids).
        img_size: input size the learned position embedding is made for.
        irpe: None, or iRPE options for every block (see :class:`Attention`);
            ``dict()`` gives LoMaR's defaults.
        qkv_bias: bias of the qkv projections.
        drop_path_rate: stochastic depth of the last block (linear from 0).
        layer_scale_init: None, or the layer scale initial value.
        norm_eps: LayerNorm epsilon (1e-6 as MAE, LoMaR and LocalMIM).
        final_norm: apply ``norm`` to the output (``nn.Identity`` when
            False).
        pad_to_patch: pad inputs the patch size does not divide.
        with_cp: activation checkpointing of each block (saves memory).
        window_size: 0 for global attention in every block; otherwise
            windowed attention (see :class:`Block`) except in
            ``global_blocks``.
        global_blocks: blocks that keep global attention when windowed.
        rel_pos: None, ``'decomposed'`` (ViTDet) or ``'beit'``: relative
            position made for the window in windowed blocks and for
            ``img_size // patch_size`` in global ones (see
            :class:`Attention`).
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 patch_size: int = 16,
                 in_channels: int = 3,
                 pos_embed: str = 'none',
                 img_size: int = 224,
                 irpe: Optional[dict] = None,
                 qkv_bias: bool = True,
                 drop_path_rate: float = 0.,
                 layer_scale_init: Optional[float] = None,
                 norm_eps: float = 1e-6,
                 final_norm: bool = True,
                 pad_to_patch: bool = False,
                 with_cp: bool = False,
                 window_size: int = 0,
                 global_blocks: Sequence[int] = (),
                 rel_pos: Optional[str] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        dims, depth, heads, mlp_ratio = resolve_arch(arch)
        if pos_embed not in ('none', 'sincos', 'learned'):
            raise ValueError(f"pos_embed must be 'none', 'sincos' or "
                             f"'learned', got {pos_embed!r}")
        self.embed_dims, self.depth, self.num_heads = dims, depth, heads
        self.patch_size = patch_size
        self.pos_embed_type = pos_embed
        self.with_cp = with_cp
        self.patch_embed = PatchEmbed(patch_size, in_channels, dims,
                                      pad=pad_to_patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dims))
        if pos_embed == 'learned':
            self.pos_grid = (img_size // patch_size, img_size // patch_size)
            self.pos_embed = nn.Parameter(
                torch.zeros(1, 1 + self.pos_grid[0] * self.pos_grid[1],
                            dims))
        self._sincos = SinCosPosition(dims)
        if rel_pos not in (None, 'decomposed', 'beit'):
            raise ValueError(f"rel_pos must be None, 'decomposed' or 'beit', "
                             f'got {rel_pos!r}')
        self.global_blocks = sorted(i % depth for i in global_blocks)
        full = (img_size // patch_size, img_size // patch_size)
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        blocks = []
        for i in range(depth):
            ws = window_size if i not in self.global_blocks else 0
            size = (ws, ws) if ws else full
            blocks.append(
                Block(dim=dims, num_heads=heads, mlp_ratio=mlp_ratio,
                      qkv_bias=qkv_bias, drop_path=rates[i],
                      layer_scale_init=layer_scale_init, norm_eps=norm_eps,
                      irpe=irpe,
                      rel_pos_size=size if rel_pos == 'decomposed' else None,
                      window_size=ws,
                      rel_bias_size=size if rel_pos == 'beit' else None))
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dims, eps=norm_eps) if final_norm \
            else nn.Identity()

    def init_weights(self) -> None:
        """MAE's initialisation unless an ``init_cfg`` loads weights."""
        super().init_weights()
        if pretrained_cfg(self.init_cfg):
            return
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=.02)
        if self.pos_embed_type == 'learned':
            trunc_normal_(self.pos_embed, std=.02)
        xavier_init_(self.blocks)

    def position(self, grid: Tuple[int, int], device: torch.device,
                 dtype: torch.dtype) -> Optional[torch.Tensor]:
        """Absolute position of the grid tokens, ``[1, h*w, C]``, or None.
        """
        if self.pos_embed_type == 'none':
            return None
        if self.pos_embed_type == 'sincos':
            return self._sincos(grid, device, dtype)
        pos = self.pos_embed[:, 1:]
        if grid != self.pos_grid:
            pos = resize_pos_table(pos[0], self.pos_grid, grid)[None]
        return pos

    def embed(self, x: torch.Tensor
              ) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Patch tokens with their absolute position: ``[B, h*w, C]``, grid.
        """
        tokens, grid = self.patch_embed(x)
        pos = self.position(grid, tokens.device, tokens.dtype)
        return (tokens if pos is None else tokens + pos), grid

    def encode_all(self, tokens: torch.Tensor,
                   grid: Tuple[int, int]) -> torch.Tensor:
        """cls + every patch token through the blocks: ``[B, 1 + h*w, C]``.
        """
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        return self.forward_blocks(torch.cat([cls, tokens], 1), grid)[0]

    def cls_position(self) -> Optional[torch.Tensor]:
        """Position of the cls token (learned only), ``[1, 1, C]``."""
        return (self.pos_embed[:, :1]
                if self.pos_embed_type == 'learned' else None)

    def forward_blocks(self,
                       x: torch.Tensor,
                       grid: Optional[Tuple[int, int]] = None,
                       out_indices: Sequence[int] = ()
                       ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Run the blocks.

        Args:
            x: tokens ``[B, L, C]`` (cls first).
            grid: the token grid, for iRPE.
            out_indices: blocks whose outputs are also returned.

        Returns:
            tuple: the last block's output (final norm applied when
            ``final_norm``) and the outputs of ``out_indices`` (no norm).
        """
        taps = []
        for i, blk in enumerate(self.blocks):
            if self.with_cp and self.training and x.requires_grad:
                x = torch.utils.checkpoint.checkpoint(
                    blk, x, grid, use_reentrant=False)
            else:
                x = blk(x, grid)
            if i in out_indices:
                taps.append(x)
        return self.norm(x), taps
