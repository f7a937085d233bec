"""Real tools/train.py runs of the tiny LoMaR config: exact resume after a
SIGKILL (mid-epoch, and during a checkpoint write), bit-identical
deterministic runs, and a 2-process gloo run against a 1-process run."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import warnings

import pytest
import torch

TINY = 'mmpretrain_configs/lomar/lomar_vit-tiny-p8_1xb32-20e_synthetic.py'
SUPPORT = osp.join(osp.dirname(osp.abspath(__file__)), 'support')
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
ITERS_PER_EPOCH = 4  # 32 images, batch 8
TOTAL = 8  # 2 epochs


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [SUPPORT, env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


def _config(work, hooks):
    """A config file: the tiny LoMaR config plus the test's hooks."""
    os.makedirs(work, exist_ok=True)
    path = osp.join(work, f'cfg_{len(os.listdir(work))}.py')
    with open(path, 'w') as f:
        f.write(f"_base_ = '{osp.join(REPO, TINY)}'\n"
                "custom_imports = dict(imports=['mim_pretrain', "
                "'reliability_hooks'], allow_failed_imports=False)\n"
                f'custom_hooks = {hooks}\n')
    return path


def _opts(root, work, hooks, batch=8, deterministic=True):
    return [
        _config(work, hooks), '--work-dir', work, '--cfg-options',
        f'train_dataloader.dataset.data_root={root}/imagenet',
        'train_dataloader.dataset.indices=32',
        f'train_dataloader.batch_size={batch}',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'train_cfg.max_epochs=2',
        'default_hooks.checkpoint.by_epoch=False',
        'default_hooks.checkpoint.interval=3',
        'default_hooks.checkpoint.max_keep_ckpts=3',
        'default_hooks.logger.interval=1',
        f'randomness.deterministic={deterministic}',
    ]


def _train(repo, args, check=True, launcher=None):
    config, rest = args[0], args[1:]
    cmd = ([sys.executable, 'tools/train.py', config] if launcher is None
           else ['bash', 'tools/dist_train.sh', config, str(launcher)])
    res = subprocess.run(cmd + rest, cwd=repo, env=dict(_env(), PORT='29516'),
                         capture_output=True, text=True, timeout=600)
    if check:
        assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-3000:])
    return res


def _losses(path):
    with open(path) as f:
        return {r['iter']: r['loss'] for r in map(json.loads, f)}


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from mim_pretrain.datasets import generate_imagenet
    root = str(tmp_path_factory.mktemp('resume_data'))
    generate_imagenet(osp.join(root, 'imagenet'), num_images=32, seed=0)
    return root


@pytest.fixture(scope='module')
def uninterrupted(data, tmp_path_factory, repo_root):
    """(losses, work dir) of the 8-iteration reference run."""
    work = str(tmp_path_factory.mktemp('reference'))
    log = osp.join(work, 'losses.jsonl')
    hooks = f"[dict(type='RecordLossHook', path='{log}')]"
    _train(repo_root, _opts(data, work, hooks))
    return _losses(log), work


def _final_state(work):
    ckpt = torch.load(osp.join(work, f'iter_{TOTAL}.pth'), map_location='cpu',
                      weights_only=False)
    return ckpt['state_dict'], ckpt['optimizer']


@pytest.mark.slow
@pytest.mark.parametrize('kill', ['after_step', 'during_save'])
def test_resume_after_sigkill_equals_uninterrupted(kill, data, uninterrupted,
                                                   tmp_path, repo_root):
    """SIGKILL in epoch 2 (after step 7, or while iter_6.pth is written),
    then `--resume`: the losses of every step and the final weights and
    optimizer state equal those of the uninterrupted run."""
    reference, ref_work = uninterrupted
    work = str(tmp_path / 'work')
    log = osp.join(work, 'losses.jsonl')
    killer = ("dict(type='KillAtIterHook', iteration=7)" if kill ==
              'after_step' else
              "dict(type='KillDuringSaveHook', filename='iter_6.pth')")
    res = _train(repo_root, _opts(data, work, f"[dict(type='RecordLossHook', "
                                  f"path='{log}'), {killer}]"), check=False)
    assert res.returncode == -9, (res.returncode, res.stderr[-2000:])
    ckpts = sorted(osp.basename(p) for p in glob.glob(f'{work}/*.pth'))
    if kill == 'during_save':
        # no partial iter_6.pth: only the complete iter_3.pth is visible
        assert ckpts == ['iter_3.pth'], ckpts
    else:
        assert ckpts == ['iter_3.pth', 'iter_6.pth'], ckpts
    resumed_from = 3 if kill == 'during_save' else 6
    res = _train(repo_root, _opts(
        data, work, f"[dict(type='RecordLossHook', path='{log}')]") +
        ['--resume'])
    assert f'iter_{resumed_from}.pth' in res.stdout + res.stderr
    # the killed run logged steps after the checkpoint: keep the resumed ones
    losses = {}
    with open(log) as f:
        for rec in map(json.loads, f):
            losses[rec['iter']] = rec['loss']
    assert sorted(losses) == sorted(reference) == list(range(TOTAL))
    for i in range(TOTAL):
        assert losses[i] == pytest.approx(reference[i], rel=1e-6, abs=1e-7), i
    state, optim = _final_state(work)
    ref_state, ref_optim = _final_state(ref_work)
    for k, v in ref_state.items():
        torch.testing.assert_close(state[k], v, rtol=1e-6, atol=1e-7)
    assert ref_optim['state']
    for idx, s in ref_optim['state'].items():
        torch.testing.assert_close(optim['state'][idx]['exp_avg'],
                                   s['exp_avg'], rtol=1e-5, atol=1e-8)


