"""Pretraining checkpoint -> MIMVisionTransformer -> one training step of
mmdet's Mask R-CNN and mmseg's UperNet, through the real tools."""
import glob
import os.path as osp
import subprocess
import sys

import pytest
from conftest import NO_WORKERS, det_data_options, seg_data_options

PRETRAIN = {
    'LoMaR': ('mmpretrain_configs/lomar/lomar_vit-tiny-p8_1xb32-20e_'
              'synthetic.py',
              "pos_embed='none', irpe=dict(), arch=dict(embed_dims=192, "
              'depth=4, num_heads=3)', (0, 1, 2, 3)),
    'LocalMIM': ('mmpretrain_configs/localmim/localmim_vit-tiny-p8_1xb32-'
                 '20e_synthetic.py',
                 "pos_embed='sincos', arch=dict(embed_dims=192, depth=4, "
                 'num_heads=3)', (0, 1, 2, 3)),
}


def _run(args, cwd):
    res = subprocess.run([sys.executable, *args], cwd=cwd,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-3000:])
    return res


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory, synthetic_data):
    """One pretraining step per method, weights extracted to plain files."""
    root, _ = synthetic_data
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    out = {}
    for method, (cfg, _, _) in PRETRAIN.items():
        work = str(tmp_path_factory.mktemp(method))
        _run(['tools/train.py', cfg, '--work-dir', work, '--cfg-options',
              f'train_dataloader.dataset.data_root={root}/imagenet',
              'train_dataloader.dataset.indices=8',
              'train_dataloader.batch_size=8', 'train_cfg.max_epochs=1',
              *[f'train_dataloader.{o}' for o in NO_WORKERS]], repo)
        plain = osp.join(work, 'backbone.pth')
        _run(['tools/model_converters/extract_weights.py',
              osp.join(work, 'epoch_1.pth'), plain, '--prefix', 'backbone.'],
             repo)
        out[method] = plain
    return out


def _backbone(method, ckpt, extra):
    _, kw, indices = PRETRAIN[method]
    return (f"dict(_delete_=True, type='MIMVisionTransformer', {kw}, "
            f'patch_size=8, img_size=96, {extra}, '
            f'out_indices={indices}, '
            f"init_cfg=dict(type='Pretrained', checkpoint='{ckpt}', "
            "prefix='backbone.'))")


@pytest.mark.slow
@pytest.mark.parametrize('method', sorted(PRETRAIN))
def test_mask_rcnn_step_from_pretraining(method, pretrained, tmp_path,
                                         synthetic_data, repo_root):
    root, _ = synthetic_data
    cfg = tmp_path / 'det.py'
    cfg.write_text(
        f"_base_ = '{repo_root}/mmdet_configs/stack_check/mask-rcnn_r18_"
        "fpn_2e_synthetic.py'\n"
        f"model = dict(backbone={_backbone(method, pretrained[method], 'with_cls_token=False')},\n"  # noqa: E501
        "    neck=dict(_delete_=True, type='ViTFeaturePyramid', "
        'in_channels=192, out_channels=64, scales=(2., 1., 0.5, 0.25), '
        'num_outs=5))\n')
    work = str(tmp_path / 'work')
    _run(['tools/train.py', str(cfg), '--work-dir', work, '--cfg-options',
          *det_data_options(root), 'train_dataloader.dataset.indices=4',
          'train_cfg.max_epochs=1'], repo_root)
    log = open(glob.glob(osp.join(work, '*', '*.log'))[0]).read()
    assert 'loaded' in log and 'backbone tensors from' in log
    assert 'Epoch(train) [1][1/1]' in log and 'loss_mask' in log


@pytest.mark.slow
@pytest.mark.parametrize('method', sorted(PRETRAIN))
def test_upernet_step_from_pretraining(method, pretrained, tmp_path,
                                       synthetic_data, repo_root):
    root, _ = synthetic_data
    cfg = tmp_path / 'seg.py'
    cfg.write_text(
        f"_base_ = '{repo_root}/mmseg_configs/stack_check/upernet_r18_200i_"
        "synthetic.py'\n"
        f"model = dict(backbone={_backbone(method, pretrained[method], 'with_cls_token=True')},\n"  # noqa: E501
        "    neck=dict(type='Feature2Pyramid', embed_dim=192, "
        'rescales=[2, 1, 0.5, 0.25]),\n'
        '    decode_head=dict(in_channels=[192, 192, 192, 192]),\n'
        '    auxiliary_head=dict(in_channels=192))\n')
    work = str(tmp_path / 'work')
    _run(['tools/train.py', str(cfg), '--work-dir', work, '--cfg-options',
          *seg_data_options(root), 'train_cfg.max_iters=1',
          'train_cfg.val_interval=100', 'default_hooks.logger.interval=1'],
         repo_root)
    log = open(glob.glob(osp.join(work, '*', '*.log'))[0]).read()
    assert 'backbone tensors from' in log
    assert 'Iter(train) [1/1]' in log and 'decode.loss_ce' in log
