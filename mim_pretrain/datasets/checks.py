"""Checks of a run's inputs before any training starts.

``tools/train.py`` and ``tools/test.py`` call :func:`check_config_inputs`
on the final config, so a missing data root, a missing or malformed
annotation file, or annotations that mmdet would silently drop stop the run
at once with the file, key and value named, instead of after model building
or, worse, a run that trains on less than the user thinks.

The checks run once per job: in a distributed run rank 0 checks and sends
the outcome to the other ranks, which raise the same error without reading
any file (a COCO train2017 file is parsed once, not once per GPU).

Their settings are one top-level config key, ``data_checks``::

    data_checks = dict(
        enabled=True,            # False: no check at all (logged once)
        invalid_boxes='error',   # or 'skip'
    )

also settable with ``--cfg-options data_checks.enabled=False``.
Annotations that mmdet's ``CocoDataset`` drops without a word (boxes with no
area, smaller than a pixel, or entirely outside their image) are an error
unless ``invalid_boxes='skip'``, in which case their number (and the first
few ids) are written to the log. The real COCO train2017 has a few such
boxes.
"""
import contextlib
import gc
import json
import logging
import os.path as osp
from typing import Dict, Iterator, List, Optional, Tuple

from mmengine.config import Config
from mmengine.dist import (broadcast_object_list, get_rank, get_world_size,
                           is_distributed)
from mmengine.logging import print_log

POLICIES = ('error', 'skip')
# every setting of the checks, with its default: the config's data_checks
DEFAULTS = dict(enabled=True, invalid_boxes='error')
_SPLITS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


class DataCheckError(ValueError):
    """An input of the run is missing or malformed."""


def _datasets(cfg: dict) -> Iterator[dict]:
    """The leaf dataset configs inside wrappers (Repeat, Concat, ...)."""
    if not isinstance(cfg, dict):
        return
    inner = cfg.get('dataset')
    many = cfg.get('datasets')
    if isinstance(inner, dict):
        yield from _datasets(inner)
    elif isinstance(many, (list, tuple)):
        for item in many:
            yield from _datasets(item)
    else:
        yield cfg


def _resolve(data_root: Optional[str], path: Optional[str]) -> Optional[str]:
    if not path:
        return None
    if data_root and not osp.isabs(path):
        return osp.join(data_root, path)
    return path


def _is_remote(path: str) -> bool:
    return '://' in str(path)


