"""Key mapping of published ViT checkpoints to this toolkit's layout.

Every function takes the published state dict (the ``'model'`` entry of the
authors' files) and returns ``(state_dict, dropped)``: the state dict in this
toolkit's names, ready to save as ``{'state_dict': ...}``, and the source
keys that have no counterpart here (reported by the converter tool).

Layouts (see ``docs/transfer.md``):

* LoMaR (junchen14/LoMaR): timm block names, ``blocks.{i}.attn.rpe_k.
  lookup_table_weight`` ``[1, head_dim, 50]``, ``mask_token``,
  ``encoder_pred`` and an unused ``pos_embed``; -> a LoMaR algorithm state
  dict (``backbone.*``, ``head.predictor.*``).
* LocalMIM ViT (Haoqing-Wang/LocalMIM): timm block names, a stored sin-cos
  ``pos_embed``, per-tap norms ``norm.{0..3}`` (``norm.3`` final),
  ``decoder.*``, ``hog_enc.*``; -> ``backbone.*`` with ``norm.3`` as the
  final ``norm``, the inner tap norms as ``tap_norms.<block>``, the
  position embedding kept (for ``pos_embed='learned'`` downstream), decoders
  dropped.
* MAE (facebookresearch/mae): timm names; -> ``backbone.*``, decoder and
  ``mask_token`` dropped.
* mmpretrain's ``MAEViT`` / ``VisionTransformer`` (``layers.{i}.ln1``,
  ``ffn.layers.0.0``, ``ln1``, ``patch_embed.projection``) -> ours.
"""
import re
from typing import Dict, List, Sequence, Tuple

import torch

State = Dict[str, torch.Tensor]

ENCODER = re.compile(r'^(cls_token|pos_embed|patch_embed\.proj\.(weight|bias)'
                     r'|blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|'
                     r'mlp\.fc1|mlp\.fc2)\.(weight|bias)'
                     r'|blocks\.\d+\.attn\.rpe_k\.lookup_table_weight'
                     r'|norm\.(weight|bias))$')


def _split(state: State, keep) -> Tuple[State, List[str]]:
    out, dropped = {}, []
    for key, value in state.items():
        new = keep(key)
        if new is None:
            dropped.append(key)
        else:
            out[new] = value
    return out, dropped


def convert_lomar(state: State) -> Tuple[State, List[str]]:
    """The authors' LoMaR checkpoint -> a ``LoMaR`` state dict."""

    def keep(key):
        if key == 'pos_embed':  # a sin-cos buffer LoMaR never adds
            return None
        if ENCODER.match(key) or key == 'mask_token':
            return 'backbone.' + key
        if key.startswith('encoder_pred.'):
            return 'head.predictor.' + key.split('.', 1)[1]
        return None

    return _split(state, keep)


def convert_localmim(state: State,
                     taps: Sequence[int] = None) -> Tuple[State, List[str]]:
    """The authors' LocalMIM ViT checkpoint -> ``backbone.*``.

    Args:
        state: the authors' state dict.
        taps: the tapped blocks (default LocalMIM's [1, 3, depth-3,
            depth-1], depth read from the keys).
    """
    depth = 1 + max(int(k.split('.')[1]) for k in state
                    if k.startswith('blocks.'))
    taps = list(taps or (1, 3, depth - 3, depth - 1))

    def keep(key):
        m = re.match(r'^norm\.(\d+)\.(weight|bias)$', key)
        if m:
            block = taps[int(m.group(1))]
            if block == depth - 1:
                return f'backbone.norm.{m.group(2)}'
            return f'backbone.tap_norms.{block}.{m.group(2)}'
        if ENCODER.match(key) and not key.startswith('norm.'):
            return 'backbone.' + key
        return None

    return _split(state, keep)


def convert_mae(state: State) -> Tuple[State, List[str]]:
    """The MAE authors' checkpoint (pretrained or fine-tuned) ->
    ``backbone.*`` (decoder, mask token and classifier dropped)."""
    return _split(state, lambda k: 'backbone.' + k
                  if ENCODER.match(k) else None)


MMPRETRAIN_VIT = [
    (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
    (r'^layers\.(\d+)\.ln1\.', r'blocks.\1.norm1.'),
    (r'^layers\.(\d+)\.ln2\.', r'blocks.\1.norm2.'),
    (r'^layers\.(\d+)\.attn\.qkv\.', r'blocks.\1.attn.qkv.'),
    (r'^layers\.(\d+)\.attn\.proj\.', r'blocks.\1.attn.proj.'),
    (r'^layers\.(\d+)\.ffn\.layers\.0\.0\.', r'blocks.\1.mlp.fc1.'),
    (r'^layers\.(\d+)\.ffn\.layers\.1\.', r'blocks.\1.mlp.fc2.'),
    (r'^ln1\.', 'norm.'),
]


def is_mmpretrain_vit(state: State) -> bool:
    """Whether a (prefix-stripped) state dict uses mmpretrain ViT names."""
    return any(k.startswith('layers.0.ln1.') for k in state)


def convert_mmpretrain_vit(state: State) -> Tuple[State, List[str]]:
    """mmpretrain ``VisionTransformer``/``MAEViT`` names (prefix stripped)
    -> this toolkit's; ``cls_token``, ``pos_embed`` keep their names."""

    def keep(key):
        for pattern, repl in MMPRETRAIN_VIT:
            if re.match(pattern, key):
                return re.sub(pattern, repl, key)
        return key if key in ('cls_token', 'pos_embed') else None

    return _split(state, keep)
