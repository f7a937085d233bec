"""Building blocks shared by the models."""
from .irpe import (IRPEKeyBias, irpe_bucket_ids, num_irpe_buckets,
                   piecewise_bucket)

__all__ = [
    'IRPEKeyBias', 'irpe_bucket_ids', 'num_irpe_buckets', 'piecewise_bucket'
]
