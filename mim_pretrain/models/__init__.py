"""Models: the shared ViT and the pretraining algorithms built on it."""
from .lomar import LoMaR, LoMaRHead, LoMaRViT, patchify, unpatchify
from .vit import (Attention, Block, PatchEmbed, VisionTransformer,
                  sincos_pos_embed_2d)

__all__ = [
    'VisionTransformer', 'PatchEmbed', 'Attention', 'Block',
    'sincos_pos_embed_2d', 'LoMaR', 'LoMaRViT', 'LoMaRHead', 'patchify',
    'unpatchify'
]
