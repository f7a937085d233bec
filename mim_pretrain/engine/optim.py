"""Layer-wise learning-rate decay for the toolkit's ViT, in any scope."""
from collections import OrderedDict
from typing import List

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


@register_engine(OPTIM_WRAPPER_CONSTRUCTORS)
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay (BEiT / MAE fine-tuning) by layer depth.

    The model's :class:`~mim_pretrain.models.vit.VisionTransformer` (found by
    type, wherever it sits: ``backbone`` of a detector, a segmentor or a
    classifier) gives the layer ids: its patch embedding and its own tokens
    and position embedding are layer 0, block ``i`` is layer ``i + 1``,
    everything else (its final norms, necks, heads) is layer ``depth + 1``.
    A parameter of layer ``l`` gets ``lr = base_lr * rate ** (depth + 1 -
    l)``. Weight decay is 0 for 1-D parameters (norms, biases, layer scale)
    and for tokens, position embeddings and relative-position tables.

    ``paramwise_cfg``: ``layer_decay_rate`` (required, e.g. 0.65 or 0.7).
    Other ``paramwise_cfg`` keys of mmengine's default constructor are not
    supported here and raise, rather than being silently ignored.
    """

    def __init__(self, optim_wrapper_cfg: dict,
                 paramwise_cfg: dict = None) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        if 'layer_decay_rate' not in paramwise_cfg:
            raise ValueError('LayerDecayOptimWrapperConstructor needs '
                             'paramwise_cfg=dict(layer_decay_rate=...)')
        self.layer_decay_rate = float(paramwise_cfg.pop('layer_decay_rate'))
        if paramwise_cfg:
            raise ValueError(
                'LayerDecayOptimWrapperConstructor does not support '
                f'paramwise_cfg keys {sorted(paramwise_cfg)}')
        super().__init__(optim_wrapper_cfg, None)
        # non-empty, so that the parent's __call__ goes through add_params
        self.paramwise_cfg = dict(layer_decay_rate=self.layer_decay_rate)

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
        groups = OrderedDict()
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            layer = layer_of.get(id(p), depth + 1)
            no_decay = p.ndim == 1 or name.rsplit('.',
                                                  1)[-1] in NO_DECAY_NAMES
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
            f'{depth + 2} layers: ' + ', '.join(
                f'layer {g["layer_id"]}{" (no wd)" if k[1] else ""}: '
                f'x{g["lr_scale"]:.4g}, {len(g["params"])} tensors'
                for k, g in groups.items()),
            logger='current')
