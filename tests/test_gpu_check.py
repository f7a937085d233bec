"""The GPU check's CPU path (what CI runs): every item runs on tiny models
under bf16 CPU autocast and passes, and the outputs are complete.

A failure here names the item: a config whose AMP step raises or gives a
non-finite loss, an attention kind whose bias reaches SDPA in another dtype
than the queries or whose bias gradient differs from the math kernel's."""
import json
import os.path as osp

import pytest

from mim_pretrain.benchmarks import gpu_check

SDPA_KINDS = ('plain', 'irpe', 'decomposed', 'beit', 'window_vitdet',
              'window_swin')


@pytest.fixture(scope='module')
def cpu_run(tmp_path_factory):
    work = str(tmp_path_factory.mktemp('gpu_check'))
    result = gpu_check.main(['--device', 'cpu', '--budget-s', '1000',
                             '--work-dir', work])
    return work, result


def failures(items):
    return {i['name']: i.get('error') for i in items
            if i['status'] != 'passed'}


@pytest.mark.slow
def test_outputs_and_environment(cpu_run):
    work, result = cpu_run
    with open(osp.join(work, 'gpu_check.json')) as f:
        saved = json.load(f)
    assert saved['summary'] == result['summary']
    assert saved['summary']['skipped'] == 0
    env = saved['environment']
    for key in ('torch', 'cuda', 'cudnn', 'gpu_name', 'versions',
                'sdp_priority', 'mmcv_ops', 'mmcv_compiled_cuda'):
        assert key in env
    assert env['device'] == 'cpu' and env['peak_tflops'] is None
    # nms, the raw nms kernel and RoIAlign, float32 and bf16, recorded
    assert len(env['mmcv_ops']) == 6
    assert env['mmcv_ops_ok'] and env['mmcv_ops_ran_on'] == ['cpu']
    table = open(osp.join(work, 'gpu_check.md')).read()
    for title in ('## Environment', '## SDPA backends',
                  '## AMP training steps, pretraining',
                  '## AMP training steps, transfer',
                  '## Pretraining throughput'):
        assert title in table
    for item in saved['items']:
        assert item['elapsed_s'] >= 0


@pytest.mark.slow
def test_every_config_attempted_and_passed(cpu_run):
    _, result = cpu_run
    items = result['items']
    pretrain = [i for i in items if i['section'] == 'pretrain']
    transfer = [i for i in items if i['section'] == 'transfer']
    assert [i['config'] for i in pretrain] == gpu_check.pretrain_configs()
    assert [i['config'] for i in transfer] == [
        p for _, p in gpu_check.transfer_configs()]
    names = ' '.join(i['config'] for i in pretrain)
    for part in ('lomar_vit-base', 'localmim_vit-base',
                 'localmim-pixel_vit-base', 'localmim_swin-base',
                 'localmim-pixel_swin-base', 'mae_vit-base'):
        assert part in names
    names = [i['config'] for i in transfer]
    assert sum('mmdet_configs/vitdet/' in n for n in names) == 4
    # MAE, LoMaR, LocalMIM (the toolkit's and the authors'), scratch
    assert sum('mmseg_configs/upernet/' in n for n in names) == 5
    assert sum('swin-b' in n for n in names) == 2
    assert not any('ms-flip' in n for n in names)
    assert failures(pretrain + transfer) == {}
    for i in pretrain + transfer:
        assert i['loss_finite'] and i['step_ms'] > 0
        assert i['linear_dtype'] == 'bfloat16'
        assert i['optim_wrapper'] == 'MixedPrecisionOptimWrapper'


@pytest.mark.slow
def test_sdpa_backends_and_bias_gradients(cpu_run):
    _, result = cpu_run
    sdpa = {i['name']: i for i in result['items'] if i['section'] == 'sdpa'}
    assert set(sdpa) == set(SDPA_KINDS)
    assert failures(sdpa.values()) == {}
    for kind, item in sdpa.items():
        assert item['q_dtype'] == 'bfloat16'
        assert item['taken'] in item['priority']
        assert item['backends']['MATH']['accepted']
        check = item['grad_check']
        assert check['passed']
        if kind == 'plain':
            assert item['bias_dtype'] is None and check['wrt'] == 'q'
        else:  # every biased kind's bias carries a gradient
            assert item['bias_dtype'] == item['q_dtype']
            assert item['bias_requires_grad'] and check['wrt'] == 'bias'
            assert check['grad_err_vs_math'] <= check['tolerance']


@pytest.mark.slow
def test_throughput_and_ratios(cpu_run):
    _, result = cpu_run
    tp = [i for i in result['items'] if i['section'] == 'throughput']
    assert [i['size'] for i in tp] == [128, 224]
    assert failures(tp) == {}
    for item in tp:
        assert {r['model'] for r in item['runs']} == {'lomar', 'localmim',
                                                      'mae'}
        for r in item['runs']:
            assert r['images_per_s'] > 0 and r['mfu'] is None
            assert r['counted_over_analytic'] == pytest.approx(1, abs=0.01)
    ratios = {(r['ratio'], r['size']): r
              for r in result['throughput_ratios']}
    assert set(ratios) == {(f'{m} / MAE', s) for m in ('LoMaR', 'LocalMIM')
                           for s in (128, 224)}
    for r in ratios.values():
        assert r['images_per_s_ratio'] > 0 and r['train_flops_ratio'] > 0


def test_budget_skips_items(tmp_path):
    """Past the budget, items are recorded as skipped, not run."""
    result = gpu_check.main(['--device', 'cpu', '--budget-s', '0',
                             '--only', 'pretrain', '--work-dir',
                             str(tmp_path)])
    items = result['items']
    assert items[0]['section'] == 'environment'
    skipped = [i for i in items if i['section'] == 'pretrain']
    assert len(skipped) == len(gpu_check.pretrain_configs())
    assert all(i['status'] == 'skipped' and 'budget' in i['note']
               for i in skipped)
    assert osp.exists(tmp_path / 'gpu_check.md')
