"""Layer-wise learning-rate decay for the toolkit's ViT, in any scope."""
from collections import OrderedDict
from typing import Callable, List

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

from ..models.vit import VisionTransformer
from ..registry import register_engine

# parameters (by their own name) that never get weight decay besides 1-D ones
NO_DECAY_NAMES = ('cls_token', 'mask_token', 'pos_embed',
                  'lookup_table_weight', 'rel_pos_h', 'rel_pos_w',
                  'relative_position_bias_table')
WEIGHT_DECAY_RULES = ('toolkit', 'vitdet', 'mmseg')


@register_engine(OPTIM_WRAPPER_CONSTRUCTORS)
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay (BEiT / MAE fine-tuning) by layer depth.

    The model's :class:`~mim_pretrain.models.vit.VisionTransformer` (found by
    type, wherever it sits: ``backbone`` of a detector, a segmentor or a
    classifier) gives the layer ids: its patch embedding and its own tokens
    and position embedding are layer 0, block ``i`` is layer ``i + 1``,
    everything else (its final norms, necks, heads) is layer ``depth + 1``.
    A parameter of layer ``l`` gets ``lr = base_lr * rate ** (depth + 1 -
    l)`` (the same rates as mmdet's ViTDet and mmseg's BEiT/MAE
    constructors, whose ``num_layers + 2`` layers these are).

    Which parameters get no weight decay (``weight_decay_rule``):

    * ``'toolkit'`` (default): 1-D parameters (norms, biases, layer scale),
      tokens, position embeddings and relative-position tables.
    * ``'vitdet'``: what mmdet's ``projects/ViTDet``
      ``LayerDecayOptimizerConstructor`` exempts: the LayerNorms of the
      ViT's blocks and its ``pos_embed``, nothing else (biases, the
      relative-position tables, the neck's and heads' norms are decayed).
    * ``'mmseg'``: what mmseg's ``LearningRateDecayOptimizerConstructor``
      (MAE/BEiT configs) and the BEiT-derived constructor of the LocalMIM
      authors' segmentation code exempt: 1-D parameters and biases. Both
      also list ``pos_embed`` and ``cls_token``, but compare them with the
      full ``backbone.``-prefixed names, so those (and the relative-position
      tables) are decayed; this rule does what they do.

    ``paramwise_cfg``: ``layer_decay_rate`` (required, e.g. 0.65 or 0.7),
    ``weight_decay_rule`` (optional). Other ``paramwise_cfg`` keys of
    mmengine's default constructor are not supported here and raise, rather
    than being silently ignored.
    """

    def __init__(self, optim_wrapper_cfg: dict,
                 paramwise_cfg: dict = None) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        if 'layer_decay_rate' not in paramwise_cfg:
            raise ValueError('LayerDecayOptimWrapperConstructor needs '
                             'paramwise_cfg=dict(layer_decay_rate=...)')
        self.layer_decay_rate = float(paramwise_cfg.pop('layer_decay_rate'))
        self.weight_decay_rule = paramwise_cfg.pop('weight_decay_rule',
                                                   'toolkit')
        if self.weight_decay_rule not in WEIGHT_DECAY_RULES:
            raise ValueError(
                'LayerDecayOptimWrapperConstructor: paramwise_cfg.'
                f'weight_decay_rule must be one of {WEIGHT_DECAY_RULES}, '
                f'got {self.weight_decay_rule!r}')
        if paramwise_cfg:
            raise ValueError(
                'LayerDecayOptimWrapperConstructor does not support '
                f'paramwise_cfg keys {sorted(paramwise_cfg)}')
        super().__init__(optim_wrapper_cfg, None)
        # non-empty, so that the parent's __call__ goes through add_params
        self.paramwise_cfg = dict(layer_decay_rate=self.layer_decay_rate,
                                  weight_decay_rule=self.weight_decay_rule)

    def _no_decay(self, vit: VisionTransformer
                  ) -> Callable[[str, nn.Parameter], bool]:
        """Whether a parameter (by its name in the model) gets no weight
        decay under ``weight_decay_rule``."""
        if self.weight_decay_rule == 'toolkit':
            return lambda name, p: (p.ndim == 1 or name.rsplit('.', 1)[-1]
                                    in NO_DECAY_NAMES)
        if self.weight_decay_rule == 'mmseg':
            return lambda name, p: p.ndim == 1 or name.endswith('.bias')
        # ViTDet's rule by structure, not by the 'backbone.' prefix: the
        # blocks' LayerNorms and the absolute position embedding
        exempt = {
            id(p)
            for m in vit.blocks.modules() if isinstance(m, nn.LayerNorm)
            for p in m.parameters()
        }
        if isinstance(getattr(vit, 'pos_embed', None), nn.Parameter):
            exempt.add(id(vit.pos_embed))
        return lambda name, p: id(p) in exempt

    def add_params(self, params: List[dict], module: nn.Module,
                   **kwargs) -> None:
        vits = [m for m in module.modules()
                if isinstance(m, VisionTransformer)]
        if len(vits) != 1:
            raise ValueError(
                'LayerDecayOptimWrapperConstructor needs exactly one '
                f'mim_pretrain VisionTransformer in the model, found '
                f'{len(vits)} ({type(module).__name__})')
        vit = vits[0]
        depth = vit.depth
        layer_of = {}
        for p in vit.patch_embed.parameters():
            layer_of[id(p)] = 0
        for p in vit.parameters(recurse=False):
            layer_of[id(p)] = 0
        for i, blk in enumerate(vit.blocks):
            for p in blk.parameters():
                layer_of[id(p)] = i + 1
        is_no_decay = self._no_decay(vit)
        groups = OrderedDict()
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            layer = layer_of.get(id(p), depth + 1)
            no_decay = is_no_decay(name, p)
            key = (layer, no_decay)
            if key not in groups:
                scale = self.layer_decay_rate**(depth + 1 - layer)
                groups[key] = dict(
                    params=[], lr=self.base_lr * scale, lr_scale=scale,
                    weight_decay=0. if no_decay else self.base_wd,
                    layer_id=layer, param_names=[])
            groups[key]['params'].append(p)
            groups[key]['param_names'].append(name)
        params.extend(groups.values())
        print_log(
            f'layer-wise lr decay {self.layer_decay_rate} over '
            f'{depth + 2} layers, weight decay rule '
            f'{self.weight_decay_rule!r}: ' + ', '.join(
                f'layer {g["layer_id"]}{" (no wd)" if k[1] else ""}: '
                f'x{g["lr_scale"]:.4g}, {len(g["params"])} tensors'
                for k, g in groups.items()),
            logger='current')
