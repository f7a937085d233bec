"""Key mapping of LocalMIM-Swin checkpoints to the OpenMMLab Swin layout.

The layout this toolkit pretrains in (:class:`~mim_pretrain.models.
localmim_swin.LocalMIMSwinTransformer`) is the one of mmdet's and mmseg's
``SwinTransformer`` and of mmpretrain's (``patch_embed.projection``,
``stages.{i}.blocks.{j}.attn.w_msa.*``, ``ffn.layers.{0.0,1}``,
``stages.{i}.downsample.{norm,reduction}``, ``norm3``), with the tap norms of
the inner stages as ``tap_norms.{i}``. Its patch merging reads the 2x2
neighbours in nn.Unfold's channel-major order (``c * 4 + k``, k over
(0,0), (0,1), (1,0), (1,1) as (row, col) offsets).

The LocalMIM authors' Swin checkpoints (GreenMIM-based) keep the encoder
under ``encoder.`` with official-Swin names (``layers.{i}``, ``attn.qkv``,
``mlp.fc1``, ``patch_embed.proj``) and a patch merging that concatenates the
neighbours, neighbour-major, in the order (0,0), (0,1), (1,0), (1,1) (official
Swin: (0,0), (1,0), (0,1), (1,1)); the merging weights are permuted here.
"""
import re
from typing import Dict, List, Sequence, Tuple

import torch

State = Dict[str, torch.Tensor]
Order = Sequence[Tuple[int, int]]

# (row, col) offset of each neighbour in a concatenating patch merging
AUTHORS_ORDER: Order = ((0, 0), (0, 1), (1, 0), (1, 1))
OFFICIAL_ORDER: Order = ((0, 0), (1, 0), (0, 1), (1, 1))
UNFOLD_ORDER: Order = ((0, 0), (0, 1), (1, 0), (1, 1))

RENAMES = [
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^patch_embed\.norm\.', 'patch_embed.norm.'),
    (r'^layers\.(\d+)\.blocks\.(\d+)\.attn\.(qkv|proj)\.',
     r'stages.\1.blocks.\2.attn.w_msa.\3.'),
    (r'^layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_position_bias_table$',
     r'stages.\1.blocks.\2.attn.w_msa.relative_position_bias_table'),
    (r'^layers\.(\d+)\.blocks\.(\d+)\.(norm1|norm2)\.',
     r'stages.\1.blocks.\2.\3.'),
    (r'^layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\.',
     r'stages.\1.blocks.\2.ffn.layers.0.0.'),
    (r'^layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc2\.',
     r'stages.\1.blocks.\2.ffn.layers.1.'),
    (r'^layers\.(\d+)\.downsample\.(norm|reduction)\.',
     r'stages.\1.downsample.\2.'),
]


def merging_to_unfold(value: torch.Tensor, order: Order) -> torch.Tensor:
    """Permute a patch-merging LayerNorm parameter ``[4C]`` or reduction
    weight ``[out, 4C]`` from a neighbour-major concatenation in ``order``
    to nn.Unfold's channel-major layout."""
    perm = [list(order).index(k) for k in UNFOLD_ORDER]
    x = value.reshape(-1, 4, value.shape[-1] // 4)[:, perm]
    return x.transpose(1, 2).reshape(value.shape)


def convert_localmim_swin(state: State,
                          order: Order = AUTHORS_ORDER
                          ) -> Tuple[State, List[str]]:
    """The LocalMIM authors' Swin checkpoint -> ``backbone.*`` in this
    toolkit's (= mmdet/mmseg/mmpretrain) Swin layout.

    Encoder keys are read under ``encoder.``. The tap norms are recognised
    as ``norm.{k}`` (the authors' ViT release's convention), at the top
    level or under ``encoder.``: the last stage's becomes ``norm{last}``,
    the others ``tap_norms.{k}``; a single ``encoder.norm`` (GreenMIM's
    final norm) becomes ``norm{last}``. Buffers (``relative_position_index``,
    ``attn_mask``), decoders and targets are dropped.

    Args:
        state: the authors' state dict (the ``'model'`` entry).
        order: neighbour order of the source's patch merging.

    Returns:
        tuple: the converted state dict and the dropped source keys.
    """
    depth_keys = [k for k in state if re.match(r'^encoder\.layers\.\d+\.', k)]
    if not depth_keys:
        return {}, sorted(state)
    last = max(int(k.split('.')[2]) for k in depth_keys)
    out, dropped = {}, []
    for key, value in state.items():
        new = None
        m = re.match(r'^(?:encoder\.)?norm\.(\d+)\.(weight|bias)$', key)
        if m:
            k = int(m.group(1))
            new = (f'norm{last}' if k == last else f'tap_norms.{k}'
                   ) + f'.{m.group(2)}'
        elif re.match(r'^encoder\.norm\.(weight|bias)$', key):
            new = f'norm{last}.{key.rsplit(".", 1)[1]}'
        elif key.startswith('encoder.'):
            src = key[len('encoder.'):]
            for pattern, repl in RENAMES:
                if re.match(pattern, src):
                    new = re.sub(pattern, repl, src)
                    if '.downsample.' in src:
                        value = merging_to_unfold(value, order)
                    break
        if new is None:
            dropped.append(key)
        else:
            out['backbone.' + new] = value
    return out, dropped


def taps_to_mmpretrain(state: State) -> State:
    """``backbone.tap_norms.{i}`` -> ``backbone.norm{i}``: the tap norms of
    the inner stages as mmpretrain's ``SwinTransformer(
    out_after_downsample=True)`` names its per-stage norms (its stage
    outputs after patch merging are exactly the taps)."""
    return {
        re.sub(r'^backbone\.tap_norms\.(\d+)\.', r'backbone.norm\1.', k): v
        for k, v in state.items()
    }
