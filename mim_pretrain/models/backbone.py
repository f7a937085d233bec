"""The downstream ViT backbone for mmdet, mmseg and mmpretrain configs.

It is the shared :class:`~mim_pretrain.models.vit.VisionTransformer` (same
parameter names), so LoMaR, LocalMIM and MAE pretraining checkpoints load by
prefix alone, LoMaR's iRPE tables included, with:

* any input size (padded to the patch size), absolute position resized
  bicubically to the input grid;
* window attention with global attention at chosen blocks (ViTDet), windows
  zero-padded when the grid is not a multiple of the window;
* optional ViTDet-style decomposed relative position for initialisations
  without one;
* ``out_indices`` feature maps ``[B, C, H/p, W/p]``, optional final norm
  or one LayerNorm per output (LocalMIM's tap norms, loadable from its
  checkpoints), drop path, layer scale, activation checkpointing;
* loud loading: missing/unexpected keys logged, position tables resized, and
  an error when (almost) nothing of the backbone was loaded.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict

from ..converters.io import checkpoint_state_dict
from ..converters.vit import convert_mmpretrain_vit, is_mmpretrain_vit
from ..registry import register_transfer_model
from .utils import pretrained_cfg, resize_beit_table, resize_pos_table
from .vit import VisionTransformer


@register_transfer_model()
class MIMVisionTransformer(VisionTransformer):
    """Plain ViT backbone for detection and segmentation.

    Args:
        arch: ``'s'``, ``'b'``, ``'l'``, ``'h'`` or a dict.
        patch_size: patch side.
        img_size: pretraining input size (for a learned ``pos_embed``).
        pos_embed: ``'learned'`` (loads MAE / LocalMIM ``pos_embed`` and
            resizes it), ``'sincos'`` (fixed) or ``'none'`` (LoMaR).
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
        out_indices: blocks whose outputs are returned as feature maps.
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
                 final_norm: bool = False,
                 tap_norms: bool = False,
                 drop_path_rate: float = 0.,
                 layer_scale_init: Optional[float] = None,
                 qkv_bias: bool = True,
                 norm_eps: float = 1e-6,
                 with_cp: bool = False,
                 min_loaded: float = 0.5,
                 init_cfg: Optional[dict] = None) -> None:
        if window_size and with_cls_token:
            raise ValueError('window attention needs with_cls_token=False '
                             '(windows hold grid tokens only, as in ViTDet)')
        super().__init__(
            arch=arch, patch_size=patch_size, pos_embed=pos_embed,
            img_size=img_size, irpe=irpe, qkv_bias=qkv_bias,
            drop_path_rate=drop_path_rate,
            layer_scale_init=layer_scale_init, norm_eps=norm_eps,
            final_norm=True, pad_to_patch=True, with_cp=with_cp,
            window_size=window_size, global_blocks=global_blocks,
            rel_pos=rel_pos, init_cfg=init_cfg)
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
        self.min_loaded = min_loaded
        self._freeze_unused()

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
        """Feature maps ``[B, C, ceil(H/p), ceil(W/p)]`` of ``out_indices``.
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
            out = out[:, prefix:].transpose(1, 2).reshape(
                b, self.embed_dims, *grid)
            outs.append(out.contiguous())
        return tuple(outs)

    def init_weights(self) -> None:
        """Random init, or load a pretraining checkpoint (``Pretrained``).
        """
        cfg = pretrained_cfg(self.init_cfg)
        if cfg is None:
            return super().init_weights()
        init_cfg, self.init_cfg = self.init_cfg, None
        super().init_weights()  # for what the checkpoint does not hold
        self.init_cfg = init_cfg
        self.load_pretrained(cfg['checkpoint'], cfg.get('prefix', ''))
        self._is_init = True

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


def _square_side(n: int, key: str) -> int:
    """The side of a square grid of ``n`` cells (the offset grid of a BEiT
    bias table); an error names the table when ``n`` is not a square."""
    side = int(round(n**0.5))
    if side * side != n:
        raise ValueError(f'{key}: {n + 3} rows are not a square grid of '
                         'offsets plus 3 cls entries; only square tables '
                         'are resized')
    return side
