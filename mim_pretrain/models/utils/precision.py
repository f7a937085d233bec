"""What stays in float32 under mixed precision, in one place.

Under ``torch.autocast`` (bf16 or fp16, on a GPU or a CPU) matmuls and
convolutions run in the low dtype. Targets (HOG, normalised pixels) and
losses must not: a HOG histogram from bf16 gradients loses the small
magnitudes that make smooth regions' orientations, a per-patch std of bf16
pixels is off by up to 0.4%, and an fp16 squared error overflows at 256.
"""
from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def float32_region(like: torch.Tensor) -> Iterator[None]:
    """Switch autocast off for the device of ``like`` (a no-op outside
    autocast); the caller casts its inputs with ``.float()``."""
    with torch.autocast(device_type=like.device.type, enabled=False):
        yield


def upcast(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is in a 16-bit float dtype, else unchanged
    (float64 checks against reference code stay float64)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
