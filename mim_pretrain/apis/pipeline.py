"""The steps from a pretraining checkpoint to evaluated transfer runs.

Each step returns what it produced: a checkpoint path, the weights written,
the metrics of a test. Training and testing run ``tools/train.py`` /
``tools/test.py`` (or their ``dist_*.sh`` launchers) in a child process of
their own: mmengine's ``DefaultScope``, ``MessageHub`` and visualizer are
process-wide instances, one Runner's worth per process. The test step writes
the metrics it computed to a JSON file whose path it is given
(``tools/test.py --out-metrics``), and that file is what is read back.
Everything else (weights extraction and conversion, reading results) runs in
the calling process.
"""
import logging
import os
import os.path as osp
import subprocess
import sys
from typing import IO, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.fileio import load
from mmengine.logging import print_log
from mmengine.runner import find_latest_checkpoint

from ..converters import CONVERTERS, read_state_dict

# the checkout: tools/ and the configs are addressed relative to it
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METHODS = ('lomar', 'localmim', 'mae', 'scratch')
METHOD_NAMES = {'lomar': 'LoMaR', 'localmim': 'LocalMIM', 'mae': 'MAE',
                'scratch': 'random init'}
# what the test step writes in its work dir (tools/test.py --out-metrics)
TEST_METRICS = 'test_metrics.json'


def config_of(task: str, method: str, tiny: bool = False,
              schedule: str = '100e', ms_flip: bool = False) -> str:
    """The config (relative to the repository) of a task and method.

    Args:
        task: ``'det'`` or ``'seg'``.
        method: one of ``METHODS``.
        tiny: the tiny synthetic-data configs instead of the real ones.
        schedule: detection schedule of the real configs, ``'100e'`` or
            ``'25e'``.
        ms_flip: the multi-scale + flip test config (segmentation).

    Returns:
        str: the config's path inside the repository.
    """
    if task == 'det':
        if tiny:
            return ('mmdet_configs/vitdet/mask-rcnn_vit-tiny-p8-'
                    f'{method}_simfp_1xb4-lsj-300i_synthetic.py')
        return ('mmdet_configs/vitdet/mask-rcnn_vit-b-'
                f'{method}_simfp_16xb4-lsj-{schedule}_coco.py')
    if tiny:
        return ('mmseg_configs/upernet/upernet_vit-tiny-p8-'
                f'{method}_1xb4-200i_ade20k-128x128_synthetic.py')
    return ('mmseg_configs/upernet/upernet_vit-b-'
            f'{method}_8xb2-amp-160k_ade20k-512x512'
            f'{"-ms-flip" if ms_flip else ""}.py')


def data_options(task: str, root: str) -> List[str]:
    """``--cfg-options`` pointing every loader (and COCO evaluator) of a
    task's config at the datasets under ``root``.

    Args:
        task: ``'det'`` or ``'seg'``.
        root: a folder in the layout of ``tools/data/generate_data.py``
            (``root/coco``, ``root/ade/ADEChallengeData2016``).

    Returns:
        list: the ``key=value`` options.
    """
    if task == 'det':
        coco = osp.join(root, 'coco') + '/'
        ann = coco + 'annotations/instances_val2017.json'
        opts = [f'val_evaluator.ann_file={ann}',
                f'test_evaluator.ann_file={ann}']
        sub = coco
    else:
        opts = []
        sub = osp.join(root, 'ade', 'ADEChallengeData2016')
    for split in ('train', 'val', 'test'):
        opts.append(f'{split}_dataloader.dataset.data_root={sub}')
    return opts


def checkpoint_layout(path: str) -> str:
    """The key layout of a pretraining checkpoint.

    Args:
        path: the checkpoint file.

    Returns:
        str: ``'toolkit'`` for ``backbone.*`` keys (this toolkit's or
        mmpretrain's training, or an extracted/converted file),
        ``'authors'`` for the authors' timm-named encoder (``blocks.*``).

    Raises:
        SystemExit: the file holds neither.
    """
    state, _ = read_state_dict(path)
    if any(k.startswith('backbone.') for k in state):
        return 'toolkit'
    if any(k.startswith('blocks.') for k in state):
        return 'authors'
    raise SystemExit(
        f'{path}: neither this toolkit\'s / mmpretrain\'s layout '
        '("backbone.*" keys) nor an authors\' release ("blocks.*" keys); '
        f'first keys: {sorted(state)[:5]}')


