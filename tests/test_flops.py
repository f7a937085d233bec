"""tools/analysis/get_flops.py: the zoo's count (mmengine's counter, one
multiply-add = one FLOP, forward), with attention counted, for every kind of
config of the repository."""
import glob
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mim_pretrain.benchmarks import flops

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    osp.relpath(p, REPO)
    for d in ('mmpretrain_configs', 'mmdet_configs', 'mmseg_configs')
    for p in glob.glob(osp.join(REPO, d, '**', '*.py'), recursive=True)
    if '_base_' not in p.split(osp.sep))
# mmpretrain's model zoo: vit-base-p16 (and MAE's ViT-B) at 224 px
MMPRETRAIN_VIT_B_FLOPS = 17581972224

TINY = {
    'lomar': 'mmpretrain_configs/lomar/'
    'lomar_vit-tiny-p8_1xb32-20e_synthetic.py',
    'localmim': 'mmpretrain_configs/localmim/'
    'localmim_vit-tiny-p8_1xb32-20e_synthetic.py',
    'mae': 'mmpretrain_configs/mae/mae_vit-tiny-p8_1xb32-20e_synthetic.py',
    'localmim-swin': 'mmpretrain_configs/localmim/'
    'localmim_swin-tiny-w3_1xb32-20e_synthetic.py',
    'det': 'mmdet_configs/vitdet/'
    'mask-rcnn_vit-tiny-p8-lomar_simfp_1xb4-lsj-300i_synthetic.py',
    'seg': 'mmseg_configs/upernet/'
    'upernet_vit-tiny-p8-lomar_1xb4-200i_ade20k-128x128_synthetic.py',
}
KINDS = {'lomar': 'pretrain', 'localmim': 'pretrain', 'mae': 'pretrain',
         'localmim-swin': 'pretrain', 'det': 'detector', 'seg': 'segmentor'}


class SDPAOnly(nn.Module):

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_attention_is_counted_by_formula():
    """mmengine alone counts SDPA as 0; with the handle, q k^T + attn v."""
    from mmengine.analysis import FlopAnalyzer
    q, k, v = (torch.randn(2, 3, 10, 8), torch.randn(2, 3, 12, 8),
               torch.randn(2, 3, 12, 5))
    plain = FlopAnalyzer(SDPAOnly(), (q, k, v))
    plain.unsupported_ops_warnings(False)
    assert plain.total() == 0
    assert flops.count(SDPAOnly(), (q, k, v))['flops'] == \
        2 * 3 * 10 * 12 * (8 + 5)


def vit_b_formula(size: int = 224, patch: int = 16, dims: int = 768,
                  depth: int = 12, hidden: int = 3072) -> int:
    """Multiply-adds of a ViT encoder's matmuls, and mmengine's 5 FLOPs per
    element of every LayerNorm (two a block, one final)."""
    n = (size // patch)**2
    tokens = n + 1
    block = tokens * (4 * dims * dims + 2 * dims * hidden) + \
        2 * tokens * tokens * dims  # qkv, proj, MLP; q k^T and attn v
    norms = (2 * depth + 1) * tokens * dims * 5
    return n * 3 * patch * patch * dims + depth * block + norms


def test_vit_b_encoder_matches_formula_timm_and_mmpretrain():
    """The shared ViT-B/16 at 224: the formula (attention included, 4% of
    the total, so a missed attention fails), timm's ViT-B with explicit
    attention matmuls (counted by mmengine's own handles) and mmpretrain's
    zoo figure."""
    import timm

    from mim_pretrain.models.vit import VisionTransformer
    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224)
    ours = VisionTransformer(arch='b', patch_size=16, pos_embed='learned')
    got = flops.count(
        flops._Traced(ours, lambda x: ours.encode_all(*ours.embed(x))),
        (x, ))
    assert got['flops'] == pytest.approx(vit_b_formula(), rel=1e-4)
    ref = timm.create_model('vit_base_patch16_224', pretrained=False,
                            num_classes=0)
    for blk in ref.blocks:
        blk.attn.fused_attn = False  # q @ k^T and attn @ v as matmuls
    timm_count = flops.count(flops._Traced(ref, ref.forward_features),
                             (x, ))
    assert 'aten::matmul' not in timm_count['uncounted']
    assert got['flops'] == timm_count['flops']
    assert got['params'] == timm_count['params'] == 85798656
    assert got['flops'] == pytest.approx(MMPRETRAIN_VIT_B_FLOPS, rel=0.01)
    assert 'aten::scaled_dot_product_attention' not in got['uncounted']


def test_attention_share_grows_with_tokens():
    """Doubling the side of the image multiplies the linear layers by 4
    and the attention by about 16: the difference is the formula's."""
    from mim_pretrain.models.vit import VisionTransformer
    arch = dict(embed_dims=64, depth=2, num_heads=2)
    vit = VisionTransformer(arch=arch, patch_size=8)
    traced = flops._Traced(vit, lambda x: vit.encode_all(*vit.embed(x)))
    small = flops.count(traced, (torch.randn(1, 3, 32, 32), ))['flops']
    large = flops.count(traced, (torch.randn(1, 3, 64, 64), ))['flops']
    f = [vit_b_formula(s, 8, 64, 2, 256) for s in (32, 64)]
    assert (small, large) == (f[0], f[1])


