"""Smoke runs of the benchmark tools at tiny sizes: they run, write
well-formed outputs and count FLOPs that agree with the analytic formula.
No timing is asserted (the figures come from real machines, see
docs/benchmarks.md)."""
import json
import os.path as osp

import pytest

from mim_pretrain.benchmarks import common as bench_utils
from mim_pretrain.benchmarks import pretrain_speed, transfer_speed


def test_pretrain_speed_writes_json_table_and_plot(tmp_path):
    """All three ViT models run at one tiny size; FLOPs counted by the
    counter match the per-block formula; a Swin model that refuses the size
    is recorded as not run, not dropped."""
    work = str(tmp_path)
    result = pretrain_speed.main([
        '--arch', 't', '--sizes', '112', '--batch', '1', '--warmup', '1',
        '--repeats', '1', '--threads', '1', '--device', 'cpu', '--models',
        'lomar', 'localmim', 'mae', 'localmim-swin', '--work-dir', work
    ])
    with open(osp.join(work, 'pretrain_speed.json')) as f:
        saved = json.load(f)
    assert saved['machine']['device'] == 'cpu'
    assert saved['machine']['threads'] == 1
    for key in ('date', 'torch', 'loadavg_start', 'loadavg_end'):
        assert key in saved['machine']
    runs = {r['model']: r for r in saved['runs']}
    assert set(runs) == {'lomar', 'localmim', 'mae', 'localmim-swin'}
    assert 'multiple of 32' in runs['localmim-swin']['error']
    for name in ('lomar', 'localmim', 'mae'):
        r = runs[name]
        assert r['size'] == 112 and r['batch'] == 1
        assert r['median_s'] > 0 and len(r['times_s']) == 1
        assert r['peak_mem_mib'] is not None
        assert r['counted_over_analytic'] == pytest.approx(1, abs=0.01)
        # backward is about twice the forward
        assert 2.5 < r['gflops_train_per_image'] / r[
            'gflops_fwd_per_image'] < 3.5
        assert r['mfu'] is None  # no peak known for a CPU
    assert result['runs'] == saved['runs']
    table = open(osp.join(work, 'pretrain_speed.md')).read()
    assert '| LoMaR | 112 | 1 |' in table and 'not run' in table
    with open(osp.join(work, 'pretrain_speed.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_transfer_speed_writes_json_and_table(tmp_path):
    """Mask R-CNN and UperNet, ours and the anchor, train and inference
    steps at a tiny size, with counted FLOPs equal for equal layouts; the
    caller's thread count and default scope are left as they were."""
    import torch
    from mmengine.registry import DefaultScope
    threads = torch.get_num_threads()
    scope = DefaultScope.get_current_instance()
    work = str(tmp_path)
    transfer_speed.main([
        '--tiny', '--det-size', '64', '--seg-size', '64', '--repeats', '1',
        '--threads', '1', '--device', 'cpu', '--work-dir', work
    ])
    with open(osp.join(work, 'transfer_speed.json')) as f:
        saved = json.load(f)
    tasks = {t['task']: t for t in saved['tasks']}
    assert set(tasks) == {'det', 'seg'}
    assert [m['backbone'] for m in tasks['det']['models']] == [
        'MIMVisionTransformer', 'mmpretrain.ViTSAM'
    ]
    assert [m['backbone'] for m in tasks['seg']['models']] == [
        'MIMVisionTransformer', 'MAE'
    ]
    for t in tasks.values():
        assert t['train_time_ratio'] > 0 and t['infer_time_ratio'] > 0
        ours, anchor = t['models']
        for m in t['models']:
            assert m['train_images_per_s'] > 0
            assert m['infer_images_per_s'] > 0
        # the same layout, so the same matmul work in inference
        assert ours['gflops_infer_per_image'] == pytest.approx(
            anchor['gflops_infer_per_image'], rel=0.05)
    table = open(osp.join(work, 'transfer_speed.md')).read()
    assert 'ours / anchor: training step' in table
    assert saved['machine']['threads'] == 1
    assert torch.get_num_threads() == threads
    # mmengine restores its scopes as copies: compare the scope's name
    after = DefaultScope.get_current_instance()
    assert getattr(after, 'scope_name', None) == getattr(
        scope, 'scope_name', None)


def test_flop_counter_counts_cpu_attention():
    """PyTorch's counter alone counts 0 for CPU SDPA; ours counts it."""
    import torch
    import torch.nn.functional as F
    q = torch.randn(2, 3, 10, 8)
    with bench_utils.flop_counter_mode() as counter:
        F.scaled_dot_product_attention(q, q, q, attn_mask=torch.zeros(10, 10))
    assert counter.get_total_flops() == 2 * 2 * 2 * 3 * 10 * 10 * 8


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        pretrain_speed.parse_args(['--warmup', '0'])
    with pytest.raises(SystemExit):
        pretrain_speed.parse_args(['--batch-at', '896'])
    with pytest.raises(ValueError, match='no config for arch'):
        pretrain_speed.config_path('localmim-swin', 'l')
    with pytest.raises(SystemExit):
        transfer_speed.parse_args(['--det-size', '1000'])
    with pytest.raises(KeyError):
        bench_utils.optim_wrapper_cfg(dict(type='AdamW'), 'fp8')


def test_amp_runs_on_the_cpu():
    """--amp bf16 / fp16 build the toolkit's MixedPrecisionOptimWrapper,
    which autocasts on a CPU (mmengine's AmpOptimWrapper refuses to)."""
    import torch
    from mmengine.optim import build_optim_wrapper
    model = torch.nn.Linear(4, 4)
    for amp, dtype in (('bf16', torch.bfloat16), ('fp16', torch.float16)):
        cfg = bench_utils.optim_wrapper_cfg(dict(type='AdamW', lr=1e-3), amp)
        wrapper = build_optim_wrapper(model, cfg)
        assert type(wrapper).__name__ == 'MixedPrecisionOptimWrapper'
        with wrapper.optim_context(model):
            assert model(torch.randn(2, 4)).dtype == dtype
