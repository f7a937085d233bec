"""Random patch masks and their resampling to other grids."""
from typing import Tuple

import torch
import torch.nn.functional as F


def random_masking(batch: int, num_tokens: int, mask_ratio: float,
                   device: torch.device
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE's per-sample random masking by sorting noise.

    Returns:
        tuple: ``ids_keep`` ``[B, n_keep]`` (visible token indices, in the
        shuffled order), ``ids_restore`` ``[B, N]`` and the mask ``[B, N]``
        (1 = masked), exactly ``N - int(N * (1 - mask_ratio))`` per sample.
    """
    n_keep = int(num_tokens * (1 - mask_ratio))
    if not 1 <= n_keep < num_tokens:
        raise ValueError(
            f'mask_ratio {mask_ratio} keeps {n_keep} of {num_tokens} '
            'patches; it must keep at least one and mask at least one')
    noise = torch.rand(batch, num_tokens, device=device)
    ids_shuffle = noise.argsort(dim=1)
    ids_restore = ids_shuffle.argsort(dim=1)
    mask = torch.ones(batch, num_tokens, device=device)
    mask[:, :n_keep] = 0
    mask = mask.gather(1, ids_restore)
    return ids_shuffle[:, :n_keep], ids_restore, mask


def resample_mask(mask: torch.Tensor, grid: Tuple[int, int],
                  size: Tuple[int, int]) -> torch.Tensor:
    """Patch mask ``[B, h*w]`` on another grid ``[B, H', W']``.

    Repeated (nearest) up to finer grids; average-pooled down to coarser
    ones, which gives fractional weights.
    """
    m = mask.reshape(-1, 1, *grid)
    if size[0] >= grid[0]:
        m = m.repeat_interleave(size[0] // grid[0], 2).repeat_interleave(
            size[1] // grid[1], 3)
    else:
        m = F.avg_pool2d(m, (grid[0] // size[0], grid[1] // size[1]))
    return m[:, 0]
