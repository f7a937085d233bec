"""Models: the shared ViT, the pretraining algorithms built on it, the
downstream backbone, the necks and the reconstruction targets."""
from .backbone import MIMVisionTransformer
from .localmim import LocalMIM, LocalMIMHead, LocalMIMViT
from .localmim_swin import LocalMIMSwin, LocalMIMSwinTransformer
from .lomar import LoMaR, LoMaRHead, LoMaRViT
from .necks import Feature2PyramidPool, LocalMIMDecoders, ViTFeaturePyramid
from .targets import HOGTarget, PixelTarget
from .utils import patchify, sincos_pos_embed_2d, unpatchify
from .vit import Attention, Block, PatchEmbed, VisionTransformer

__all__ = [
    'VisionTransformer', 'PatchEmbed', 'Attention', 'Block', 'LocalMIM',
    'LocalMIMViT', 'LocalMIMDecoders', 'LocalMIMHead', 'LocalMIMSwin',
    'LocalMIMSwinTransformer', 'HOGTarget',
    'PixelTarget', 'MIMVisionTransformer', 'ViTFeaturePyramid',
    'Feature2PyramidPool',
    'sincos_pos_embed_2d', 'LoMaR', 'LoMaRViT', 'LoMaRHead', 'patchify',
    'unpatchify'
]
