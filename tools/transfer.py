"""Transfer a pretrained ViT to Mask R-CNN on COCO and UperNet on ADE20K.

    python tools/transfer.py --method {lomar,localmim,mae,scratch} \
        [--checkpoint CKPT] [--pretrain-epochs N] [--tasks det seg] \
        [--gpus N] [--schedule {100e,25e}] [--tiny] [--ms-flip] \
        [--data-root DIR] [--work-dir DIR] [--dry-run]

Steps, each printed with its time:

1. the checkpoint to backbone weights: a checkpoint of this toolkit's or
   mmpretrain's training (keys under ``backbone.``) goes through
   ``tools/model_converters/extract_weights.py --prefix backbone.``; an
   authors' release (LoMaR, LocalMIM, MAE: timm names under ``model``)
   through ``tools/model_converters/convert_checkpoint.py --format METHOD``;
2. for each task, training with the method's config (``tools/train.py``, or
   ``tools/dist_train.sh`` for several GPUs), the backbone loaded from step
   1, then ``tools/test.py`` (``tools/dist_test.sh``) on its last checkpoint;
   with ``--ms-flip``, also the multi-scale + flip test of the segmentation
   model;
3. the results table (``tools/analysis/collect_results.py``).

Everything lands in ``--work-dir`` (default
``work_dirs/transfer/<method>[_<epochs>e]``): ``backbone.pth``,
``meta.json``, and the work dirs ``det/``, ``seg/``, ``seg_ms-flip/``.
"""
import argparse
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
METHODS = ('lomar', 'localmim', 'mae', 'scratch')


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
    task's config at the datasets under ``root`` (the layout of
    ``tools/data/generate_data.py``: ``root/coco``,
    ``root/ade/ADEChallengeData2016``)."""
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
    """``'toolkit'`` for a checkpoint with ``backbone.*`` keys (this
    toolkit's or mmpretrain's training, or an extracted/converted file),
    ``'authors'`` for the authors' timm-named encoder (``blocks.*``).

    Raises:
        SystemExit: the file holds neither.
    """
    from mim_pretrain.converters import read_state_dict
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
    from mmengine.config import Config
    total = Config.fromfile(osp.join(REPO, config)).auto_scale_lr[
        'base_batch_size']
    if total % gpus:
        raise SystemExit(
            f'{config}: its total batch {total} does not split over {gpus} '
            'GPUs; pass --batch-per-gpu B (the learning rate is then '
            'scaled to the new total with --auto-scale-lr)')
    return total // gpus


class Transfer:
    """Runs (or, with ``dry_run``, prints) the steps of one transfer."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.python = sys.executable
        self.step = 0
        self.steps = self._count_steps()

    def _count_steps(self) -> int:
        a = self.args
        n = 0 if a.method == 'scratch' else 1
        n += 2 * len(a.tasks)
        n += int(a.ms_flip and 'seg' in a.tasks)
        return n + 1

    def run(self, what: str, cmd: List[str]) -> None:
        """Run one step, showing what it is, its command and its time."""
        self.step += 1
        print(f'\n[transfer {self.step}/{self.steps}] {what}\n  '
              + ' '.join(shlex.quote(c) for c in cmd), flush=True)
        if self.args.dry_run:
            return
        start = time.time()
        env = dict(os.environ)
        env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
        res = subprocess.run(cmd, cwd=REPO, env=env)
        if res.returncode:
            raise SystemExit(f'[transfer] failed ({what}): exit code '
                             f'{res.returncode}')
        print(f'[transfer {self.step}/{self.steps}] done in '
              f'{time.time() - start:.0f} s', flush=True)

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
            cmd = [self.python, 'tools/model_converters/extract_weights.py',
                   a.checkpoint, out, '--prefix', 'backbone.']
        else:
            cmd = [self.python, 'tools/model_converters/convert_checkpoint.py',
                   a.checkpoint, out, '--format', a.method]
        self.run(f'backbone weights from {a.checkpoint} ({layout} layout)',
                 cmd)
        return out

    def _launch(self, tool: str, config: str, args: List[str]) -> List[str]:
        gpus = self.args.gpus
        if gpus > 1:
            script = 'tools/dist_train.sh' if tool == 'train' else \
                'tools/dist_test.sh'
            if tool == 'train':
                return ['bash', script, config, str(gpus)] + args
            return ['bash', script, config, args[0], str(gpus)] + args[1:]
        return [self.python, f'tools/{tool}.py', config] + args

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
        name = 'Mask R-CNN on COCO' if task == 'det' else 'UperNet on ADE20K'
        self.run(f'train {name} ({config})',
                 self._launch('train', config, train_args + (
                     ['--cfg-options'] + opts if opts else [])))
        ckpt = self._last_checkpoint(work)
        test_args = [ckpt, '--work-dir', work]
        if a.show_dir:
            test_args += ['--show-dir', a.show_dir]
        if task == 'det':
            test_args += ['--out', osp.join(work, 'results.pkl')]
        self.run(f'test {name}', self._launch('test', config, test_args + (
            ['--cfg-options'] + test_opts if test_opts else [])))
        if task == 'seg' and a.ms_flip:
            flip_config = config if a.tiny else config_of(
                'seg', a.method, ms_flip=True)
            self.run(
                f'multi-scale + flip test of {name} ({flip_config})',
                self._launch('test', flip_config, [
                    ckpt, '--tta', '--work-dir', work + '_ms-flip'
                ] + (['--cfg-options'] + test_opts if test_opts else [])))

    def _last_checkpoint(self, work: str) -> str:
        if self.args.dry_run:
            return osp.join(work, 'LAST_CHECKPOINT.pth')
        path = osp.join(work, 'last_checkpoint')
        if not osp.isfile(path):
            raise SystemExit(f'{work}: training wrote no last_checkpoint')
        with open(path) as f:
            return f.read().strip()

    def __call__(self) -> None:
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
        self.run('results', [self.python,
                             'tools/analysis/collect_results.py', a.work_dir])


def parse_args(argv=None) -> argparse.Namespace:
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


def main(argv=None) -> Dict[str, object]:
    args = parse_args(argv)
    start = time.time()
    Transfer(args)()
    print(f'\n[transfer] all done in {time.time() - start:.0f} s; results '
          f'in {args.work_dir}')
    return vars(args)


if __name__ == '__main__':
    main()
