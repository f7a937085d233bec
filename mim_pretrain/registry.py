"""Where mim_pretrain's modules are registered, and the helpers that do it.

The rule (see ``docs/registration.md``):

* Pretraining parts (algorithms, necks, heads, targets) go into mmpretrain's
  registries: pretraining configs run with ``default_scope='mmpretrain'`` and
  write ``type='LoMaR'`` etc.
* Transfer parts (the downstream ViT backbone and its necks) go into the
  ``MODELS`` registries of mmdet, mmseg *and* mmpretrain under the same name,
  so a detection config (scope ``mmdet``) and a segmentation config (scope
  ``mmseg``) both write a plain ``type='...'`` with no scope prefix.
* Data transforms go into the ``TRANSFORMS`` registries of mmpretrain, mmdet
  and mmseg under one name (segmentation-only ones into mmseg's alone).
* Engine parts (hooks, loops, optimizer wrappers and their constructors) go
  into mmengine's root registries, which every scope searches.

Everything goes through :func:`register_in`, so it is listed by
:func:`registered_modules` and an unknown constructor argument is reported
the same way for every module (:func:`name_unknown_arguments`).

Every config loads the package with
``custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)``
and importing the package registers everything.
"""
import difflib
import functools
import inspect
import re
from typing import Callable, List, Optional, Sequence, Tuple, Type

from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.registry import TRANSFORMS as MMDET_TRANSFORMS
from mmengine.registry import Registry
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmpretrain.registry import TRANSFORMS as MMPRETRAIN_TRANSFORMS
from mmseg.registry import MODELS as MMSEG_MODELS
from mmseg.registry import TRANSFORMS as MMSEG_TRANSFORMS

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
        The decorator; it returns the class, whose constructor now reports an
        unknown keyword argument with the class name, the closest valid
        argument and the valid ones (see :func:`name_unknown_arguments`).
    """

    def decorator(cls: Type) -> Type:
        name_unknown_arguments(cls)
        for registry in registries:
            registry.register_module(name=name, force=force, module=cls)
            _REGISTERED.append(
                (registry.scope, registry.name, name or cls.__name__))
        return cls

    return decorator


_UNKNOWN = re.compile(r"unexpected keyword argument '(\w+)'")


def accepted_arguments(cls: Type) -> List[str]:
    """The keyword arguments ``cls(...)`` accepts, following ``**kwargs``
    up the class hierarchy."""
    names: List[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None or klass is object:
            continue
        init = getattr(init, '__wrapped__', init)
        forwards = False
        for p in list(inspect.signature(init).parameters.values())[1:]:
            if p.kind is p.VAR_KEYWORD:
                forwards = True
            elif p.kind is not p.VAR_POSITIONAL and p.name not in names:
                names.append(p.name)
        if not forwards:
            break
    return names


def name_unknown_arguments(cls: Type) -> Type:
    """Make ``cls(...)`` name itself when given an unknown keyword argument.

    Python's message names the innermost ``__init__`` that rejected the
    argument (often a base class), not the ``type`` written in the config.
    The wrapped constructor raises ``TypeError`` naming the class, the
    argument, the closest valid argument and all valid ones.

    The class is blamed only for an argument given to it that its own
    signature refuses (following ``**kwargs`` up the class hierarchy, see
    :func:`accepted_arguments`). A constructor may build nested modules
    from their configs (a head builds its loss): an unknown argument in
    those is the nested module's, and its error goes on untouched.

    Args:
        cls: the class (changed in place).

    Returns:
        The class.
    """
    init = cls.__dict__.get('__init__')
    if init is None or getattr(init, '_names_unknown', False):
        return cls

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except TypeError as e:
            match = _UNKNOWN.search(str(e))
            bad = match.group(1) if match else None
            # named after the class built (a subclass may be unregistered)
            built = type(self)
            valid = accepted_arguments(built)
            if bad not in kwargs or bad in valid:
                raise  # not an argument of this call that it refuses
            close = difflib.get_close_matches(bad, valid, n=1)
            hint = f'; did you mean {close[0]!r}?' if close else '.'
            raise TypeError(
                f'{built.__name__} got an unknown argument {bad!r}{hint} Its '
                f'arguments are: {", ".join(valid)}') from None

    __init__._names_unknown = True
    cls.__init__ = __init__
    return cls


def register_engine(registry: Registry,
                    name: Optional[str] = None) -> Callable[[Type], Type]:
    """Register an engine part (hook, loop, optimizer wrapper or
    constructor) in one of mmengine's root registries, found from every
    scope.

    Args:
        registry: the root registry, e.g. ``mmengine.registry.HOOKS``.
        name: the registered name (default: the class name).
    """
    return register_in([registry], name=name)


def register_transform(name: Optional[str] = None) -> Callable:
    """Register a data transform in mmpretrain's, mmdet's and mmseg's
    ``TRANSFORMS``, under one name."""
    return register_in(
        [MMPRETRAIN_TRANSFORMS, MMDET_TRANSFORMS, MMSEG_TRANSFORMS],
        name=name)


def register_seg_transform(name: Optional[str] = None) -> Callable:
    """Register a segmentation-only data transform in mmseg's
    ``TRANSFORMS``."""
    return register_in([MMSEG_TRANSFORMS], name=name)


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