def batch_per_gpu(config: str, gpus: int) -> int:
    """Images per GPU that keep the config's total batch
    (``auto_scale_lr.base_batch_size``) on ``gpus`` GPUs.

    Raises:
        SystemExit: the total batch does not split evenly over ``gpus``.
    """
    total = Config.fromfile(osp.join(REPO, config)).auto_scale_lr[
        'base_batch_size']
    if total % gpus:
        raise SystemExit(
            f'{config}: its total batch {total} does not split over {gpus} '
            'GPUs; pass --batch-per-gpu B (the learning rate is then '
            'scaled to the new total with --auto-scale-lr)')
    return total // gpus


def extract_weights(checkpoint: str, out: str, prefix: str = '',
                    strip_prefix: bool = False,
                    half: bool = False) -> Dict[str, torch.Tensor]:
    """Write the tensors of a full training checkpoint to a plain file.

    The file (``{'state_dict': ..., 'meta': ...}``, tensors and plain meta
    values only) loads with PyTorch's safe ``weights_only=True`` loader. Of
    the meta data it keeps the scalar entries and ``dataset_meta`` (class
    names, palette), so an inferencer given the file names the classes.

    Args:
        checkpoint: the full checkpoint (loaded in full: the caller names
            it, so vouches for it).
        out: the weights file to write.
        prefix: keep only keys that start with this (e.g. ``'backbone.'``).
        strip_prefix: remove ``prefix`` from the kept keys.
        half: write floating-point tensors as float16 (half the file; a
            model loading the file casts them back to its own dtype).

    Returns:
        dict: the tensors written, by key.

    Raises:
        SystemExit: no tensor key starts with ``prefix``.
    """
    state, ckpt = read_state_dict(checkpoint)
    kept = {}
    for key, value in state.items():
        if not torch.is_tensor(value) or not key.startswith(prefix):
            continue
        if half and value.is_floating_point():
            value = value.half()
        kept[key[len(prefix):] if strip_prefix else key] = value
    if not kept:
        raise SystemExit(f'{checkpoint}: no tensor key starts with '
                         f'{prefix!r}')
    meta = ckpt.get('meta')
    if not isinstance(meta, dict):
        meta = {}
    kept_meta = {k: v for k, v in meta.items()
                 if isinstance(v, (int, float, str))}
    if isinstance(meta.get('dataset_meta'), dict):
        # the class names and palette the inferencers show
        kept_meta['dataset_meta'] = _plain_dataset_meta(
            meta['dataset_meta'], checkpoint)
    torch.save({'state_dict': kept, 'meta': kept_meta}, out)
    return kept


def _plain(value: Any) -> Any:
    """``value`` as plain Python containers and scalars, the types that
    ``torch.load(weights_only=True)`` reads.

    Raises:
        TypeError: ``value`` holds an object of another type.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    raise TypeError(f'a {type(value).__name__}')


def _plain_dataset_meta(dataset_meta: dict, checkpoint: str) -> dict:
    """The entries of a checkpoint's ``meta['dataset_meta']`` (classes,
    palette, label map...) that can be written as plain values; each entry
    that cannot is left out with a warning naming it."""
    kept = {}
    for key, value in dataset_meta.items():
        try:
            kept[key] = _plain(value)
        except TypeError as e:
            print_log(f'{checkpoint}: meta.dataset_meta.{key} holds {e}, '
                      'which a weights file cannot carry; left out',
                      logger='current', level=logging.WARNING)
    return kept


def convert_weights(src: str, dst: str,
                    fmt: str) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Convert a published checkpoint to this toolkit's layout and save it.

    Args:
        src: the published checkpoint.
        dst: where to write ``{'state_dict': ..., 'meta': ...}``.
        fmt: its layout, a key of :data:`mim_pretrain.converters.CONVERTERS`
            (``lomar``, ``localmim``, ``localmim-swin``, ``mae``,
            ``mmpretrain-vit``).

    Returns:
        tuple: the tensors written and the source keys dropped.

    Raises:
        SystemExit: no key of that layout is in ``src``.
    """
    state, _ = read_state_dict(src)
    if fmt == 'mmpretrain-vit':
        state = {k[len('backbone.'):]: v for k, v in state.items()
                 if k.startswith('backbone.')} or state
    converted, dropped = CONVERTERS[fmt](state)
    if fmt == 'mmpretrain-vit':
        converted = {'backbone.' + k: v for k, v in converted.items()}
    if not converted:
        raise SystemExit(f'{src}: no key of the {fmt!r} layout found (first '
                         f'keys: {sorted(state)[:5]})')
    torch.save({'state_dict': converted,
                'meta': {'converted_from': osp.basename(src),
                         'format': fmt}}, dst)
    return converted, dropped


