"""The shared layers and helpers of ``mim_pretrain.models.utils``: timm's
layers where their names are ours, one copy of each helper, and each helper
against a direct reference."""
import glob
import os.path as osp
import re

import pytest
import timm.layers
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.utils import LayerNorm2d as MMPretrainLayerNorm2d

import mim_pretrain  # noqa: F401
from mim_pretrain.converters import checkpoint_state_dict
from mim_pretrain.models import (LocalMIMDecoders, LocalMIMSwinTransformer,
                                 PixelTarget, VisionTransformer,
                                 ViTFeaturePyramid)
from mim_pretrain.models.utils import (LayerNorm2d, cached, normalize_patches,
                                       patchify, pretrained_cfg,
                                       resize_beit_table, resize_pos_table)

TINY = dict(embed_dims=32, depth=3, num_heads=2)
MODELS_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                      'mim_pretrain', 'models')


def test_vit_and_swin_blocks_use_timms_layers():
    vit = VisionTransformer(arch=TINY, drop_path_rate=0.2,
                            layer_scale_init=0.1)
    last = vit.blocks[-1]
    assert type(last.mlp) is timm.layers.Mlp
    assert type(last.ls1) is type(last.ls2) is timm.layers.LayerScale
    assert type(last.drop_path) is timm.layers.DropPath
    # the parts that are off are nn.Identity
    assert type(vit.blocks[0].drop_path) is nn.Identity
    plain = VisionTransformer(arch=TINY, final_norm=False)
    assert type(plain.blocks[0].ls1) is nn.Identity
    assert type(plain.norm) is nn.Identity
    swin = LocalMIMSwinTransformer(
        arch=dict(embed_dims=8, depths=(2, 2), num_heads=(1, 2)),
        window_size=2, drop_path_rate=0.1)
    assert type(swin.stages[1].blocks[1].drop_path) is timm.layers.DropPath
    decoders = LocalMIMDecoders(in_dims=32, dims=16, num_heads=2)
    assert type(decoders.decoders[0].block.mlp) is timm.layers.Mlp


def test_layer_norm_2d_is_ours_and_computes_mmpretrains_values():
    """Kept (see its docstring): the same parameters and values as
    mmpretrain's, without its contiguous copy."""
    pyramid = ViTFeaturePyramid(16, 8)
    norms = [m for m in pyramid.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(type(m) is LayerNorm2d for m in norms)
    ours, theirs = LayerNorm2d(6, eps=1e-6), MMPretrainLayerNorm2d(6, eps=1e-6)
    for p in ours.parameters():
        p.data.normal_()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 6, 5, 7)
    assert torch.allclose(ours(x), theirs(x), atol=1e-6)


def _sources():
    for path in glob.glob(osp.join(MODELS_DIR, '**', '*.py'), recursive=True):
        with open(path) as f:
            yield osp.relpath(path, MODELS_DIR), f.read()


@pytest.mark.parametrize('pattern,home', [
    (r'\binterpolate\(', 'utils/pos_embed.py'),  # the one table resizer
    (r"== 'Pretrained'", 'utils/init.py'),
    (r'\.var\(', 'utils/patches.py'),  # per-patch normalisation
    (r'def (patchify|gather_patches|sincos_pos_embed_2d)\b',
     'utils/patches.py|utils/pos_embed.py'),
])
def test_each_helper_has_one_home(pattern, home):
    found = sorted(name for name, text in _sources()
                   if re.search(pattern, text))
    assert found and all(re.fullmatch(home, f) for f in found), found


def test_resize_pos_table_equals_interpolate():
    torch.manual_seed(0)
    table = torch.randn(3 * 5, 4)
    ref = F.interpolate(table.t().reshape(1, 4, 3, 5), size=(6, 2),
                        mode='bicubic', align_corners=False)
    assert torch.equal(resize_pos_table(table, (3, 5), (6, 2)),
                       ref[0].flatten(1).t())
    axis = torch.randn(7, 4)
    ref = F.interpolate(axis.t()[None], size=11, mode='linear',
                        align_corners=False)
    assert torch.equal(resize_pos_table(axis, (7, ), (11, )), ref[0].t())
    beit = torch.randn(5 * 7 + 3, 2)
    out = resize_beit_table(beit, (5, 7), (9, 9))
    assert out.shape == (9 * 9 + 3, 2) and torch.equal(out[-3:], beit[-3:])
    with pytest.raises(ValueError, match='one or two sizes'):
        resize_pos_table(table, (3, 5), (6, ))


def test_pixel_target_is_patchify_then_normalize_patches():
    torch.manual_seed(0)
    img = torch.randn(2, 3, 16, 8)
    want = normalize_patches(patchify(img, 4))  # [B, 4*2, 48]
    got = PixelTarget()(img, cell=4).flatten(2).transpose(1, 2)
    assert torch.equal(got, want)


def test_pretrained_cfg_and_checkpoint_state_dict():
    pre = dict(type='Pretrained', checkpoint='x.pth')
    assert pretrained_cfg(pre) is pre
    assert pretrained_cfg([dict(type='Normal'), pre]) is pre
    assert pretrained_cfg(None) is None
    assert pretrained_cfg(dict(type='Normal')) is None
    state = {'w': torch.zeros(1)}
    assert checkpoint_state_dict({'state_dict': state, 'meta': {}}) is state
    assert checkpoint_state_dict({'model': state}) is state
    assert checkpoint_state_dict(state) is state


def test_cached_makes_once_per_key():
    cache, calls = {}, []

    def make(v):
        calls.append(v)
        return v * 2

    assert cached(cache, 'a', lambda: make(1)) == 2
    assert cached(cache, 'a', lambda: make(5)) == 2
    assert cached(cache, 'b', lambda: make(3)) == 6
    assert calls == [1, 3]
