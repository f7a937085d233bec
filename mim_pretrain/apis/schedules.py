"""Schedule edits of the tiny configs, found by scheduler type.

``--cfg-options`` addresses list items by index (``param_scheduler.1.end``),
so the edits load the config, find the warm-up (``LinearLR``) and the main
scheduler by their ``type`` and emit options with the indices found: a
config whose scheduler list is in another order gets the same edits, and
one without an expected scheduler is an error that names it.
"""
import os.path as osp
from functools import lru_cache
from typing import List, Optional, Tuple

from mmengine.config import Config

from .pipeline import REPO, config_of

WARMUP = 'LinearLR'
# the scheduler after the warm-up in the tiny configs
MAIN = {'pretrain': 'CosineAnnealingLR', 'det': 'MultiStepLR',
        'seg': 'PolyLR'}


@lru_cache(maxsize=None)
def _schedulers(config: str) -> Tuple[dict, ...]:
    """The ``param_scheduler`` entries of a config (loaded once)."""
    entries = Config.fromfile(osp.join(REPO, config)).get('param_scheduler')
    if isinstance(entries, dict):
        entries = [entries]
    return tuple(dict(e) for e in entries or ())


def _type_name(entry: dict) -> str:
    kind = entry.get('type')
    name = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
    return name.split('.')[-1]  # 'mmengine.LinearLR' is a LinearLR too


def find_scheduler(config: str, kind: str) -> Tuple[int, dict]:
    """The position and entry of the one ``kind`` scheduler of a config.

    Args:
        config: the config (relative to the repository, or absolute).
        kind: the scheduler's type, e.g. ``'LinearLR'``.

    Returns:
        tuple: its index in ``param_scheduler`` and the entry.

    Raises:
        ValueError: the config has no such scheduler, or more than one;
            names the config and the types it has.
    """
    entries = _schedulers(config)
    found = [i for i, e in enumerate(entries) if _type_name(e) == kind]
    if len(found) != 1:
        raise ValueError(
            f'{config}: expected one {kind} in param_scheduler, found '
            f'{len(found)} (its schedulers: '
            f'{[_type_name(e) for e in entries]})')
    return found[0], entries[found[0]]


def epoch_options(config: str, epochs: int) -> List[str]:
    """``--cfg-options`` that change a tiny pretraining config's epochs and
    stretch its warm-up + cosine schedule to match.

    Raises:
        SystemExit: ``epochs`` does not exceed the warm-up.
        ValueError: the config lacks the ``LinearLR`` warm-up or the
            ``CosineAnnealingLR``.
    """
    warm = find_scheduler(config, WARMUP)[1]['end']
    cosine = find_scheduler(config, MAIN['pretrain'])[0]
    if not 0 < warm < epochs:
        raise SystemExit(f'--pretrain-epochs {epochs}: must exceed the '
                         f'{warm} warm-up epochs of {config}')
    return [f'train_cfg.max_epochs={epochs}',
            f'param_scheduler.{cosine}.end={epochs}',
            f'param_scheduler.{cosine}.T_max={epochs - warm}']


def transfer_options(task: str, iters: int,
                     config: Optional[str] = None,
                     validate: bool = True) -> List[str]:
    """``--cfg-options`` that give a tiny transfer config ``iters``
    iterations with its schedule's shape, validated along the way for the
    curves (or not at all: the test step scores the last checkpoint).

    The shape: a linear warm-up over the first sixth (det) or tenth (seg),
    then lr steps at 88% and 96% (det, ``MultiStepLR``) or poly decay
    (seg, ``PolyLR``).

    Args:
        task: ``'det'`` or ``'seg'``.
        iters: training iterations, at least 10.
        config: the tiny config the options are for (default: the random
            initialisation's of ``task``).
        validate: validate during training (det: at the half and the end,
            seg: every third); False: never (``val_begin`` past the last
            iteration; mmengine otherwise always validates at the end).

    Raises:
        SystemExit: ``iters`` is below 10.
        ValueError: the config lacks one of the schedulers.
    """
    if iters < 10:
        raise SystemExit(f'--{task}-iters {iters}: at least 10')
    config = config or config_of(task, 'scratch', tiny=True)
    warm_at = find_scheduler(config, WARMUP)[0]
    main_at = find_scheduler(config, MAIN[task])[0]
    opts = [f'train_cfg.max_iters={iters}',
            f'default_hooks.checkpoint.interval={iters}']
    if not validate:
        opts.append(f'train_cfg.val_begin={iters + 1}')
    if task == 'det':
        return opts + [
            f'train_cfg.val_interval={iters // 2}',
            f'param_scheduler.{warm_at}.end={max(1, iters // 6)}',
            f'param_scheduler.{main_at}.end={iters}',
            f'param_scheduler.{main_at}.milestones=[{int(iters * 0.88)},'
            f'{int(iters * 0.96)}]']
    warm = max(1, iters // 10)
    return opts + [f'train_cfg.val_interval={iters // 3}',
                   f'param_scheduler.{warm_at}.end={warm}',
                   f'param_scheduler.{main_at}.begin={warm}',
                   f'param_scheduler.{main_at}.end={iters}']


def _budget_hook(config: str) -> Tuple[int, dict]:
    """Index and entry of the one ``TimeBudgetHook`` in ``custom_hooks``.

    Raises:
        ValueError: the config has none, or several.
    """
    hooks = Config.fromfile(osp.join(REPO, config)).get('custom_hooks', [])
    found = [i for i, h in enumerate(hooks)
             if _type_name(h) == 'TimeBudgetHook']
    if len(found) != 1:
        raise ValueError(f'{config}: expected one TimeBudgetHook in '
                         f'custom_hooks, found {len(found)} (its hooks: '
                         f'{[_type_name(h) for h in hooks]})')
    return found[0], hooks[found[0]]


def budget_fractions(config: str) -> Tuple[float, ...]:
    """The fractions of the budget at which a time-budget config saves its
    earlier checkpoints (``TimeBudgetHook.save_fractions``)."""
    return tuple(_budget_hook(config)[1].get('save_fractions', ()))


def budget_options(config: str, seconds: float) -> List[str]:
    """``--cfg-options`` that give a time-budget config (``TimeBudgetHook``
    in ``custom_hooks``) another budget.

    Raises:
        SystemExit: ``seconds`` is not positive.
        ValueError: the config has no ``TimeBudgetHook``, or several.
    """
    if not seconds > 0:
        raise SystemExit(f'a pretraining budget must be positive, got '
                         f'{seconds:g} s')
    return [f'custom_hooks.{_budget_hook(config)[0]}.budget_s={seconds:g}']
