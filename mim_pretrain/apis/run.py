"""The train and test entry points behind ``tools/train.py`` and
``tools/test.py``.

One pair of tools serves the three kinds of config in this repository. The
kind is read from the config's ``default_scope``:

* ``mmpretrain``: self-supervised pretraining (``mmpretrain_configs/``),
* ``mmdet``: detection / instance segmentation (``mmdet_configs/``),
* ``mmseg``: semantic segmentation (``mmseg_configs/``).

The flags are the upstream ones, with the upstream meaning for each kind.
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .. import compat

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


def _build_runner(cfg: Config) -> Runner:
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
        help='mixed precision training (AmpOptimWrapper, dynamic loss scale)')
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
        optim_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_type not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ValueError(
                f'{args.config}: --amp needs optim_wrapper.type OptimWrapper '
                f'or AmpOptimWrapper, not {optim_type!r}')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        scale = cfg.get('auto_scale_lr')
        if not scale or 'base_batch_size' not in scale:
            raise ValueError(
                f'{args.config}: --auto-scale-lr needs '
                'auto_scale_lr = dict(base_batch_size=...) in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(
                f'--resume checkpoint not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


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
    runner.train()
    return runner


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
    return cfg


def test_main(argv: Optional[List[str]] = None) -> dict:
    """Run ``tools/test.py``.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        dict: the metrics computed by the config's evaluator.
    """
    args = build_test_parser().parse_args(argv)
    cfg = setup_test_config(args)
    task = task_of(cfg)
    runner = _build_runner(cfg)
    compat.trust_checkpoint(args.checkpoint,
                            'named on the tools/test.py command line')
    if args.out and task == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    elif args.out and task == 'mmpretrain':
        from mmpretrain.evaluation import DumpResults
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))
    return runner.test()