@pytest.mark.slow
def test_deterministic_runs_are_bit_identical(data, uninterrupted, tmp_path,
                                              repo_root):
    """Seed + deterministic flags: a second run gives the same losses, bit
    for bit."""
    reference, _ = uninterrupted
    work = str(tmp_path / 'work')
    log = osp.join(work, 'losses.jsonl')
    _train(repo_root, _opts(data, work,
                            f"[dict(type='RecordLossHook', path='{log}')]"))
    assert _losses(log) == reference


@pytest.mark.slow
def test_two_process_gloo_run_matches_one_process(data, uninterrupted,
                                                  tmp_path, repo_root):
    """tools/dist_train.sh with 2 CPU processes (gloo), batch 4 each, against
    the 1-process batch-8 run: same initial weights on both ranks, identical
    weights after training (gradients are averaged), different masks/windows
    and images per rank, and a loss curve within 10% of the 1-process one
    (the masks differ, so the losses cannot be equal)."""
    reference, _ = uninterrupted
    work = str(tmp_path / 'work')
    log = osp.join(work, 'losses.jsonl')
    ranks = osp.join(work, 'ranks.jsonl')
    os.makedirs(work)
    hooks = (f"[dict(type='RecordLossHook', path='{log}'), "
             f"dict(type='RankStateHook', path='{ranks}')]")
    _train(repo_root, _opts(data, work, hooks, batch=4), launcher=2)
    losses = _losses(log)
    assert sorted(losses) == list(range(TOTAL))
    first = sum(reference[i] for i in range(4)) / 4
    for part in (range(0, 4), range(4, 8)):
        mine = sum(losses[i] for i in part) / 4
        ref = sum(reference[i] for i in part) / 4
        assert abs(mine - ref) <= 0.1 * first, (part, mine, ref)
    with open(ranks) as f:
        records = [json.loads(line) for line in f]
    by = {(r['rank'], r['what'], r.get('iter')): r for r in records}
    assert by[(0, 'initial', None)]['value'] == pytest.approx(
        by[(1, 'initial', None)]['value'], rel=1e-12)
    assert by[(0, 'final', None)]['value'] == pytest.approx(
        by[(1, 'final', None)]['value'], rel=1e-9)
    assert by[(0, 'final', None)]['value'] != by[(0, 'initial', None)]['value']
    for i in range(2):
        r0, r1 = by[(0, 'iter', i)], by[(1, 'iter', i)]
        assert r0['rng'] != r1['rng']  # different masks and windows
        assert not set(r0['files']) & set(r1['files'])  # different images


@pytest.mark.slow
def test_two_process_transfer_run(synthetic_data, tmp_path, repo_root):
    """mmseg's UperNet through tools/dist_train.sh with 2 CPU processes
    (gloo; its SyncBN heads run as per-process BN on the CPU): it trains,
    validates with IoUMetric and writes a checkpoint."""
    from conftest import seg_data_options
    root, _ = synthetic_data
    # Two fresh-clone CI runs saw rank 0 die with SIGABRT ("terminate called
    # without an active exception") after training, saving and validating:
    # gloo's threads torn down at interpreter exit. tools/train.py now closes
    # the process group itself (checked below). A worker killed by a signal
    # is still retried once, with a warning that keeps the whole output, as
    # a guard against other rare crashes of 2 processes on a shared 2-core
    # machine; any other failure, or a second signal, fails at once.
    for attempt in range(2):
        work = str(tmp_path / f'work{attempt}')
        res = subprocess.run(
            ['bash', 'tools/dist_train.sh',
             'mmseg_configs/stack_check/upernet_r18_200i_synthetic.py', '2',
             '--work-dir', work, '--cfg-options', *seg_data_options(root),
             'train_cfg.max_iters=6', 'train_cfg.val_interval=6',
             'default_hooks.checkpoint.interval=6',
             'default_hooks.logger.interval=2', 'param_scheduler.0.end=6'],
            cwd=repo_root, env=dict(_env(), PORT=str(29517 + attempt)),
            capture_output=True, text=True, timeout=600)
        if res.returncode == 0:
            break
        tail = (f'exit code {res.returncode}\n--- stdout (tail)\n'
                f'{res.stdout[-4000:]}\n--- stderr (tail)\n'
                f'{res.stderr[-8000:]}')
        if attempt or 'Signal' not in res.stderr:
            pytest.fail(tail, pytrace=False)
        warnings.warn(f'2-process run killed by a signal; retrying once:\n'
                      f'{tail}')
    log = res.stdout + res.stderr
    assert 'using the gloo backend' in log and 'per-process BatchNorm' in log
    assert 'mIoU' in log and 'Iter(train) [6/6]' in log
    assert 'process group closed' in log
    assert osp.isfile(osp.join(work, 'iter_6.pth'))
