"""mmseg's ``Feature2Pyramid`` with a choice of pooling for the coarse
levels (the LocalMIM authors' segmentation ViT average-pools)."""
from typing import Optional, Sequence

import torch.nn as nn
from mmseg.models.necks import Feature2Pyramid

from ...registry import register_transfer_model

POOLS = ('max', 'avg')


@register_transfer_model()
class Feature2PyramidPool(Feature2Pyramid):
    """Four ViT maps to a 4x / 2x / 1x / 0.5x pyramid, as mmseg's
    ``Feature2Pyramid`` (same layers and parameter names), with the 0.5x and
    0.25x levels made by ``pool``.

    mmseg's MAE/BEiT configs max-pool; the LocalMIM authors' segmentation
    ViT (``semantic_segmentation/backbone/vit.py``, its ``fpn4``) average-
    pools, with the same transposed convs and SyncBN before.

    Args:
        embed_dim: ViT width.
        rescales: the scale of each input map, from (4, 2, 1, 0.5, 0.25).
        norm_cfg: norm of the 4x branch (mmseg's default SyncBN).
        pool: ``'max'`` (mmseg) or ``'avg'`` (LocalMIM authors).
    """

    def __init__(self,
                 embed_dim: int,
                 rescales: Sequence[float] = (4, 2, 1, 0.5),
                 norm_cfg: Optional[dict] = None,
                 pool: str = 'max') -> None:
        if pool not in POOLS:
            raise ValueError(f'Feature2PyramidPool: pool must be one of '
                             f'{POOLS}, got {pool!r}')
        super().__init__(
            embed_dim, list(rescales),
            norm_cfg or dict(type='SyncBN', requires_grad=True))
        self.pool = pool
        if pool == 'avg':
            for k, name in ((0.5, 'downsample_2x'), (0.25, 'downsample_4x')):
                if k in self.rescales:
                    size = int(1 / k)
                    setattr(self, name,
                            nn.AvgPool2d(kernel_size=size, stride=size))
