"""mim_pretrain: efficient masked image modeling (LoMaR, LocalMIM) on the
OpenMMLab stack.

Importing the package applies the compatibility fixes of :mod:`.compat` and
registers every module of the toolkit (see :mod:`.registry`).
"""
from . import compat  # noqa: F401  (applied on import)
from . import converters, datasets, engine, models, registry  # noqa: F401
from .version import __version__

__all__ = ['__version__']
