"""Datasets: generators of the built-in data in the real layouts, the
loading transforms that check their input, and the checks of a run's data
before it starts."""
from .synthetic import (ADE_CLASS_NAMES, DEFAULT_COUNTS, OBJECT_CLASSES,
                        STYLES, TEXTURES, ade20k_label_ids, generate_ade20k,
                        generate_all, generate_coco, generate_imagenet,
                        generate_texture_ade20k, make_scene)
from .transforms import (CheckedLoadAnnotations, CheckedLoadImageFromFile,
                         check_labels, truncation_error)

__all__ = [
    'OBJECT_CLASSES', 'ADE_CLASS_NAMES', 'STYLES', 'TEXTURES',
    'DEFAULT_COUNTS', 'ade20k_label_ids', 'make_scene',
    'generate_coco', 'generate_ade20k', 'generate_imagenet', 'generate_all',
    'generate_texture_ade20k',
    'CheckedLoadImageFromFile', 'CheckedLoadAnnotations', 'check_labels',
    'truncation_error'
]
