"""The downstream ViT backbone for mmdet, mmseg and mmpretrain configs.

It is the shared :class:`~mim_pretrain.models.vit.VisionTransformer` (same
parameter names), so LoMaR, LocalMIM and MAE pretraining checkpoints load by
prefix alone, LoMaR's iRPE tables included, with:

* any input size (padded to the patch size), absolute position resized
  bicubically to the input grid: a free table for ``img_size`` (mmseg's MAE,
  the LocalMIM authors') or ViTDet's table kept at the pretraining grid and
  interpolated in every forward;
* MAE's (xavier) or ViTDet's / BEiT's (trunc-normal 0.02) random
  initialisation;
* window attention with global attention at chosen blocks (ViTDet), windows
  zero-padded when the grid is not a multiple of the window;
* optional ViTDet-style decomposed relative position for initialisations
  without one;
* ``out_indices`` feature maps ``[B, C, H/p, W/p]``, optional final norm
  or one LayerNorm per output (LocalMIM's tap norms, loadable from its
  checkpoints), drop path, layer scale, activation checkpointing;
* for classification (mmpretrain's ``ImageClassifier``), the cls token or
  the mean of the patch tokens (optionally through a new ``fc_norm``, MAE's
  and BEiT's global pooling) instead of feature maps, and frozen stages
  (linear probing);
* loud loading: missing/unexpected keys logged, position tables resized, and
  an error when (almost) nothing of the backbone was loaded.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict

from ..converters.io import checkpoint_state_dict
from ..converters.vit import convert_mmpretrain_vit, is_mmpretrain_vit
from ..registry import register_transfer_model
from .utils import (pretrained_cfg, resize_beit_table, resize_pos_table,
                    sincos_pos_embed_2d)
from .vit import VisionTransformer

OUT_TYPES = ('featmap', 'cls_token', 'avg_featmap')
POS_EMBEDS = ('none', 'sincos', 'learned', 'interpolated')
POS_EMBED_INITS = ('trunc_normal', 'sincos')
WEIGHT_INITS = ('xavier', 'trunc_normal')


@register_transfer_model()
class MIMVisionTransformer(VisionTransformer):
    """Plain ViT backbone for detection, segmentation and classification.

    Args:
        arch: ``'s'``, ``'b'``, ``'l'``, ``'h'`` or a dict.
        patch_size: patch side.
        img_size: the input size the model is made for: the grid of a
            ``'learned'`` ``pos_embed`` and of the relative-position tables
            of global blocks.
        pos_embed: ``'learned'``: a free table for ``img_size``; a
            checkpoint's table of another grid is resized to it bicubically
            on load (mmseg's MAE, the LocalMIM authors' segmentation);
            ``'interpolated'``: the table is kept for ``pretrain_img_size``
            (a pretraining checkpoint's table loads unchanged) and resized
            bicubically to the input grid in every forward (ViTDet's
            ``get_abs_pos``); ``'sincos'``: fixed, computed for the actual
            grid; ``'none'`` (LoMaR). Either learned table is resized once
            to the input grid when that grid is not the table's.
        pretrain_img_size: the pretraining input size (default 224), for
            ``pos_embed='interpolated'`` (the table's grid) and
            ``pos_embed_init='sincos'`` (the grid of the sin-cos); an error
            with any other setting, where it would do nothing.
        pos_embed_init: random initialisation of a learned ``pos_embed``
            that the checkpoint does not fill: ``'trunc_normal'`` (default,
            std 0.02) or ``'sincos'``: the fixed 2-D sin-cos of the
            ``pretrain_img_size`` grid with a zero cls position, resized to
            the table as a checkpoint's would be (what the LocalMIM
            authors' segmentation starts from: their checkpoints store that
            sin-cos; this toolkit's LocalMIM checkpoints store none).
        weight_init: random initialisation: ``'xavier'`` (MAE's:
            xavier-uniform linear layers and patch embedding) or
            ``'trunc_normal'`` (ViTDet's and BEiT's: trunc-normal std 0.02
            linear layers with zero biases, LayerNorms at ones and zeros,
            the patch embedding left at PyTorch's default).
        irpe: None, or iRPE options (``dict()`` for LoMaR's).
        rel_pos: None, ``'decomposed'`` (ViTDet-style tables) or ``'beit'``
            (BEiT-style per-head bias table with cls entries, as mmseg's
            BEiT/MAE backbones); zero-initialised, made for the window size
            in windowed blocks and for ``img_size // patch_size`` in global
            ones, and resized to other grids.
        window_size: 0 for global attention everywhere; otherwise windowed
            attention except in ``global_blocks``.
        global_blocks: blocks with global attention when windowed.
        with_cls_token: keep the cls token (not with window attention).
        out_indices: blocks whose outputs are returned.
        out_type: what is returned per output: ``'featmap'`` (default),
            the grid tokens as ``[B, C, H/p, W/p]``; ``'cls_token'``, the
            cls token ``[B, C]`` (mmpretrain's linear-probe feature; needs
            ``with_cls_token``); ``'avg_featmap'``, the mean of the grid
            tokens ``[B, C]`` (the cls token left out), then ``fc_norm``
            when given.
        fc_norm: with ``out_type='avg_featmap'``, a new LayerNorm on the
            pooled feature, named ``fc_norm`` as in the MAE and LoMaR
            authors' fine-tuning ViTs (their global pooling: ``norm`` is not
            used there, so pair it with ``final_norm=False``); one output
            only.
        frozen_stages: freeze the patch embedding, the tokens, the
            absolute position and the first ``frozen_stages`` blocks (no
            gradient, kept in eval mode); ``depth`` freezes every parameter
            of the backbone, its norms included (linear probing).
        final_norm: apply ``norm`` to the last block's output.
        tap_norms: give every output its own LayerNorm, named as LocalMIM's
            pretraining taps: ``tap_norms.<block>`` for inner blocks and the
            final ``norm`` for the last block, so a LocalMIM checkpoint's
            tap norms load with the encoder (LocalMIM's segmentation
            protocol reads the features of its pretraining taps).
        drop_path_rate: stochastic depth of the last block.
        layer_scale_init: None, or the layer-scale initial value.
        with_cp: activation checkpointing of each block.
        min_loaded: with ``init_cfg=dict(type='Pretrained', ...)``, the
            smallest share of the backbone's parameter tensors that must be
            found in the checkpoint; below it loading raises.
        init_cfg: mmengine init config; ``Pretrained`` with ``checkpoint``
            and ``prefix`` (e.g. ``'backbone.'``) loads a pretraining
            checkpoint.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 patch_size: int = 16,
                 img_size: int = 224,
                 pos_embed: str = 'learned',
                 irpe: Optional[dict] = None,
                 rel_pos: Optional[str] = None,
                 window_size: int = 0,
                 global_blocks: Sequence[int] = (),
                 with_cls_token: bool = True,
                 out_indices: Sequence[int] = (-1, ),
                 out_type: str = 'featmap',
                 fc_norm: bool = False,
                 frozen_stages: int = 0,
                 final_norm: bool = False,
                 tap_norms: bool = False,
                 drop_path_rate: float = 0.,
                 layer_scale_init: Optional[float] = None,
                 qkv_bias: bool = True,
                 norm_eps: float = 1e-6,
                 with_cp: bool = False,
                 min_loaded: float = 0.5,
                 pretrain_img_size: Optional[int] = None,
                 pos_embed_init: Optional[str] = None,
                 weight_init: str = 'xavier',
                 init_cfg: Optional[dict] = None) -> None:
        if window_size and with_cls_token:
            raise ValueError('window attention needs with_cls_token=False '
                             '(windows hold grid tokens only, as in ViTDet)')
        _check_position_options(pos_embed, pretrain_img_size,
                                pos_embed_init, patch_size)
        if weight_init not in WEIGHT_INITS:
            raise ValueError(f'weight_init must be one of {WEIGHT_INITS}, '
                             f'got {weight_init!r}')
        learned = pos_embed in ('learned', 'interpolated')
        super().__init__(
            arch=arch, patch_size=patch_size,
            pos_embed='learned' if learned else pos_embed,
            img_size=img_size, irpe=irpe, qkv_bias=qkv_bias,
            drop_path_rate=drop_path_rate,
            layer_scale_init=layer_scale_init, norm_eps=norm_eps,
            final_norm=True, pad_to_patch=True, with_cp=with_cp,
            window_size=window_size, global_blocks=global_blocks,
            rel_pos=rel_pos, init_cfg=init_cfg)
        self.pos_embed_mode = pos_embed
        self.pos_embed_init = pos_embed_init or 'trunc_normal'
        self.weight_init = weight_init
        side = (pretrain_img_size or 224) // patch_size
        self.pretrain_grid = (side, side)
        if pos_embed == 'interpolated':
            # ViTDet's layout: the pretraining grid plus the cls slot (kept,
            # so the checkpoint's table loads as it is, and unused without
            # the cls token)
            self.pos_grid = self.pretrain_grid
            self.pos_embed = nn.Parameter(
                torch.zeros(1, 1 + side * side, self.embed_dims))
        self.out_indices = sorted(i % self.depth for i in out_indices)
        if len(set(self.out_indices)) != len(out_indices):
            raise ValueError(f'out_indices {tuple(out_indices)} repeat a '
                             'block')
        self.with_cls_token = with_cls_token
        # the last block's output goes through the final norm either way
        self.final_norm = final_norm or tap_norms
        self.tap_norms = nn.ModuleDict({
            str(i): nn.LayerNorm(self.embed_dims, eps=norm_eps)
            for i in self.out_indices if i != self.depth - 1
        }) if tap_norms else None
        self.out_type = out_type
        self._check_output_options(fc_norm, frozen_stages)
        self.fc_norm = nn.LayerNorm(self.embed_dims, eps=norm_eps) \
            if fc_norm else None
        self.min_loaded = min_loaded
        self._freeze_unused()
        self.frozen_stages = frozen_stages
        self._freeze_stages()

    def _check_output_options(self, fc_norm: bool,
                              frozen_stages: int) -> None:
        """Errors naming the key for output settings that are unknown or
        would do nothing."""
        if self.out_type not in OUT_TYPES:
            raise ValueError(f'out_type must be one of {OUT_TYPES}, got '
                             f'{self.out_type!r}')
        if self.out_type == 'cls_token' and not self.with_cls_token:
            raise ValueError("out_type='cls_token' needs with_cls_token=True")
        if fc_norm and (self.out_type != 'avg_featmap'
                        or len(self.out_indices) != 1):
            raise ValueError(
                "fc_norm normalises the pooled feature of out_type="
                "'avg_featmap' with one output; got out_type="
                f'{self.out_type!r}, out_indices {tuple(self.out_indices)}')
        if not (isinstance(frozen_stages, int)
                and 0 <= frozen_stages <= self.depth):
            raise ValueError(f'frozen_stages must be an int in [0, '
                             f'{self.depth}] (the depth), got '
                             f'{frozen_stages!r}')

    def _frozen_modules(self) -> List[nn.Module]:
        """The modules ``frozen_stages`` freezes (kept in eval mode): the
        whole backbone when it is ``depth``."""
        if not self.frozen_stages:
            return []
        if self.frozen_stages == self.depth:
            return [self]
        return [self.patch_embed, *self.blocks[:self.frozen_stages]]

    def _freeze_stages(self) -> None:
        """Stop the gradients of what ``frozen_stages`` freezes: the
        modules of :meth:`_frozen_modules` and the backbone's own tokens and
        position table."""
        if not self.frozen_stages:
            return
        for param in self.parameters(recurse=False):
            param.requires_grad_(False)
        for module in self._frozen_modules():
            # nn.Module's own train(): this class's would recurse
            nn.Module.train(module, False)
            for param in module.parameters():
                param.requires_grad_(False)

    def train(self, mode: bool = True) -> 'MIMVisionTransformer':
        """Set the mode, keeping the frozen stages in eval mode (no drop
        path in them while the rest trains)."""
        super().train(mode)
        for module in self._frozen_modules():
            nn.Module.train(module, False)
        return self

    def _freeze_unused(self) -> None:
        """Stop gradients of parameters the outputs do not depend on.

        They stay (a pretraining checkpoint fills them by name), but a
        trainable parameter outside the graph makes DistributedDataParallel
        fail (find_unused_parameters=False, mmengine's default): the cls
        token without ``with_cls_token``, the final norm when no output
        goes through it, blocks after the last output.
        """
        unused = []
        if not self.with_cls_token:
            unused.append(('cls_token', self.cls_token))
        last = self.out_indices[-1]
        if not (self.final_norm and last == self.depth - 1):
            unused += [('norm.' + k, p)
                       for k, p in self.norm.named_parameters()]
        for i in range(last + 1, self.depth):
            unused += [(f'blocks.{i}.{k}', p)
                       for k, p in self.blocks[i].named_parameters()]
        for _, param in unused:
            param.requires_grad_(False)
        self.frozen_unused = [name for name, _ in unused]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """One output per block of ``out_indices``: feature maps
        ``[B, C, ceil(H/p), ceil(W/p)]``, or ``[B, C]`` features when
        ``out_type`` is ``'cls_token'`` or ``'avg_featmap'``.
        """
        b = x.shape[0]
        tokens, grid = self.embed(x)
        prefix = 0
        if self.with_cls_token:
            cls = self.cls_token.expand(b, -1, -1)
            cls_pos = self.cls_position()
            if cls_pos is not None:
                cls = cls + cls_pos
            tokens = torch.cat([cls, tokens], dim=1)
            prefix = 1
        _, taps = self.forward_blocks(tokens, grid, self.out_indices)
        outs = []
        for i, out in zip(self.out_indices, taps):
            if self.final_norm and i == self.depth - 1:
                out = self.norm(out)
            elif self.tap_norms is not None:
                out = self.tap_norms[str(i)](out)
            if self.out_type == 'cls_token':
                out = out[:, 0]
            elif self.out_type == 'avg_featmap':
                out = out[:, prefix:].mean(dim=1)
                if self.fc_norm is not None:
                    out = self.fc_norm(out)
            else:
                out = out[:, prefix:].transpose(1, 2).reshape(
                    b, self.embed_dims, *grid)
            outs.append(out.contiguous())
        return tuple(outs)

    def init_weights(self) -> None:
        """Random init, or load a pretraining checkpoint (``Pretrained``).
        """
        cfg = pretrained_cfg(self.init_cfg)
        if cfg is None:
            return self._init_random()
        init_cfg, self.init_cfg = self.init_cfg, None
        self._init_random()  # for what the checkpoint does not hold
        self.init_cfg = init_cfg
        self.load_pretrained(cfg['checkpoint'], cfg.get('prefix', ''))
        self._is_init = True

    def _init_random(self) -> None:
        """``weight_init``, then ``pos_embed_init`` for a learned table."""
        if self.weight_init == 'xavier':
            super().init_weights()
        else:
            BaseModule.init_weights(self)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    trunc_normal_(m.weight, std=.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
            # ViTDet initialises Linear and LayerNorm layers only: its patch
            # embedding keeps the convolution's own default
            self.patch_embed.proj.reset_parameters()
            trunc_normal_(self.cls_token, std=.02)
            if self.pos_embed_type == 'learned':
                trunc_normal_(self.pos_embed, std=.02)
        if self.pos_embed_type == 'learned' and \
                self.pos_embed_init == 'sincos':
            table = sincos_pos_embed_2d(self.embed_dims, *self.pretrain_grid)
            table = table.to(self.pos_embed.dtype)
            if self.pretrain_grid != self.pos_grid:
                table = resize_pos_table(table, self.pretrain_grid,
                                         self.pos_grid)
            with torch.no_grad():
                self.pos_embed[0, 0].zero_()
                self.pos_embed[0, 1:].copy_(table)

    def load_pretrained(self, checkpoint: str, prefix: str = '') -> None:
        """Load backbone weights from a pretraining checkpoint.

        Keys are taken under ``prefix`` (e.g. ``'backbone.'``), position
        embeddings and relative-position tables are resized to this model,
        missing and unexpected keys are logged, and a
        :class:`RuntimeError` is raised when less than ``min_loaded`` of the
        backbone's parameter tensors were found.

        Args:
            checkpoint: path (or URL) of the checkpoint.
            prefix: key prefix of the backbone in the checkpoint.
        """
        ckpt = CheckpointLoader.load_checkpoint(checkpoint,
                                                map_location='cpu')
        if not isinstance(ckpt, dict):
            raise RuntimeError(f'{checkpoint} does not hold a state dict')
        state = checkpoint_state_dict(ckpt)
        state = {k[len(prefix):]: v
                 for k, v in state.items() if k.startswith(prefix)}
        if is_mmpretrain_vit(state):
            state, dropped = convert_mmpretrain_vit(state)
            print_log(f'{checkpoint}: mmpretrain ViT names mapped to this '
                      f'toolkit\'s; not mapped: {sorted(dropped) or "none"}',
                      logger='current')
        state = self.adapt_state_dict(state)
        own = self.state_dict()
        found = [k for k in own if k in state]
        params = [k for k, _ in self.named_parameters()]
        loaded = sum(k in state for k in params) / max(len(params), 1)
        if loaded < self.min_loaded:
            raise RuntimeError(
                f'{checkpoint}: only {loaded:.0%} of the backbone\'s '
                f'{len(params)} parameter tensors were found under prefix '
                f'{prefix!r} ({len(state)} keys there); refusing to train '
                'from a mostly random backbone. Check the prefix (this '
                'toolkit\'s and mmpretrain checkpoints: prefix="backbone."; '
                'authors\' checkpoints: convert them first with '
                'tools/model_converters/).')
        load_state_dict(self, state, strict=False, logger='current')
        if 'pos_embed' in own and 'pos_embed' not in state and \
                self.pos_embed_init == 'sincos':
            print_log(
                f'{checkpoint}: no pos_embed; the learned one starts from '
                f'the sin-cos of the {self.pretrain_grid[0]} x '
                f'{self.pretrain_grid[1]} pretraining grid '
                "(pos_embed_init='sincos')", logger='current')
        print_log(
            f'loaded {len(found)} of {len(own)} backbone tensors from '
            f'{checkpoint} (prefix {prefix!r}); not in the checkpoint: '
            f'{sorted(set(own) - set(state)) or "none"}; ignored: '
            f'{sorted(set(state) - set(own)) or "none"}',
            logger='current')

    def adapt_state_dict(self, state: Dict[str, torch.Tensor]
                         ) -> Dict[str, torch.Tensor]:
        """Resize position embeddings and relative-position tables."""
        own = self.state_dict()
        if 'pos_embed' in state and 'pos_embed' in own and \
                state['pos_embed'].shape != own['pos_embed'].shape:
            src = state['pos_embed']
            n = src.shape[1] - 1  # with cls
            side = int(round(n**0.5))
            if side * side != n:
                raise ValueError(f'pos_embed of shape {tuple(src.shape)} is '
                                 'not a square grid plus cls')
            grid = resize_pos_table(src[0, 1:], (side, side), self.pos_grid)
            state['pos_embed'] = torch.cat([src[:, :1], grid[None]], dim=1)
            print_log(f'resized pos_embed {tuple(src.shape)} -> '
                      f'{tuple(state["pos_embed"].shape)}', logger='current')
        for key, value in list(state.items()):
            if key not in own or value.shape == own[key].shape:
                continue
            if key.endswith('relative_position_bias_table'):
                src, dst = (_square_side(n - 3, key)
                            for n in (value.shape[0], own[key].shape[0]))
                state[key] = resize_beit_table(value, (src, src), (dst, dst))
            elif key.endswith(('rel_pos_h', 'rel_pos_w')):
                state[key] = resize_pos_table(value, value.shape[:1],
                                              own[key].shape[:1])
        return state


def _check_position_options(pos_embed: str,
                            pretrain_img_size: Optional[int],
                            pos_embed_init: Optional[str],
                            patch_size: int) -> None:
    """Errors naming the key for absolute-position settings that are
    unknown or would do nothing."""
    if pos_embed not in POS_EMBEDS:
        raise ValueError(f'pos_embed must be one of {POS_EMBEDS}, got '
                         f'{pos_embed!r}')
    learned = pos_embed in ('learned', 'interpolated')
    if pos_embed_init is not None:
        if pos_embed_init not in POS_EMBED_INITS:
            raise ValueError(f'pos_embed_init must be one of '
                             f'{POS_EMBED_INITS}, got {pos_embed_init!r}')
        if not learned:
            raise ValueError(
                f'pos_embed_init={pos_embed_init!r} initialises a learned '
                "pos_embed ('learned' or 'interpolated'); with "
                f'pos_embed={pos_embed!r} it would do nothing')
    if pretrain_img_size is not None:
        if pos_embed != 'interpolated' and pos_embed_init != 'sincos':
            raise ValueError(
                f'pretrain_img_size={pretrain_img_size} is used by '
                "pos_embed='interpolated' and pos_embed_init='sincos' only; "
                f'with pos_embed={pos_embed!r} and pos_embed_init='
                f'{pos_embed_init!r} it would do nothing')
        if not isinstance(pretrain_img_size, int) or \
                pretrain_img_size < patch_size:
            raise ValueError(f'pretrain_img_size must be an int of at least '
                             f'the patch size {patch_size}, got '
                             f'{pretrain_img_size!r}')


def _square_side(n: int, key: str) -> int:
    """The side of a square grid of ``n`` cells (the offset grid of a BEiT
    bias table); an error names the table when ``n`` is not a square."""
    side = int(round(n**0.5))
    if side * side != n:
        raise ValueError(f'{key}: {n + 3} rows are not a square grid of '
                         'offsets plus 3 cls entries; only square tables '
                         'are resized')
    return side
