"""The train and test entry points behind ``tools/train.py`` and
``tools/test.py``.

One pair of tools serves the three kinds of config in this repository. The
kind is read from the config's ``default_scope``:

* ``mmpretrain``: self-supervised pretraining (``mmpretrain_configs/``),
* ``mmdet``: detection / instance segmentation (``mmdet_configs/``),
* ``mmseg``: semantic segmentation (``mmseg_configs/``).

The flags are the upstream ones, with the upstream meaning for each kind.
The tools add nothing a config does not say: the exact-resume loops of
:mod:`mim_pretrain.engine.loops` and the ``FiniteLossHook`` come from the
configs (``_base_/default_runtime.py`` and ``train_cfg``); a foreign config
without them runs as upstream, with one logged line saying what it lacks.
On top of upstream:

* ``--resume`` without a path takes the newest complete checkpoint of the
  work dir;
* the data a config reads is checked before anything is built, once per
  job (:mod:`mim_pretrain.datasets.checks`; a distributed run creates its
  process group first, so that rank 0 checks alone), and a checkpoint
  given to ``--resume`` or ``tools/test.py`` must match the model
  (mismatched keys are listed).
"""
import argparse
import glob
import logging
import os
import os.path as osp
import re
from typing import Any, List, Optional

import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner, find_latest_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from .. import compat
from ..converters.io import checkpoint_state_dict
from ..datasets.checks import check_config_inputs
from ..engine.loops import RESUMABLE_LOOPS

TASKS = ('mmpretrain', 'mmdet', 'mmseg')


def task_of(cfg: Config) -> str:
    """The kind of a config: its ``default_scope``.

    Args:
        cfg: a loaded config.

    Returns:
        str: one of ``'mmpretrain'``, ``'mmdet'``, ``'mmseg'``.

    Raises:
        ValueError: the config has no ``default_scope`` or another one.
    """
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise ValueError(
            f'{cfg.filename}: default_scope is {scope!r}; tools/train.py and '
            f'tools/test.py need one of {TASKS} to know the kind of config '
            '(set it in the config or one of its _base_ files)')
    return scope


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--work-dir',
        help='the directory for logs and checkpoints (default: '
        'cfg.work_dir, else ./work_dirs/<config name>)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs such as '
        'train_dataloader.batch_size=8 or "model.backbone.out_indices=[3,5]"')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher: none for one process, pytorch for torchrun '
        '(tools/dist_*.sh), slurm for srun (tools/slurm_*.sh)')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)


