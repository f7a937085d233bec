"""Per-key caches of small tensors that depend only on a grid size."""
from typing import Callable, Dict, Hashable, TypeVar

T = TypeVar('T')


def cached(cache: Dict[Hashable, T], key: Hashable,
           make: Callable[[], T]) -> T:
    """``cache[key]``, made by ``make()`` the first time it is asked for.

    For what a module derives from the token grid alone (position tables,
    bucket and bias indices, window layouts): made once per grid, device
    and dtype, then reused every step.

    Args:
        cache: the module's own dict.
        key: what the value depends on, e.g. ``(grid, device, dtype)``.
        make: computes the value.

    Returns:
        The cached value.
    """
    if key not in cache:
        cache[key] = make()
    return cache[key]
