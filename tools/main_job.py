"""The main job: the README's first command (``make main``).

Writes the built-in data, pretrains a small ViT on it with mmpretrain's MAE
through ``tools/train.py``, and prints how the loss fell.

    python tools/main_job.py [--work-dir work_dirs/main] [--data data]
                             [--epochs N] [--config CONFIG]
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join('mmpretrain_configs', 'mae',
                          'mae_vit-tiny-p8_1xb32-20e_synthetic.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Run the main job on the built-in data.')
    parser.add_argument('--work-dir', default='work_dirs/main',
                        help='where logs and checkpoints go')
    parser.add_argument('--data', default='data',
                        help='where the built-in data is written')
    parser.add_argument('--epochs', type=int, default=None,
                        help='pretraining epochs (default: the config\'s)')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='the pretraining config')
    return parser.parse_args(argv)


def read_losses(work_dir: str):
    """(iteration, loss) pairs from the newest run's scalars.json."""
    names = os.listdir(work_dir) if osp.isdir(work_dir) else []
    runs = sorted(d for d in names
                  if osp.isfile(osp.join(work_dir, d, 'vis_data',
                                         'scalars.json')))
    if not runs:
        raise FileNotFoundError(f'no vis_data/scalars.json under {work_dir}')
    pairs = []
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        for line in f:
            rec = json.loads(line)
            if 'loss' in rec:
                pairs.append((rec['iter'], rec['loss']))
    return pairs


def main(argv=None):
    args = parse_args(argv)
    t0 = time.time()
    print('[main] 1/2 built-in data', flush=True)
    subprocess.run([sys.executable,
                    osp.join(REPO, 'tools', 'data', 'generate_data.py'),
                    '--out', args.data], check=True)
    print('[main] 2/2 MAE pretraining of a small ViT '
          f'({args.config})', flush=True)
    pre_dir = osp.join(args.work_dir, 'mae')
    opts = [f'train_dataloader.dataset.data_root={args.data}/imagenet']
    if args.epochs is not None:
        opts.append(f'train_cfg.max_epochs={args.epochs}')
    subprocess.run([sys.executable, osp.join(REPO, 'tools', 'train.py'),
                    args.config, '--work-dir', pre_dir, '--cfg-options',
                    *opts], check=True)
    losses = read_losses(pre_dir)
    if not losses:
        raise SystemExit(f'[main] no loss was logged in {pre_dir}')
    k = max(1, len(losses) // 5)
    first = sum(v for _, v in losses[:k]) / k
    last = sum(v for _, v in losses[-k:]) / k
    print(f'\n[main] MAE loss, mean of the first {k} logged values: '
          f'{first:.4f}; of the last {k}: {last:.4f} '
          f'(iterations {losses[0][0]}-{losses[-1][0]})')
    print('[main] ' + ('the loss fell' if last < first else
                       'the loss did NOT fall: see the log above'))
    print(f'[main] done in {time.time() - t0:.0f} s; logs and checkpoints '
          f'in {pre_dir}')
    return 0 if last < first else 1


if __name__ == '__main__':
    sys.exit(main())
