"""A longer run with periodic checkpoints and validation keeps its memory
flat (resident set size recorded every 20 iterations by a hook)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from conftest import seg_data_options

SEG_CFG = 'mmseg_configs/stack_check/upernet_r18_200i_synthetic.py'
SUPPORT = osp.join(osp.dirname(osp.abspath(__file__)), 'support')
ITERS = 300


@pytest.mark.slow
def test_memory_stays_flat_over_checkpoints_and_validation(
        synthetic_data, tmp_path, repo_root):
    """300 UperNet iterations, a checkpoint and a validation every 60: the
    RSS after the first checkpoint + validation grows by less than 64 MiB
    (a leak of one batch per iteration would add hundreds)."""
    root, _ = synthetic_data
    work = str(tmp_path / 'work')
    os.makedirs(work)
    rss = osp.join(work, 'rss.jsonl')
    cfg = osp.join(work, 'soak.py')
    with open(cfg, 'w') as f:
        f.write(f"_base_ = '{osp.join(repo_root, SEG_CFG)}'\n"
                "custom_imports = dict(imports=['mim_pretrain', "
                "'reliability_hooks'], allow_failed_imports=False)\n"
                f"custom_hooks = [dict(type='RSSHook', path='{rss}', "
                'interval=20)]\n')
    env = dict(os.environ, PYTHONPATH=SUPPORT, OMP_NUM_THREADS='1')
    res = subprocess.run(
        [sys.executable, 'tools/train.py', cfg, '--work-dir', work,
         '--cfg-options', *seg_data_options(root),
         'train_dataloader.batch_size=2', f'train_cfg.max_iters={ITERS}',
         'train_cfg.val_interval=60', 'default_hooks.checkpoint.interval=60',
         'default_hooks.checkpoint.max_keep_ckpts=2',
         f'param_scheduler.0.end={ITERS}'],
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-3000:])
    with open(rss) as f:
        series = {r['iter']: r['rss_mib'] for r in map(json.loads, f)}
    print('RSS MiB by iteration:', series)
    assert sorted(series) == list(range(20, ITERS + 1, 20))
    after_first_round = series[80]  # first checkpoint + validation at 60
    assert max(series[i] for i in series if i >= 80) - after_first_round \
        < 64, series
    assert sorted(p for p in os.listdir(work) if p.endswith('.pth')) == [
        'iter_240.pth', 'iter_300.pth']
