"""Building blocks shared by the models: layers, position encodings, patch
and mask helpers, initialisation and caching."""
from .cache import cached
from .init import pretrained_cfg, xavier_init_
from .irpe import (IRPEKeyBias, irpe_bucket_ids, num_irpe_buckets,
                   piecewise_bucket)
from .layers import DropPath, LayerNorm2d, LayerScale, Mlp, rescale_layers
from .masking import random_masking, resample_mask
from .patches import gather_patches, normalize_patches, patchify, unpatchify
from .pos_embed import (SinCosPosition, beit_bias_index, decomposed_rel_pos,
                        resize_beit_table, resize_pos_table,
                        sincos_pos_embed_2d)
from .precision import float32_region, upcast

__all__ = [
    'beit_bias_index', 'cached', 'decomposed_rel_pos', 'DropPath',
    'float32_region', 'gather_patches', 'IRPEKeyBias', 'irpe_bucket_ids',
    'LayerNorm2d', 'LayerScale', 'Mlp', 'normalize_patches',
    'num_irpe_buckets', 'patchify', 'piecewise_bucket', 'pretrained_cfg',
    'random_masking', 'resample_mask', 'rescale_layers', 'resize_beit_table',
    'resize_pos_table', 'SinCosPosition', 'sincos_pos_embed_2d', 'unpatchify',
    'upcast', 'xavier_init_'
]