def test_unhandled_matmul_op_is_an_error(monkeypatch):
    monkeypatch.setattr(flops, 'EXTRA_HANDLES', {})
    q = torch.randn(1, 1, 4, 8)
    with pytest.raises(RuntimeError, match='scaled_dot_product_attention'):
        flops.count(SDPAOnly(), (q, q, q))


@pytest.mark.parametrize('name', list(TINY))
def test_tiny_config_of_each_kind(name):
    result = flops.analyze(osp.join(REPO, TINY[name]))
    assert result['kind'] == KINDS[name]
    assert result['convention'] == flops.CONVENTION
    rows = result['rows']
    assert len(rows) == (2 if KINDS[name] == 'pretrain' else 1)
    for row in rows:
        assert row['flops'] > 0 and row['params'] > 0
        assert not set(row['uncounted']) & flops.MATMUL_OPS
    if name == 'lomar':
        # 4 windows of 7x7 patches plus a cls token each, on a 12x12 grid:
        # the masked forward's encoder sees 200 tokens, the full image 145
        encoder, pretrain = rows
        assert pretrain['flops'] > encoder['flops']
        assert 'windows' in pretrain['note']
    if name == 'mae':
        encoder, pretrain = rows
        assert pretrain['params'] > encoder['params']  # plus the decoder


def test_shape_option_and_defaults():
    seg = flops.analyze(osp.join(REPO, TINY['seg']), shape=(64, 96))
    assert seg['rows'][0]['input_shape'] == (3, 64, 96)
    assert seg['shape_source'] == '--shape'
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(REPO, 'mmdet_configs/vitdet/'
                 'mask-rcnn_vit-b-lomar_simfp_16xb4-lsj-100e_coco.py'))
    assert flops.default_shape(cfg, 'detector')[0] == (1024, 1024)
    cfg = Config.fromfile(
        osp.join(REPO, 'mmseg_configs/upernet/'
                 'upernet_vit-b-lomar_8xb2-amp-160k_ade20k-512x512.py'))
    assert flops.default_shape(cfg, 'segmentor')[0] == (512, 512)
    with pytest.raises(FileNotFoundError, match='nowhere.py'):
        flops.analyze('nowhere.py')


def test_cli_prints_the_convention():
    tool = osp.join(REPO, 'tools', 'analysis', 'get_flops.py')
    proc = subprocess.run(
        [sys.executable, tool, TINY['mae'], '--shape', '96'], cwd=REPO,
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Convention: ' + flops.CONVENTION in proc.stdout
    assert 'encoder (full image, no masking)' in proc.stdout
    assert 'pretraining forward' in proc.stdout
    assert 'Flops' in proc.stdout and 'Params' in proc.stdout


# one full-size config of each kind and backbone (tests/test_configs.py
# checks that every config has a counting rule and an input shape; every
# full-size config was counted by hand at its default shape)
FULL_SIZE = [
    'mmpretrain_configs/lomar/'
    'lomar_vit-base-p16_4xb256-accum4-amp-coslr-400e_in1k-448px.py',
    'mmpretrain_configs/localmim/'
    'localmim_swin-base-w7_8xb256-amp-coslr-400e_in1k.py',
    'mmpretrain_configs/lomar/benchmarks/'
    'lomar_vit-base-p16_ft-8xb128-amp-coslr-100e_in1k.py',
    'mmpretrain_configs/localmim/benchmarks/'
    'localmim_swin-base-w7_ft-8xb128-amp-coslr-100e_in1k.py',
    'mmdet_configs/vitdet/mask-rcnn_vit-b-lomar_simfp_16xb4-lsj-100e_coco.py',
    'mmdet_configs/localmim_swin/'
    'mask-rcnn_swin-b-p4-w7_localmim-pt_fpn_amp-ms-crop-3x_coco.py',
    'mmseg_configs/upernet/'
    'upernet_vit-b-lomar_8xb2-amp-160k_ade20k-512x512.py',
    'mmseg_configs/localmim_swin/'
    'upernet_swin-b-p4-w7_localmim-pt_8xb2-160k_ade20k-512x512.py',
]


def test_full_size_list_names_existing_configs():
    assert all(p in CONFIGS for p in FULL_SIZE)


@pytest.mark.slow
@pytest.mark.parametrize('path', FULL_SIZE)
def test_full_size_configs_are_counted(path):
    """The count runs for a full-size config of each kind (detectors at
    512 px to keep the test short; their window and pad logic is the
    same)."""
    shape = None
    if path.startswith('mmdet_configs') and 'synthetic' not in path:
        shape = (512, 512)
    result = flops.analyze(osp.join(REPO, path), shape=shape)
    assert all(r['flops'] > 0 for r in result['rows'])
