"""The command-line tools: --help of each, and train -> stop -> --resume."""
import copy
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

PY_TOOLS = ['train.py', 'test.py', 'main_job.py', 'data/generate_data.py',
            'model_converters/extract_weights.py',
            'model_converters/convert_checkpoint.py',
            'analysis/visualize_reconstruction.py', 'demo.py',
            'analysis/get_flops.py', 'analysis/collect_results.py',
            'analysis/check_transfer.py',
            'benchmarks/data_checks.py']
SH_TOOLS = ['dist_train.sh', 'dist_test.sh', 'slurm_train.sh',
            'slurm_test.sh']
TINY_MAE = 'mmpretrain_configs/mae/mae_vit-tiny-p8_1xb32-20e_synthetic.py'


def _run(args, cwd, **kw):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                          timeout=600, **kw)


@pytest.mark.parametrize('tool', PY_TOOLS)
def test_python_tool_help(tool, repo_root):
    res = _run([sys.executable, f'tools/{tool}', '--help'], repo_root)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith('usage:')


@pytest.mark.parametrize('tool', SH_TOOLS)
def test_shell_launcher_usage(tool, repo_root):
    res = _run(['bash', f'tools/{tool}'], repo_root)
    assert res.returncode == 2 and 'usage:' in res.stderr


def test_setup_env_help(repo_root):
    res = _run(['bash', 'tools/setup_env.sh', '--help'], repo_root)
    assert res.returncode == 0 and 'Usage' in res.stdout


def test_train_refuses_config_without_known_scope(tmp_path, repo_root):
    cfg = tmp_path / 'bad.py'
    cfg.write_text("default_scope = 'mmocr'\n")
    res = _run([sys.executable, 'tools/train.py', str(cfg)], repo_root)
    assert res.returncode != 0
    assert 'bad.py: default_scope is' in res.stderr


def test_missing_config_and_checkpoint_are_named(tmp_path, repo_root):
    res = _run([sys.executable, 'tools/train.py', 'no/such.py'], repo_root)
    assert 'config file not found: no/such.py' in res.stderr
    res = _run([sys.executable, 'tools/test.py', TINY_MAE,
                str(tmp_path / 'x.pth')], repo_root)
    assert f'checkpoint not found: {tmp_path}/x.pth' in res.stderr


class _ResumeProbe:
    """Records the runner's state right after it resumed (before_train)."""
    seen = {}

    def __init__(self):
        from mmengine.hooks import Hook

        class Probe(Hook):

            def before_train(self, runner):
                model = runner.model
                _ResumeProbe.seen.update(
                    iter=runner.iter,
                    epoch=runner.epoch,
                    state={k: v.detach().clone()
                           for k, v in model.state_dict().items()},
                    optim=copy.deepcopy(runner.optim_wrapper.state_dict()),
                    lr=runner.optim_wrapper.get_lr()['lr'][0])

        self.cls = Probe


@pytest.mark.slow
def test_train_stop_resume_restores_state(tmp_path, synthetic_data,
                                          repo_root):
    from mmengine.registry import HOOKS

    from mim_pretrain.apis import train_main
    root, summary = synthetic_data
    n_img = summary['imagenet']['num_images']
    batch = 16
    iters_per_epoch = -(-n_img // batch)
    work = str(tmp_path / 'work')
    common = [
        '--work-dir', work, '--cfg-options',
        f'train_dataloader.dataset.data_root={root}/imagenet',
        f'train_dataloader.batch_size={batch}',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=5',
    ]
    # 1) train one epoch as a user would, in its own process, and stop
    res = _run([sys.executable, 'tools/train.py', TINY_MAE, *common,
                'train_cfg.max_epochs=1'], repo_root)
    assert res.returncode == 0, res.stderr[-3000:]
    saved_path = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(saved_path)
    saved = torch.load(saved_path, map_location='cpu', weights_only=False)
    assert saved['meta']['iter'] == iters_per_epoch

    # 2) --resume (latest checkpoint of the work dir) up to epoch 2
    probe = _ResumeProbe()
    HOOKS.register_module(name='_ResumeProbeHook', module=probe.cls,
                          force=True)
    probe_cfg = tmp_path / 'with_probe.py'
    probe_cfg.write_text(f"_base_ = '{osp.join(repo_root, TINY_MAE)}'\n"
                         "custom_hooks = [dict(type='_ResumeProbeHook')]\n")
    try:
        runner = train_main([
            str(probe_cfg), '--resume', *common, 'train_cfg.max_epochs=2'
        ])
    finally:
        HOOKS._module_dict.pop('_ResumeProbeHook', None)
    seen = _ResumeProbe.seen
    # the restored state is the saved one
    assert seen['iter'] == saved['meta']['iter'] == iters_per_epoch
    assert seen['epoch'] == 1
    assert seen['state'].keys() == saved['state_dict'].keys()
    for key, value in saved['state_dict'].items():
        assert torch.equal(seen['state'][key], value), key
    saved_opt = saved['optimizer']['state']
    assert saved_opt and seen['optim']['state'].keys() == saved_opt.keys()
    for pid, st in saved_opt.items():
        for name in ('exp_avg', 'exp_avg_sq', 'step'):
            assert torch.equal(torch.as_tensor(seen['optim']['state'][pid][
                name]), torch.as_tensor(st[name])), (pid, name)
    assert seen['lr'] == pytest.approx(
        saved['optimizer']['param_groups'][0]['lr'])
    # and training finished where the config says
    assert runner.iter == 2 * iters_per_epoch and runner.epoch == 2
    final = torch.load(osp.join(work, 'epoch_2.pth'), map_location='cpu',
                       weights_only=False)
    assert final['meta']['iter'] == 2 * iters_per_epoch
    # the resumed run says why it unpickled the checkpoint in full
    logs = glob.glob(osp.join(work, '*', '*.log'))
    text = ''.join(open(p).read() for p in logs)
    assert 'weights_only=False' in text and "this run's work dir" in text
    assert os.path.exists(osp.join(work, 'last_checkpoint'))