def _load_config(args: argparse.Namespace) -> Config:
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    task_of(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return cfg


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model a checkpoint was saved from (no DDP / TTA wrapper)."""
    while hasattr(model, 'module'):
        model = model.module
    return model


def _own_visualizer(cfg: Config) -> None:
    """Give the run a visualizer of its own when this process already made
    one of the config's name.

    mmengine keeps one visualizer per class and name in a process, and the
    OpenMMLab configs name theirs ``'visualizer'``: a second run in the same
    process (``tools/transfer.py`` trains and tests in one) would get the
    first run's, drawing and logging into the first run's folder and
    ignoring ``--show-dir``. A lone run keeps the config's name.
    """
    vis = cfg.get('visualizer')
    if not isinstance(vis, dict) or not vis.get('name'):
        return
    from mmengine.registry import VISUALIZERS
    kind = vis.get('type')
    if isinstance(kind, str) and '.' not in kind and cfg.get('default_scope'):
        kind = f'{cfg.default_scope}.{kind}'
    cls = VISUALIZERS.get(kind) if isinstance(kind, str) else kind
    if cls is None or not cls.check_instance_created(vis['name']):
        return
    base, n = vis['name'], 1
    while cls.check_instance_created(f'{base}_{n}'):
        n += 1
    vis['name'] = f'{base}_{n}'


def _build_runner(cfg: Config) -> Runner:
    _own_visualizer(cfg)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def build_train_parser() -> argparse.ArgumentParser:
    """Command-line parser of ``tools/train.py``."""
    parser = argparse.ArgumentParser(
        description='Train a model: pretraining (mmpretrain configs), '
        'detection (mmdet configs) or segmentation (mmseg configs).')
    parser.add_argument('config', help='the config file')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint; with no value, from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision training (MixedPrecisionOptimWrapper: '
        'bfloat16 autocast where the device has it, GPU or CPU, else '
        'float16 with a dynamic loss scale)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by total batch size / '
        'auto_scale_lr.base_batch_size of the config')
    _add_common(parser)
    return parser


def setup_train_config(args: argparse.Namespace) -> Config:
    """Load a config and apply the ``tools/train.py`` flags to it.

    Args:
        args: parsed arguments of :func:`build_train_parser`.

    Returns:
        Config: the config to build the runner from.
    """
    cfg = _load_config(args)
    if args.amp:
        use_mixed_precision(cfg, args.config)
    if args.auto_scale_lr:
        scale = cfg.get('auto_scale_lr')
        if not scale or 'base_batch_size' not in scale:
            raise ValueError(
                f'{args.config}: --auto-scale-lr needs '
                'auto_scale_lr = dict(base_batch_size=...) in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = latest_checkpoint(cfg.work_dir)
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(
                f'--resume checkpoint not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume
    report_missing_reliability(cfg)
    start_distributed(cfg)
    check_config_inputs(cfg)
    return cfg


AMP_WRAPPERS = ('OptimWrapper', 'AmpOptimWrapper',
                'MixedPrecisionOptimWrapper')


def use_mixed_precision(cfg: Config, source: str = 'the config') -> None:
    """What ``--amp`` does: the optimizer wrapper becomes
    :class:`~mim_pretrain.engine.MixedPrecisionOptimWrapper` (upstream's
    tools set ``AmpOptimWrapper``, which refuses to run on a CPU).

    The config's ``dtype`` is kept; without one (or mmengine's None) it is
    ``'auto'``: bfloat16 where the device has it, else float16 with a
    dynamic loss scale (``loss_scale``, default ``'dynamic'``).

    Args:
        cfg: the config, changed in place.
        source: the config's file, for the error message.

    Raises:
        ValueError: the optimizer wrapper is of another type.
    """
    wrapper = cfg.optim_wrapper
    kind = wrapper.get('type', 'OptimWrapper')
    if kind not in AMP_WRAPPERS:
        raise ValueError(f'{source}: --amp needs optim_wrapper.type one of '
                         f'{AMP_WRAPPERS}, not {kind!r}')
    wrapper.type = 'MixedPrecisionOptimWrapper'
    if wrapper.get('dtype') is None:
        wrapper.dtype = 'auto'
    wrapper.setdefault('loss_scale', 'dynamic')
    print_log(f'--amp: optim_wrapper {kind} -> MixedPrecisionOptimWrapper '
              f'(dtype={wrapper.dtype})', logger='current')


def report_missing_reliability(cfg: Config) -> List[str]:
    """Log, in one line, which of the repository's training guarantees a
    config does not ask for; change nothing.

    Every config of this repository names an exact-resume loop
    (``Resumable*TrainLoop``) in ``train_cfg`` and a ``FiniteLossHook`` in
    ``custom_hooks`` (its ``_base_/default_runtime.py``); a foreign config
    without them runs exactly as upstream would.

    Args:
        cfg: the loaded training config.

    Returns:
        list: what is missing (empty when nothing is).
    """
    missing = []
    loop = cfg.get('train_cfg')
    kind = loop.get('type') if isinstance(loop, dict) else None
    if kind not in RESUMABLE_LOOPS.values():
        missing.append(f'train_cfg type {kind!r} is not an exact-resume loop '
                       f'({" / ".join(RESUMABLE_LOOPS.values())}): a resumed '
                       'run may repeat batches and draw other masks')
    hooks = cfg.get('custom_hooks') or []
    if not any(isinstance(h, dict) and str(h.get('type', '')).endswith(
            'FiniteLossHook') for h in hooks):
        missing.append('no FiniteLossHook in custom_hooks: a NaN/inf loss '
                       'is not caught')
    if missing:
        print_log(f'{cfg.filename}: runs as upstream would; ' +
                  '; '.join(missing) + ' (inherit this repository\'s '
                  '_base_/default_runtime.py, docs/configs.md)',
                  logger='current', level=logging.WARNING)
    return missing


def _ckpt_iter(path: str) -> int:
    match = re.search(r'(\d+)\.pth$', osp.basename(path))
    return int(match.group(1)) if match else -1


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` (no path) continues from.

    ``last_checkpoint`` (written by mmengine after each save) when it names a
    file that exists, else the ``*_N.pth`` with the largest N. Checkpoint
    files are written atomically (see :mod:`mim_pretrain.compat`), so an
    existing one is complete; temporary files of an interrupted write are
    ignored.

    Args:
        work_dir: the run's work dir.

    Returns:
        str | None: the checkpoint, or None when the work dir has none (the
        run then starts from scratch, as upstream).
    """
    named = find_latest_checkpoint(work_dir)  # mmengine's record
    if named and osp.isfile(named):
        return named
    if named:
        print_log(f'{osp.join(work_dir, "last_checkpoint")} names '
                  f'{named!r}, which does not exist; looking for the newest '
                  'checkpoint instead', logger='current')
    found = sorted(glob.glob(osp.join(work_dir, '*_*.pth')), key=_ckpt_iter)
    if not found:
        print_log(f'--resume: no checkpoint in {work_dir}; starting from '
                  'scratch', logger='current')
        return None
    return found[-1]


