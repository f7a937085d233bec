"""Necks: LocalMIM's local decoders (pretraining), ViTDet's simple
feature pyramid (detection) and mmseg's Feature2Pyramid with a choice of
pooling (segmentation)."""
from .feature2pyramid_pool import Feature2PyramidPool
from .localmim_decoders import SCALES, LocalDecoder, LocalMIMDecoders
from .vit_feature_pyramid import ViTFeaturePyramid

__all__ = [
    'SCALES', 'Feature2PyramidPool', 'LocalDecoder', 'LocalMIMDecoders',
    'ViTFeaturePyramid'
]
