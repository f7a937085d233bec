"""Where mim_pretrain's modules are registered, and the helpers that do it.

The rule (see ``docs/registration.md``):

* Pretraining parts (algorithms, necks, heads, targets) go into mmpretrain's
  registries: pretraining configs run with ``default_scope='mmpretrain'`` and
  write ``type='LoMaR'`` etc.
* Transfer parts (the downstream ViT backbone and its necks) go into the
  ``MODELS`` registries of mmdet, mmseg *and* mmpretrain under the same name,
  so a detection config (scope ``mmdet``) and a segmentation config (scope
  ``mmseg``) both write a plain ``type='...'`` with no scope prefix.
* Engine parts (hooks, optimizer-wrapper constructors) go into mmengine's root
  registries, which every scope searches.

Every config loads the package with
``custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)``
and importing the package registers everything.
"""
from typing import Callable, List, Optional, Sequence, Tuple, Type

from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.registry import Registry
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmseg.registry import MODELS as MMSEG_MODELS

# (registry scope, registry name, module name) of everything registered here
_REGISTERED: List[Tuple[str, str, str]] = []


def register_in(registries: Sequence[Registry],
                name: Optional[str] = None,
                force: bool = False) -> Callable[[Type], Type]:
    """Class decorator registering one class in several registries.

    Args:
        registries: the registries to register in.
        name: the registered name (default: the class name).
        force: overwrite an existing entry of the same name.

    Returns:
        The decorator; it returns the class unchanged.
    """

    def decorator(cls: Type) -> Type:
        for registry in registries:
            registry.register_module(name=name, force=force, module=cls)
            _REGISTERED.append(
                (registry.scope, registry.name, name or cls.__name__))
        return cls

    return decorator


def register_pretrain_model(name: Optional[str] = None) -> Callable:
    """Register a pretraining module in mmpretrain's ``MODELS``."""
    return register_in([MMPRETRAIN_MODELS], name=name)


def register_transfer_model(name: Optional[str] = None) -> Callable:
    """Register a transfer module in mmdet's, mmseg's and mmpretrain's
    ``MODELS``, under one name."""
    return register_in([MMDET_MODELS, MMSEG_MODELS, MMPRETRAIN_MODELS],
                       name=name)


def registered_modules() -> List[Tuple[str, str, str]]:
    """What mim_pretrain registered: (scope, registry name, module name)."""
    return list(_REGISTERED)