def check_state_matches(model: torch.nn.Module, checkpoint: Any, path: str,
                        config: Optional[str] = None) -> None:
    """Raise when a loaded checkpoint does not fit the model.

    Args:
        model: the model (unwrapped).
        checkpoint: the loaded checkpoint (``state_dict`` inside, or a bare
            state dict).
        path: its file, for the messages.
        config: the config's file, for the messages (None: "this config").

    Raises:
        RuntimeError: lists the model's keys missing from the checkpoint and
            the keys whose shapes differ (first 20 of each), with counts.
    """
    state = checkpoint_state_dict(checkpoint)
    if not isinstance(state, dict):
        raise RuntimeError(f'{path}: holds no state dict')
    state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    shapes = [f'{k}: checkpoint {tuple(state[k].shape)} vs model '
              f'{tuple(v.shape)}' for k, v in own.items()
              if k in state and hasattr(state[k], 'shape')
              and tuple(state[k].shape) != tuple(v.shape)]
    if not missing and not shapes:
        unexpected = [k for k in state if k not in own]
        if unexpected:
            print_log(f'{path}: {len(unexpected)} checkpoint entries are not '
                      f'used by the model: {unexpected[:10]}',
                      logger='current')
        return
    lines = [f'{path} does not fit the model of {config or "this config"} '
             f'({type(model).__name__}): it was written for another '
             'architecture or config.']
    if missing:
        lines.append(f'{len(missing)} of {len(own)} model keys are missing '
                     f'from the checkpoint: {missing[:20]}')
    if shapes:
        lines.append(f'{len(shapes)} keys have other shapes: {shapes[:20]}')
    raise RuntimeError('\n'.join(lines))


def check_checkpoint_matches(model: torch.nn.Module, path: str) -> None:
    """Load ``path`` and raise when it does not fit the model
    (:func:`check_state_matches`).

    Args:
        model: the model (unwrapped).
        path: the checkpoint file.
    """
    check_state_matches(
        model, CheckpointLoader.load_checkpoint(path, map_location='cpu'),
        path)


