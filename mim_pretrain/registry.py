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
import difflib
import functools
import inspect
import re
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
            if match is None:
                raise
            # named after the class built (a subclass may be unregistered)
            built = type(self)
            bad = match.group(1)
            valid = accepted_arguments(built)
            close = difflib.get_close_matches(bad, valid, n=1)
            hint = f'; did you mean {close[0]!r}?' if close else '.'
            raise TypeError(
                f'{built.__name__} got an unknown argument {bad!r}{hint} Its '
                f'arguments are: {", ".join(valid)}') from None

    __init__._names_unknown = True
    cls.__init__ = __init__
    return cls


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
