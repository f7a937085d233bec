"""Necks: LocalMIM's local decoders (pretraining) and ViTDet's simple
feature pyramid (detection)."""
from .localmim_decoders import SCALES, LocalDecoder, LocalMIMDecoders
from .vit_feature_pyramid import ViTFeaturePyramid

__all__ = ['SCALES', 'LocalDecoder', 'LocalMIMDecoders', 'ViTFeaturePyramid']
