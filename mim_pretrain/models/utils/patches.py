"""Images to patches and back, and per-patch normalisation of pixels."""
from typing import Tuple

import torch


def patchify(imgs: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, h*w, p*p*C]`` (MAE's (p, q, c) order)."""
    b, c, h, w = imgs.shape
    p = patch_size
    x = imgs.reshape(b, c, h // p, p, w // p, p)
    return torch.einsum('nchpwq->nhwpqc', x).reshape(
        b, (h // p) * (w // p), p * p * c)


def unpatchify(x: torch.Tensor, patch_size: int, grid: Tuple[int, int],
               channels: int = 3) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``[B, h*w, p*p*C]`` -> images."""
    p = patch_size
    h, w = grid
    x = x.reshape(x.shape[0], h, w, p, p, channels)
    return torch.einsum('nhwpqc->nchpwq', x).reshape(
        x.shape[0], channels, h * p, w * p)


def gather_patches(imgs: torch.Tensor, patch_index: torch.Tensor,
                   patch_size: int) -> torch.Tensor:
    """Pixels of chosen patches, cut straight from the images.

    Args:
        imgs: ``[B, C, H, W]``, H and W multiples of ``patch_size``.
        patch_index: long ``[B, K]`` raster indices into each image's patch
            grid.
        patch_size: patch side ``p``.

    Returns:
        torch.Tensor: ``[B, K, C, p, p]`` (the layout a patch has in the
        image, which the patch-embedding kernel expects).
    """
    b, c, h, w = imgs.shape
    p = patch_size
    cols = w // p
    x = imgs.reshape(b, c, h // p, p, cols, p)
    owner = torch.arange(b, device=imgs.device)[:, None]
    # the advanced indices (image, patch row, patch col) come first
    return x[owner, :, patch_index // cols, :, patch_index % cols]


def normalize_patches(target: torch.Tensor, eps: float = 1e-6
                      ) -> torch.Tensor:
    """Per-patch normalisation of pixel targets (``norm_pix_loss``).

    Mean and (unbiased) variance over the last dim, as MAE's, LoMaR's and
    LocalMIM's code compute them; the caller keeps it in float32 under
    autocast (see :func:`~.precision.float32_region`).
    """
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    return (target - mean) / (var + eps)**.5
