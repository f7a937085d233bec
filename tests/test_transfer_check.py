"""The transfer path carries what pretraining learned.

A pretrained encoder (the tiny MAE of the 20-epoch config, trained on the
built-in shape pool by ``fixtures/make_transfer_weights.py``, kept in the
set-up's cache and built there on the first run) goes through the
transfer path (weights file -> the UperNet config's ``init_cfg`` -> this
toolkit's backbone loader) and is fine-tuned on the built-in texture data.
It must reach lower training and validation losses than the same weights
with the order of their blocks reversed and than a random initialisation;
a loader that silently dropped the weights, or put them into the wrong
blocks, fails here.
"""
import os.path as osp
import sys

import pytest
import torch

from mim_pretrain.apis import config_of
from mim_pretrain.apis import transfer_check as tc
from mim_pretrain.datasets import (ADE_CLASS_NAMES, TEXTURES,
                                   generate_texture_ade20k)

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), 'fixtures'))
import make_transfer_weights  # noqa: E402


def test_reverse_blocks_moves_every_block_and_nothing_else():
    state = {'backbone.patch_embed.projection.weight': torch.zeros(1),
             'backbone.ln1.weight': torch.ones(1)}
    for i in range(3):
        state[f'backbone.layers.{i}.attn.qkv.weight'] = torch.full((1, ), i)
    out = tc.reverse_blocks(state)
    assert set(out) == set(state)
    for i in range(3):
        assert out[f'backbone.layers.{i}.attn.qkv.weight'].item() == 2 - i
    assert out['backbone.ln1.weight'] is state['backbone.ln1.weight']
    # LoMaR's and timm's name, no prefix
    lomar = tc.reverse_blocks({'blocks.0.w': torch.zeros(1),
                               'blocks.1.w': torch.ones(1)})
    assert lomar['blocks.0.w'].item() == 1
    with pytest.raises(ValueError, match='no transformer blocks'):
        tc.reverse_blocks({'patch_embed.weight': torch.zeros(1),
                           'layers.0.w': torch.zeros(1)})


def test_texture_data_is_read_by_mmseg(tmp_path):
    from mmseg.datasets import ADE20KDataset
    summary = generate_texture_ade20k(str(tmp_path), num_train=6, num_val=2)
    assert summary['textures'] == list(TEXTURES)
    root = tmp_path / 'ADEChallengeData2016'
    ds = ADE20KDataset(
        data_root=str(root),
        data_prefix=dict(img_path='images/training',
                         seg_map_path='annotations/training'),
        pipeline=[dict(type='mmseg.LoadAnnotations')],
        reduce_zero_label=True,
        # the tiny configs' class list: labels become 0..5
        metainfo=dict(classes=ADE_CLASS_NAMES))
    assert len(ds) == 6
    seen = set()
    for i in range(len(ds)):
        seg = ds[i]['gt_seg_map']
        seen |= set(seg.ravel().tolist())
    # every pixel has a texture class (no background), from the first five
    assert seen <= set(range(len(TEXTURES))) and len(seen) >= 3


def test_check_transfer_main_reports_and_exits(monkeypatch, tmp_path,
                                               capsys):
    def fake(config, weights, root, iters, seed, work_dir):
        return {'pretrained': dict(train=1.0, val=2.0, seconds=1),
                'blocks reversed': dict(train=1.5, val=1.9, seconds=1),
                'random init': dict(train=1.6, val=2.5, seconds=1)}

    monkeypatch.setattr(tc, 'check_transfer', fake)
    argv = ['cfg.py', 'w.pth', '--data-root', str(tmp_path), '--work-dir',
            str(tmp_path)]
    # lower training loss, but not the lowest validation loss
    assert tc.check_transfer_main(argv) == 1
    assert 'does NOT fine-tune to the lowest losses' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='--iters must be at least 2'):
        tc.check_transfer_main(argv + ['--iters', '1'])


def test_fine_tune_losses_refuses_other_configs():
    with pytest.raises(ValueError, match='segmentation'):
        tc.fine_tune_losses(config_of('det', 'mae', tiny=True), None, '.')


def test_pretrained_weights_fine_tune_to_lower_losses(tmp_path):
    generate_texture_ade20k(str(tmp_path / 'data'))
    weights = make_transfer_weights.ensure()
    results = tc.check_transfer(config_of('seg', 'mae', tiny=True), weights,
                                str(tmp_path / 'data' /
                                    'ADEChallengeData2016'),
                                iters=40, seed=0, work_dir=str(tmp_path))
    table = {k: {m: round(v[m], 4) for m in ('train', 'val')}
             for k, v in results.items()}
    mine = results['pretrained']
    for other in ('blocks reversed', 'random init'):
        # margins well above run-to-run float noise (1e-4 here)
        assert mine['train'] < results[other]['train'] - 0.02, table
        assert mine['val'] < results[other]['val'] - 0.05, table
    assert tc.carries(results)