def train_main(argv: Optional[List[str]] = None) -> Runner:
    """Run ``tools/train.py``.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        Runner: the runner, after training.
    """
    args = build_train_parser().parse_args(argv)
    cfg = setup_train_config(args)
    runner = _build_runner(cfg)
    # the only files that may be unpickled in full (see mim_pretrain.compat)
    compat.trust_directory(runner.work_dir, 'it is in this run\'s work dir')
    if args.resume not in (None, 'auto'):
        compat.trust_checkpoint(args.resume, 'named by --resume')
    if cfg.get('resume') and cfg.get('load_from'):
        check_checkpoint_matches(_unwrap(runner.model), cfg.load_from)
    runner.train()
    finish_distributed()
    return runner


def start_distributed(cfg: Config) -> None:
    """Create the process group of a distributed run before the Runner.

    The data checks run on rank 0 only and send their outcome to the other
    ranks, which needs the group before anything is built. It is made
    exactly as ``Runner.setup_env`` would (the config's ``env_cfg.mp_cfg``
    and ``env_cfg.dist_cfg``, the Runner's defaults without them); the
    Runner then finds it up and uses it. A no-op for ``--launcher none``
    and when the group exists.

    Args:
        cfg: the final config (``cfg.launcher`` set by the tools).
    """
    from mmengine.dist import init_dist, is_distributed
    from mmengine.utils.dl_utils import set_multi_processing
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or is_distributed():
        return
    env_cfg = cfg.get('env_cfg', dict(dist_cfg=dict(backend='nccl')))
    set_multi_processing(**env_cfg.get('mp_cfg', {}), distributed=True)
    init_dist(launcher, **env_cfg.get('dist_cfg', {}))


