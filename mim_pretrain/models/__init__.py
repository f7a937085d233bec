"""Models: the shared ViT and the pretraining algorithms built on it."""
from .backbone import MIMVisionTransformer, ViTFeaturePyramid
from .localmim import LocalMIM, LocalMIMDecoders, LocalMIMHead, LocalMIMViT
from .localmim_swin import LocalMIMSwin, LocalMIMSwinTransformer
from .lomar import LoMaR, LoMaRHead, LoMaRViT, patchify, unpatchify
from .targets import HOGTarget, PixelTarget
from .vit import (Attention, Block, PatchEmbed, VisionTransformer,
                  sincos_pos_embed_2d)

__all__ = [
    'VisionTransformer', 'PatchEmbed', 'Attention', 'Block', 'LocalMIM',
    'LocalMIMViT', 'LocalMIMDecoders', 'LocalMIMHead', 'LocalMIMSwin',
    'LocalMIMSwinTransformer', 'HOGTarget',
    'PixelTarget', 'MIMVisionTransformer', 'ViTFeaturePyramid',
    'sincos_pos_embed_2d', 'LoMaR', 'LoMaRViT', 'LoMaRHead', 'patchify',
    'unpatchify'
]
