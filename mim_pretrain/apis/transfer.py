"""One pretrained checkpoint to box AP, mask AP and mIoU: the entry point
of ``tools/transfer.py``.

Steps, each printed with its command and time:

1. the checkpoint to backbone weights (:func:`~.pipeline.extract_weights`
   with prefix ``backbone.`` for a checkpoint of this toolkit's or
   mmpretrain's training, :func:`~.pipeline.convert_weights` for an
   authors' release (LoMaR, LocalMIM, MAE: timm names under ``model``); the
   command printed is the converter tool doing the same);
2. for each task, training with the method's config (``tools/train.py``, or
   ``tools/dist_train.sh`` for several GPUs), the backbone loaded from step
   1, then ``tools/test.py`` (``tools/dist_test.sh``) on its last checkpoint,
   which writes its metrics to ``<task>/test_metrics.json``; with
   ``--ms-flip``, also the multi-scale + flip test of the segmentation
   model. On one GPU or a CPU both tools run in this process (the command
   printed is the same step); with several GPUs their launchers start the
   processes;
3. the results table of the work dir (:mod:`.results`, as
   ``tools/analysis/collect_results.py`` prints it).

Everything lands in ``--work-dir`` (default
``work_dirs/transfer/<method>[_<epochs>e]``): ``backbone.pth``,
``meta.json``, and the work dirs ``det/``, ``seg/``, ``seg_ms-flip/``.
"""
import argparse
import json
import os
import os.path as osp
import shlex
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from typing import IO, Callable, Dict, List, Optional, Tuple

from .pipeline import (METHODS, TEST_METRICS, batch_per_gpu, checkpoint_layout,
                       config_of, convert_weights, data_options,
                       extract_weights, last_checkpoint, launch_command,
                       read_test_metrics, run_command)
from .results import collect_run, markdown_table
from .run import test_main, train_main

TASK_NAMES = {'det': 'Mask R-CNN on COCO', 'seg': 'UperNet on ADE20K'}


def _cfg_options(opts: List[str]) -> List[str]:
    return ['--cfg-options'] + opts if opts else []