def finish_distributed() -> None:
    """Wait for every rank, then tear the process group down.

    mmengine leaves it to interpreter exit, where gloo's threads can be
    destroyed while still joinable: a CPU run that trained, saved and
    validated then dies with "terminate called without an active exception"
    (SIGABRT), and ``dist_train.sh`` reports a failure. A no-op when not
    distributed.
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        print_log('all ranks done; process group closed', logger='current')


def build_test_parser() -> argparse.ArgumentParser:
    """Command-line parser of ``tools/test.py``."""
    parser = argparse.ArgumentParser(
        description='Test (evaluate) a trained model with the evaluator of '
        'its config (CocoMetric, IoUMetric, ...).')
    parser.add_argument('config', help='the config file')
    parser.add_argument('checkpoint', help='the checkpoint file')
    parser.add_argument(
        '--out',
        help='save the predictions: a .pkl file for mmdet and mmpretrain '
        'configs, a directory of PNG predictions for mmseg configs')
    parser.add_argument(
        '--show', action='store_true', help='show the predictions in a window')
    parser.add_argument(
        '--show-dir',
        help='draw predictions on the images and save them here (mmdet/mmseg: '
        'relative to the work dir\'s timestamped folder, as upstream)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='seconds per --show image')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation: uses tta_model and tta_pipeline of '
        'the config')
    parser.add_argument(
        '--out-metrics',
        help='also write the metrics to this JSON file (how '
        'tools/transfer.py reads them back)')
    _add_common(parser)
    return parser


def _enable_visualization(cfg: Config, args: argparse.Namespace,
                          task: str) -> None:
    hooks = cfg.default_hooks
    if task == 'mmpretrain':
        hooks.visualization = ConfigDict(
            type='VisualizationHook', enable=True, show=args.show,
            wait_time=args.wait_time, out_dir=args.show_dir)
        return
    if 'visualization' not in hooks:
        raise ValueError(
            f'{args.config}: --show/--show-dir need '
            'default_hooks.visualization in the config')
    hook = hooks.visualization
    hook.draw = True
    if args.show:
        hook.show = True
        hook.wait_time = args.wait_time
    if args.show_dir:
        if task == 'mmdet':
            hook.test_out_dir = args.show_dir
        else:
            cfg.visualizer.save_dir = args.show_dir
            # mmseg's hook draws every `interval`-th batch (default 50):
            # asked for pictures, draw them all
            hook.interval = 1


def setup_test_config(args: argparse.Namespace) -> Config:
    """Load a config and apply the ``tools/test.py`` flags to it.

    Args:
        args: parsed arguments of :func:`build_test_parser`.

    Returns:
        Config: the config to build the runner from.
    """
    cfg = _load_config(args)
    task = task_of(cfg)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        _enable_visualization(cfg, args, task)
    if args.tta:
        missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
        if missing:
            raise ValueError(
                f'{args.config}: --tta needs {" and ".join(missing)} in the '
                'config (use one of the *_ms-flip* / *tta* configs)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out and task == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    elif args.out and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl or .pickle file for '
                         f'{task} configs, got {args.out}')
    start_distributed(cfg)
    check_config_inputs(cfg, splits=('test_dataloader', ))
    return cfg


def _no_detection_metrics(runner: Runner, metrics: dict) -> dict:
    """CocoMetric's numbers for a model that detected nothing.

    mmdet 3.3's ``CocoMetric`` returns no metric at all when the whole test
    set has no detection (pycocotools cannot load an empty result list):
    it logs "The testing results of the whole dataset is empty" and the
    run's metrics lack ``coco/bbox_mAP``. A detector with no detection has
    zero recall, so every AP is 0 by definition; this gives those zeros,
    under CocoMetric's own names, when the count appended by
    :func:`test_main` (``coco/num_detections``) is 0, and says so.
    """
    if metrics.get('coco/num_detections') != 0:
        return metrics
    from mmdet.evaluation import CocoMetric
    filled = dict(metrics)
    for metric in runner.test_evaluator.metrics:
        if not isinstance(metric, CocoMetric):
            continue
        for kind in metric.metrics:
            if kind == 'proposal':
                continue
            for suffix in ('', '_50', '_75', '_s', '_m', '_l'):
                filled.setdefault(f'{metric.prefix}/{kind}_mAP{suffix}', 0.)
    print_log('The model made no detection on the test set, so CocoMetric '
              'returned no metric; every AP is 0 by definition and is '
              'written as 0.0 (coco/num_detections = 0).', logger='current',
              level=logging.WARNING)
    return filled


def _detection_count():
    """A metric counting the predicted instances (``coco/num_detections``),
    run beside CocoMetric by :func:`test_main`."""
    from mmengine.evaluator import BaseMetric

    class DetectionCount(BaseMetric):
        default_prefix = 'coco'

        def process(self, data_batch, data_samples):
            for sample in data_samples:
                self.results.append(len(sample['pred_instances']['labels']))

        def compute_metrics(self, results):
            return {'num_detections': int(sum(results))}

    return DetectionCount()


def test_main(argv: Optional[List[str]] = None) -> dict:
    """Run ``tools/test.py``.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        dict: the metrics computed by the config's evaluator (also written
        to ``--out-metrics`` when given).
    """
    args = build_test_parser().parse_args(argv)
    cfg = setup_test_config(args)
    task = task_of(cfg)
    runner = _build_runner(cfg)
    compat.trust_checkpoint(args.checkpoint,
                            'named on the tools/test.py command line')
    check_checkpoint_matches(_unwrap(runner.model), args.checkpoint)
    if task == 'mmdet':
        runner.test_evaluator.metrics.append(_detection_count())
    if args.out and task == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    elif args.out and task == 'mmpretrain':
        from mmpretrain.evaluation import DumpResults
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))
    metrics = runner.test()
    if task == 'mmdet':
        metrics = _no_detection_metrics(runner, metrics)
    if args.out_metrics:
        from mmengine.dist import is_main_process
        from mmengine.fileio import dump
        if is_main_process():  # every rank has them; one file
            dump(metrics, args.out_metrics, file_format='json', indent=2)
    finish_distributed()
    return metrics