@contextlib.contextmanager
def _gc_paused():
    """Python's cyclic garbage collector off, for the life of a parsed
    annotation file.

    ``json.load`` makes tens of millions of lists and dicts for a COCO
    train2017-sized file, none in a reference cycle, so the collector has
    nothing to find; left on, it rescans the growing heap during the parse
    and again afterwards (measured: 19 s of CPU time for the parse instead
    of 12 s, and 5.5 s instead of 2 s for the box checks). Refcounting still
    frees the file when it goes.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_json(path: str, what: str) -> dict:
    """Read a JSON file, naming the file and position of any error.

    Args:
        path: the file.
        what: its role (for the message), e.g. ``'train_dataloader ann_file'``.

    Raises:
        DataCheckError: the file is missing or is not valid JSON.
    """
    if not osp.isfile(path):
        raise DataCheckError(f'{what}: annotation file not found: {path}')
    try:
        with open(path, encoding='utf-8') as f, _gc_paused():
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataCheckError(
            f'{what}: {path} is not valid JSON: {e.msg} at line {e.lineno} '
            f'column {e.colno}') from None
    except UnicodeDecodeError as e:
        raise DataCheckError(f'{what}: {path} is not UTF-8 text ({e})') \
            from None


def invalid_coco_boxes(coco: dict, path: str) -> Dict[str, List[int]]:
    """The annotation ids mmdet's ``CocoDataset`` would drop, by reason.

    The rules of mmdet 3.3's ``CocoDataset.parse_data_info``. A plain loop:
    on COCO train2017's 860k annotations it takes about 2 s of CPU time, a
    tenth of the parse (numpy is no faster: gathering the fields from the
    parsed dicts is the cost).

    Args:
        coco: the parsed annotation file.
        path: its path, for messages.

    Returns:
        dict: ``{'no area': [...], 'outside the image': [...]}``, ids in
        file order.

    Raises:
        DataCheckError: a required key is missing, an entry is malformed,
            or an annotation names an unknown image.
    """
    if not isinstance(coco, dict):
        raise DataCheckError(
            f'{path}: a COCO annotation file holds a JSON object; found '
            f'{type(coco).__name__}')
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(coco.get(key), list):
            raise DataCheckError(
                f'{path}: COCO annotation files need a list under {key!r}; '
                f'found {type(coco.get(key)).__name__}')
    sizes = {}
    for img in coco['images']:
        try:
            sizes[img['id']] = (img['width'], img['height'])
        except (KeyError, TypeError):
            raise DataCheckError(
                f'{path}: image entry {img!r} lacks id/width/height') \
                from None
    bad: Dict[str, List[int]] = {'no area': [], 'outside the image': []}
    for ann in coco['annotations']:
        if not isinstance(ann, dict):
            raise DataCheckError(
                f'{path}: annotation entry {ann!r} is not an object')
        ann_id = ann.get('id')
        try:
            known = ann.get('image_id') in sizes
        except TypeError:  # unhashable
            known = False
        if not known:
            raise DataCheckError(
                f'{path}: annotation id {ann_id} refers to image_id '
                f'{ann.get("image_id")!r}, which is not in "images"')
        bbox = ann.get('bbox')
        if not (isinstance(bbox, list) and len(bbox) == 4):
            raise DataCheckError(
                f'{path}: annotation id {ann_id} has bbox {bbox!r}; '
                'expected [x, y, w, h]')
        if ann.get('ignore', False):
            continue
        x, y, w, h = bbox
        width, height = sizes[ann['image_id']]
        try:  # a non-number anywhere fails in here, at no cost otherwise
            inter_w = max(0, min(x + w, width) - max(x, 0))
            inter_h = max(0, min(y + h, height) - max(y, 0))
            if inter_w * inter_h == 0:
                bad['outside the image'].append(ann_id)
            elif ann.get('area', 0) <= 0 or w < 1 or h < 1:
                bad['no area'].append(ann_id)
        except TypeError:
            if not all(isinstance(v, (int, float)) for v in bbox):
                raise DataCheckError(
                    f'{path}: annotation id {ann_id} has bbox {bbox!r}; '
                    'expected [x, y, w, h]') from None
            raise DataCheckError(
                f'{path}: annotation id {ann_id} has area '
                f'{ann.get("area")!r}; expected a number') from None
    return bad


def _check_coco(path: str, what: str, policy: Optional[str]) -> None:
    with _gc_paused():
        coco = load_json(path, what)
        bad = invalid_coco_boxes(coco, path)
        num_boxes = len(coco['annotations'])
        del coco  # freed here, before the collector is back
    if policy is None:  # evaluation: the metric reads the file itself
        return
    total = sum(len(v) for v in bad.values())
    if not total:
        return
    detail = '; '.join(f'{len(ids)} {reason} (ids {ids[:5]}'
                       f'{" ..." if len(ids) > 5 else ""})'
                       for reason, ids in bad.items() if ids)
    if policy == 'error':
        raise DataCheckError(
            f'{what}: {path} has {total} boxes that mmdet\'s CocoDataset '
            f'would silently drop: {detail}. Fix the annotations, or set '
            "data_checks = dict(invalid_boxes='skip') in the config to "
            'train without them (they are then counted in the log).')
    print_log(
        f'{what}: skipping {total} of {num_boxes} boxes of '
        f'{path} as the config asks (data_checks.invalid_boxes=\'skip\'): '
        f'{detail}', logger='current')


def _check_dataset(ds: dict, what: str, policy: Optional[str]) -> None:
    data_root = ds.get('data_root')
    if data_root and not _is_remote(data_root) and not osp.isdir(data_root):
        raise DataCheckError(
            f'{what}: data_root does not exist: {data_root!r} (generate the '
            'built-in data with `make data`, or point data_root at your '
            'copy with --cfg-options)')
    ann = _resolve(data_root, ds.get('ann_file'))
    if ann and not _is_remote(ann):
        if not osp.isfile(ann):
            raise DataCheckError(
                f'{what}: ann_file not found: {ann!r} (data_root='
                f'{data_root!r}, ann_file={ds.get("ann_file")!r})')
        if 'coco' in str(ds.get('type', '')).lower():
            _check_coco(ann, what, policy)
    prefix = ds.get('data_prefix')
    if isinstance(prefix, dict) and data_root and not _is_remote(data_root):
        for key, sub in prefix.items():
            folder = _resolve(data_root, sub)
            if sub and not osp.isdir(folder):
                raise DataCheckError(
                    f'{what}: data_prefix.{key} folder does not exist: '
                    f'{folder!r}')


def data_check_settings(cfg: Config) -> dict:
    """The config's ``data_checks``, validated, with the defaults filled in.

    Args:
        cfg: the final config.

    Returns:
        dict: ``enabled`` (bool) and ``invalid_boxes`` (one of
        :data:`POLICIES`).

    Raises:
        DataCheckError: ``data_checks`` is not a dict, has an unknown key,
            or a key has a value it cannot take.
    """
    checks = cfg.get('data_checks')
    if checks is None:
        checks = {}
    if not isinstance(checks, dict):
        raise DataCheckError(
            f'data_checks must be a dict such as dict(enabled=False) or '
            f"dict(invalid_boxes='skip'), got {checks!r}")
    unknown = set(checks) - set(DEFAULTS)
    if unknown:
        raise DataCheckError(
            f'data_checks: unknown key(s) {sorted(unknown)}; the known ones '
            f'are {sorted(DEFAULTS)}')
    settings = {**DEFAULTS, **checks}
    if not isinstance(settings['enabled'], bool):
        raise DataCheckError(f'data_checks.enabled must be True or False, '
                             f'got {settings["enabled"]!r}')
    if settings['invalid_boxes'] not in POLICIES:
        raise DataCheckError(f'data_checks.invalid_boxes must be one of '
                             f'{POLICIES}, got {settings["invalid_boxes"]!r}')
    return settings


def _check_all(cfg: Config, splits: Tuple[str, ...], policy: str) -> None:
    seen = set()
    for split in splits:
        loader = cfg.get(split)
        if not isinstance(loader, dict):
            continue
        for ds in _datasets(loader.get('dataset')):
            key = (ds.get('data_root'), ds.get('ann_file'))
            if key in seen:
                continue
            seen.add(key)
            # only training drops boxes; CocoMetric scores the file itself
            _check_dataset(ds, f'{split}.dataset ({ds.get("type")})',
                           policy if split == 'train_dataloader' else None)
    for split in ('val_evaluator', 'test_evaluator'):
        evaluators = cfg.get(split)
        if isinstance(evaluators, dict):
            evaluators = [evaluators]
        for ev in evaluators or []:
            ann = ev.get('ann_file') if isinstance(ev, dict) else None
            if ann and not _is_remote(ann) and not osp.isfile(ann):
                raise DataCheckError(
                    f'{split} ({ev.get("type")}): ann_file not found: '
                    f'{ann!r}')


def check_config_inputs(cfg: Config,
                        splits: Tuple[str, ...] = _SPLITS) -> None:
    """Check the data a config will read, once per job, before anything is
    built.

    In a distributed run (the process group is up) only rank 0 reads the
    files; the other ranks wait for its outcome and raise the same error.
    With ``data_checks.enabled=False`` nothing is read and the log says so
    (rank 0, once).

    Args:
        cfg: the final config (after ``--cfg-options``).
        splits: the dataloaders to check.

    Raises:
        DataCheckError: ``data_checks`` is malformed; or a data root, folder
            or annotation file is missing or malformed, or boxes would be
            dropped and the config does not ask for it.
    """
    settings = data_check_settings(cfg)  # the same config on every rank
    distributed = is_distributed() and get_world_size() > 1
    rank = get_rank() if distributed else 0
    if not settings['enabled']:
        if rank == 0:
            print_log('data checks are off (data_checks.enabled=False): '
                      'data roots, folders and annotation files are not '
                      'checked before the run', logger='current',
                      level=logging.WARNING)
        return
    if not distributed:
        _check_all(cfg, splits, settings['invalid_boxes'])
        return
    error = None
    if rank == 0:
        try:
            _check_all(cfg, splits, settings['invalid_boxes'])
        except Exception as exc:  # the others wait for it: always send
            error = exc
            # out before any rank can exit: launchers stop the job at the
            # first rank that fails, which may be another one
            print_log(f'the data checks failed: {type(exc).__name__}: '
                      f'{exc}', logger='current', level=logging.ERROR)
    outcome = [None if error is None else (type(error).__name__, str(error))]
    broadcast_object_list(outcome, src=0)
    if error is not None:
        raise error
    if outcome[0] is not None:
        kind, message = outcome[0]
        if kind == DataCheckError.__name__:
            raise DataCheckError(message)
        raise RuntimeError(f'the data checks failed on rank 0: {kind}: '
                           f'{message}')