class Transfer:
    """Runs (or, with ``dry_run``, prints) the steps of one transfer.

    Args:
        args: parsed by :func:`parse_transfer_args`.
        out: a file for everything printed and the tools' output (None:
            this process's stdout).
    """

    def __init__(self, args: argparse.Namespace,
                 out: Optional[IO] = None) -> None:
        self.args = args
        self.out = out
        self.step = 0
        self.steps = (args.method != 'scratch') + 2 * len(args.tasks) + \
            int(args.ms_flip and 'seg' in args.tasks) + 1
        self.metrics: Dict[str, dict] = {}

    def run(self, what: str, cmd: List[str],
            call: Optional[Callable[[], object]] = None) -> None:
        """Run one step, showing what it is, its command and its time:
        ``call`` in this process when given, else ``cmd`` in a child."""
        self.step += 1
        print(f'\n[transfer {self.step}/{self.steps}] {what}\n  ' +
              shlex.join(cmd), file=self.out, flush=True)
        if self.args.dry_run:
            return
        start = time.time()
        if call is not None:
            try:
                call()
            except SystemExit as err:  # how the tools stop on bad input
                if err.code:
                    raise SystemExit(f'{err.code}\n[transfer] failed '
                                     f'({what})')
        else:
            code = run_command(cmd, self.out)
            if code:
                raise SystemExit(f'[transfer] failed ({what}): exit code '
                                 f'{code}')
        print(f'[transfer {self.step}/{self.steps}] done in '
              f'{time.time() - start:.0f} s', file=self.out, flush=True)

    def tool(self, name: str, config: str, args: List[str]
             ) -> Tuple[List[str], Optional[Callable[[], object]]]:
        """``tools/train.py`` / ``tools/test.py`` as a step: its command
        and, on one GPU (or a CPU), the same tool run in this process.

        In this process the step skips the start-up of a new interpreter
        (importing the OpenMMLab stack takes about 9 s on a 2-core CPU);
        several GPUs need the launcher's processes.
        """
        cmd = launch_command(name, config, args, self.args.gpus)
        if self.args.gpus > 1:
            return cmd, None
        main = train_main if name == 'train' else test_main

        def call():
            out = self.out or sys.stdout
            with redirect_stdout(out), redirect_stderr(out):
                main(cmd[2:])  # [python, tools/<name>.py, *argv]

        return cmd, call

    def prepare_backbone(self) -> Optional[str]:
        """Step 1: backbone weights from the checkpoint; their path."""
        a = self.args
        if a.method == 'scratch':
            return None
        out = osp.join(a.work_dir, 'backbone.pth')
        layout = a.layout
        if layout == 'auto':
            layout = checkpoint_layout(a.checkpoint)
        if layout == 'toolkit':
            tool, flags = 'extract_weights.py', ['--prefix', 'backbone.']

            def write():
                return extract_weights(a.checkpoint, out, prefix='backbone.')
        else:
            tool, flags = 'convert_checkpoint.py', ['--format', a.method]

            def write():
                return convert_weights(a.checkpoint, out, a.method)[0]

        def call():
            print(f'wrote {len(write())} tensors to {out}', file=self.out)

        self.run(f'backbone weights from {a.checkpoint} ({layout} layout)',
                 [sys.executable, f'tools/model_converters/{tool}',
                  a.checkpoint, out, *flags], call)
        return out

    def test(self, what: str, config: str, ckpt: str, work: str,
             extra: List[str], opts: List[str]) -> None:
        """One test step; its metrics (by work dir name) from the JSON it
        writes."""
        metrics = osp.join(work, TEST_METRICS)
        self.run(what, *self.tool('test', config, [
            ckpt, '--work-dir', work, *extra, '--out-metrics', metrics,
            *_cfg_options(opts)]))
        if not self.args.dry_run:
            self.metrics[osp.basename(work)] = read_test_metrics(metrics)

    def train_and_test(self, task: str, backbone: Optional[str]) -> None:
        """Step 2 for one task."""
        a = self.args
        config = config_of(task, a.method, a.tiny, a.schedule)
        work = osp.join(a.work_dir, task)
        opts = list(a.cfg_options)
        if a.data_root:
            opts += data_options(task, a.data_root)
        test_opts = list(opts)
        if backbone is not None:
            opts.append(f'model.backbone.init_cfg.checkpoint={backbone}')
        train_args = ['--work-dir', work]
        if a.batch_per_gpu:
            opts.append(f'train_dataloader.batch_size={a.batch_per_gpu}')
            train_args.append('--auto-scale-lr')
        else:  # the protocol's total batch, whatever the number of GPUs
            per_gpu = batch_per_gpu(config, a.gpus)
            opts.append(f'train_dataloader.batch_size={per_gpu}')
        name = TASK_NAMES[task]
        self.run(f'train {name} ({config})', *self.tool(
            'train', config, train_args + _cfg_options(opts)))
        ckpt = osp.join(work, 'LAST_CHECKPOINT.pth') if a.dry_run else \
            last_checkpoint(work)
        extra = ['--show-dir', a.show_dir] if a.show_dir else []
        if task == 'det':
            extra += ['--out', osp.join(work, 'results.pkl')]
        self.test(f'test {name}', config, ckpt, work, extra, test_opts)
        if task == 'seg' and a.ms_flip:
            flip = config if a.tiny else config_of(
                'seg', a.method, ms_flip=True)
            self.test(f'multi-scale + flip test of {name} ({flip})', flip,
                      ckpt, work + '_ms-flip', ['--tta'], test_opts)

    def results(self) -> None:
        """Step 3: the table of every task in the work dir."""
        a = self.args
        # only this call's work dirs: another call may be filling the others
        tasks = list(a.tasks) + (['seg_ms-flip'] if a.ms_flip and 'seg' in
                                 a.tasks else [])
        try:
            row = collect_run(a.work_dir, tasks)
        except (FileNotFoundError, ValueError) as err:
            raise SystemExit(f'[transfer] failed (results): {err}')
        print(markdown_table([row]), file=self.out)

    def __call__(self) -> Dict[str, object]:
        """Run every step.

        Returns:
            dict: ``backbone`` (the weights file, None for scratch) and
            ``metrics`` (the test metrics by work dir: ``det``, ``seg``,
            ``seg_ms-flip``; empty for a dry run).
        """
        a = self.args
        if not a.dry_run:
            os.makedirs(a.work_dir, exist_ok=True)
            with open(osp.join(a.work_dir, 'meta.json'), 'w') as f:
                json.dump(dict(method=a.method,
                               pretrain_epochs=a.pretrain_epochs,
                               checkpoint=a.checkpoint, tiny=a.tiny,
                               schedule=a.schedule), f, indent=2)
        backbone = self.prepare_backbone()
        for task in a.tasks:
            self.train_and_test(task, backbone)
        self.run('results', [sys.executable,
                             'tools/analysis/collect_results.py',
                             a.work_dir], self.results)
        return dict(backbone=backbone, metrics=self.metrics)


