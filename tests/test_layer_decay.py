"""Layer-wise lr decay: the per-parameter lr and weight decay by formula."""
import pytest
import torch.nn as nn
from mmengine.optim import build_optim_wrapper

import mim_pretrain  # noqa: F401
from mim_pretrain.models import MIMVisionTransformer

TINY = dict(embed_dims=32, depth=3, num_heads=2)


class _Detector(nn.Module):
    """A backbone inside a bigger model, as in mmdet/mmseg."""

    def __init__(self, **kw):
        super().__init__()
        self.backbone = MIMVisionTransformer(arch=TINY, patch_size=8,
                                             img_size=32, **kw)
        self.head = nn.Linear(32, 4)


def _table(model, rate=0.7, lr=1e-3, wd=0.05):
    wrapper = build_optim_wrapper(
        model,
        dict(type='OptimWrapper',
             constructor='LayerDecayOptimWrapperConstructor',
             optimizer=dict(type='AdamW', lr=lr, weight_decay=wd),
             paramwise_cfg=dict(layer_decay_rate=rate)))
    table = {}
    for group in wrapper.optimizer.param_groups:
        for name in group['param_names']:
            table[name] = (group['lr'], group['weight_decay'])
    return table


def test_lr_and_weight_decay_follow_the_formula():
    model = _Detector(irpe=dict(), rel_pos='decomposed',
                      layer_scale_init=0.1)
    rate, lr, wd, depth = 0.7, 1e-3, 0.05, 3
    table = _table(model, rate, lr, wd)
    # every trainable parameter (the backbone freezes the ones its outputs
    # do not use, here the final norm)
    trainable = [(n, p) for n, p in model.named_parameters()
                 if p.requires_grad]
    assert set(table) == {n for n, _ in trainable}

    def layer(name):
        if name.startswith(('backbone.patch_embed', 'backbone.cls_token',
                            'backbone.pos_embed')):
            return 0
        if name.startswith('backbone.blocks.'):
            return int(name.split('.')[2]) + 1
        return depth + 1

    no_decay_names = ('cls_token', 'pos_embed', 'lookup_table_weight',
                      'rel_pos_h', 'rel_pos_w')
    for name, p in trainable:
        want_lr = lr * rate**(depth + 1 - layer(name))
        want_wd = 0. if (p.ndim == 1 or name.endswith(no_decay_names)) \
            else wd
        assert table[name][0] == pytest.approx(want_lr), name
        assert table[name][1] == want_wd, name
    # spot checks of the formula's ends
    assert table['head.weight'] == (pytest.approx(lr), wd)
    assert table['backbone.patch_embed.proj.weight'][0] == pytest.approx(
        lr * rate**4)
    assert table['backbone.blocks.0.attn.rpe_k.lookup_table_weight'][1] == 0
    assert table['backbone.blocks.2.ls1.gamma'][1] == 0


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match='needs paramwise_cfg'):
        build_optim_wrapper(
            _Detector(),
            dict(constructor='LayerDecayOptimWrapperConstructor',
                 optimizer=dict(type='AdamW', lr=1e-3)))
    with pytest.raises(ValueError, match=r"keys \['bias_decay_mult'\]"):
        _table_cfg = dict(
            constructor='LayerDecayOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=1e-3),
            paramwise_cfg=dict(layer_decay_rate=0.7, bias_decay_mult=0.))
        build_optim_wrapper(_Detector(), _table_cfg)
    with pytest.raises(ValueError, match='exactly one'):
        build_optim_wrapper(
            nn.Linear(2, 2),
            dict(constructor='LayerDecayOptimWrapperConstructor',
                 optimizer=dict(type='AdamW', lr=1e-3),
                 paramwise_cfg=dict(layer_decay_rate=0.7)))


def test_found_from_mmdet_and_mmseg_scopes():
    from mmengine.registry import DefaultScope
    for scope in ('mmdet', 'mmseg', 'mmpretrain'):
        with DefaultScope.overwrite_default_scope(scope):
            assert _table(_Detector())