def launch_command(tool: str, config: str, args: Sequence[str],
                   gpus: int = 1) -> List[str]:
    """The command line of ``tools/train.py`` or ``tools/test.py``.

    Args:
        tool: ``'train'`` or ``'test'``.
        config: the config.
        args: the tool's other arguments; for ``'test'`` the checkpoint
            first.
        gpus: GPUs on this node; more than one launches
            ``tools/dist_train.sh`` / ``tools/dist_test.sh`` (torchrun).

    Returns:
        list: the command, to run from the repository root.
    """
    args = list(args)
    if gpus > 1:
        if tool == 'train':
            return ['bash', 'tools/dist_train.sh', config, str(gpus)] + args
        return ['bash', 'tools/dist_test.sh', config, args[0],
                str(gpus)] + args[1:]
    return [sys.executable, f'tools/{tool}.py', config] + args


def child_env(threads: Optional[int] = None) -> Dict[str, str]:
    """The environment of a tool run from the repository root: the
    repository on ``PYTHONPATH`` and, when given, ``threads`` intra-op
    threads (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def run_command(cmd: Sequence[str], out: Optional[IO] = None) -> int:
    """Run a command from the repository root, the repository on
    ``PYTHONPATH``.

    Args:
        cmd: the command.
        out: a file for its output (stdout and stderr); None: this
            process's.

    Returns:
        int: its exit code.
    """
    if out is not None:
        out.flush()  # what this process wrote comes first
    return subprocess.run(
        list(cmd), cwd=REPO, env=child_env(), stdout=out,
        stderr=None if out is None else subprocess.STDOUT).returncode


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint a training run saved last in ``work_dir``.

    Raises:
        SystemExit: the run recorded none (mmengine's ``last_checkpoint``),
            or the one recorded is not there.
    """
    path = find_latest_checkpoint(work_dir)
    if not path or not osp.isfile(path):
        raise SystemExit(f'{work_dir}: training wrote no checkpoint'
                         + (f' ({path} is recorded but missing)'
                            if path else ''))
    return path


def read_budget_points(work_dir: str) -> List[dict]:
    """The checkpoints a time-budget run saved, with their training times
    (``budget_points.json``, :class:`~mim_pretrain.engine.TimeBudgetHook`).

    Returns:
        list: ``{'iter', 'seconds', 'checkpoint'}`` per checkpoint, in order.

    Raises:
        SystemExit: the run wrote no such file (not a time-budget run, or
            it did not finish).
    """
    from ..engine import BUDGET_POINTS
    path = osp.join(work_dir, BUDGET_POINTS)
    if not osp.isfile(path):
        raise SystemExit(f'{path}: not written; was {work_dir} trained with '
                         'TimeBudgetHook, to the end?')
    points = load(path, file_format='json')
    if not points:
        raise SystemExit(f'{path}: lists no checkpoint')
    return points


def read_test_metrics(path: str) -> Dict[str, object]:
    """The metrics a test step wrote (``tools/test.py --out-metrics``).

    Raises:
        SystemExit: the file is not there (the test did not finish).
    """
    if not osp.isfile(path):
        raise SystemExit(f'{path}: the test wrote no metrics')
    return load(path, file_format='json')