def build_transfer_parser() -> argparse.ArgumentParser:
    """Command-line parser of ``tools/transfer.py``."""
    parser = argparse.ArgumentParser(
        description='Fine-tune a pretrained ViT with Mask R-CNN (COCO) and '
        'UperNet (ADE20K) and print box AP, mask AP and mIoU.')
    parser.add_argument('--method', required=True, choices=METHODS,
                        help='the pretraining method (decides the configs)')
    parser.add_argument('--checkpoint',
                        help='the pretraining checkpoint (not for scratch)')
    parser.add_argument(
        '--layout', default='auto', choices=['auto', 'toolkit', 'authors'],
        help='layout of --checkpoint: this toolkit\'s / mmpretrain\'s '
        'training checkpoint, or the authors\' release (default: read from '
        'its keys)')
    parser.add_argument('--pretrain-epochs', type=int,
                        help='pretraining epochs, for the results table')
    parser.add_argument('--tasks', nargs='+', default=['det', 'seg'],
                        choices=['det', 'seg'])
    parser.add_argument('--gpus', type=int, default=1,
                        help='GPUs on this node; more than 1 uses '
                        'tools/dist_train.sh and tools/dist_test.sh')
    parser.add_argument(
        '--batch-per-gpu', type=int,
        help='images per GPU (default: the config\'s total batch split '
        'over --gpus); the learning rate is scaled to the new total')
    parser.add_argument('--schedule', default='100e', choices=['100e', '25e'],
                        help='detection schedule (real configs)')
    parser.add_argument('--tiny', action='store_true',
                        help='the tiny configs on the built-in data (CPU, '
                        'minutes), for checkpoints of the tiny pretraining '
                        'configs')
    parser.add_argument('--ms-flip', action='store_true',
                        help='also test segmentation with multi-scale + '
                        'flip')
    parser.add_argument('--data-root',
                        help='folder with coco/ and ade/ADEChallengeData2016 '
                        '(default: the configs\' data/...)')
    parser.add_argument('--work-dir',
                        help='default work_dirs/transfer/<method>'
                        '[_<epochs>e]')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='extra key=value overrides for every run')
    parser.add_argument(
        '--show-dir',
        help='draw the test predictions with mmdet\'s / mmseg\'s '
        'visualizer into this folder (inside each test run\'s timestamped '
        'folder, as tools/test.py does)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the commands without running them')
    return parser


def parse_transfer_args(
        argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The arguments of ``tools/transfer.py``, checked, paths absolute."""
    parser = build_transfer_parser()
    args = parser.parse_args(argv)
    if args.method == 'scratch' and args.checkpoint:
        parser.error('--method scratch takes no --checkpoint')
    if args.method != 'scratch' and not args.checkpoint:
        parser.error(f'--method {args.method} needs --checkpoint')
    if args.checkpoint and not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint not found: {args.checkpoint}')
    if args.checkpoint:
        args.checkpoint = osp.abspath(args.checkpoint)
    if args.gpus < 1:
        parser.error('--gpus must be at least 1')
    if args.work_dir is None:
        suffix = f'_{args.pretrain_epochs}e' if args.pretrain_epochs else ''
        args.work_dir = osp.join('work_dirs', 'transfer',
                                 args.method + suffix)
    args.work_dir = osp.abspath(args.work_dir)
    if args.data_root:
        args.data_root = osp.abspath(args.data_root)
    return args


def transfer_main(argv: Optional[List[str]] = None,
                  out: Optional[IO] = None) -> Dict[str, object]:
    """Run ``tools/transfer.py``.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
        out: a file for everything printed and the tools' output (None:
            this process's stdout).

    Returns:
        dict: the arguments, plus ``backbone`` and ``metrics`` of
        :meth:`Transfer.__call__`.
    """
    args = parse_transfer_args(argv)
    start = time.time()
    produced = Transfer(args, out)()
    print(f'\n[transfer] all done in {time.time() - start:.0f} s; results '
          f'in {args.work_dir}', file=out)
    return dict(vars(args), **produced)
