"""The tiny pretraining configs train through tools/train.py and
tools/dist_train.sh on the built-in images."""
import glob
import json
import os.path as osp
import subprocess
import sys

import pytest

TINY = 'mmpretrain_configs/lomar/lomar_vit-tiny-p8_1xb32-20e_synthetic.py'
TINY_CONFIGS = {
    'LoMaR': TINY,
    'LocalMIM': 'mmpretrain_configs/localmim/localmim_vit-tiny-p8_1xb32-20e_'
    'synthetic.py',
}


def _losses(work_dir):
    path = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(path) == 1, path
    with open(path[0]) as f:
        return [json.loads(line)['loss'] for line in f if '"loss"' in line]


def _opts(root, batch):
    return [f'train_dataloader.dataset.data_root={root}/imagenet',
            f'train_dataloader.batch_size={batch}',
            'train_dataloader.num_workers=1',
            'default_hooks.logger.interval=4']


@pytest.mark.slow
@pytest.mark.parametrize('method', sorted(TINY_CONFIGS))
def test_tiny_config_reduces_the_loss(method, tmp_path, repo_root):
    """160 CPU steps on the built-in images: the loss falls (measured:
    to 0.50x the first 40 steps' mean for both, 0.46-0.49x after 320)."""
    from mim_pretrain.datasets import generate_imagenet
    root = str(tmp_path / 'data')
    generate_imagenet(osp.join(root, 'imagenet'), num_images=128, seed=0)
    work = str(tmp_path / 'work')
    # 128 images / batch 8 = 16 steps per epoch, 10 epochs = 160 steps
    res = subprocess.run(
        [sys.executable, 'tools/train.py', TINY_CONFIGS[method], '--work-dir',
         work,
         '--cfg-options', *_opts(root, 8), 'train_cfg.max_epochs=10'],
        cwd=repo_root, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    losses = _losses(work)
    assert len(losses) == 160 // 4
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    print(f'{method} tiny, 160 steps: loss {first:.3f} (first 40 steps) -> '
          f'{last:.3f} (last 40 steps)')
    assert last < 0.75 * first
    assert osp.isfile(osp.join(work, 'epoch_10.pth'))


@pytest.mark.slow
def test_dist_train_with_one_process(tmp_path, synthetic_data, repo_root):
    root, _ = synthetic_data
    work = str(tmp_path / 'dist')
    res = subprocess.run(
        ['bash', 'tools/dist_train.sh', TINY, '1', '--work-dir', work,
         '--cfg-options', *_opts(root, 8), 'train_cfg.max_epochs=1'],
        cwd=repo_root, capture_output=True, text=True, timeout=600,
        # a port apart from test_resume_and_distributed's (parallel tests)
        env={**__import__('os').environ, 'PORT': '29537',
             'PYTHON': sys.executable})
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    assert len(_losses(work)) == 2  # 64 images / 8 = 8 steps, logged every 4
    log = ''.join(open(p).read()
                  for p in glob.glob(osp.join(work, '*', '*.log')))
    assert 'Distributed launcher: pytorch' in log or 'launcher: pytorch' in log
