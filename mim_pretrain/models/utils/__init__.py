"""Building blocks shared by the models."""
from .irpe import (IRPEKeyBias, irpe_bucket_ids, num_irpe_buckets,
                   piecewise_bucket)
from .precision import float32_region, upcast

__all__ = [
    'float32_region', 'IRPEKeyBias', 'irpe_bucket_ids', 'num_irpe_buckets',
    'piecewise_bucket', 'upcast'
]
