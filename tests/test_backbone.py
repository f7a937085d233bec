"""The downstream ViT backbone: shapes, windows, loading, checkpointing."""
import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmpretrain.registry import MODELS as PRE_MODELS
from mmseg.registry import MODELS as SEG_MODELS

import mim_pretrain  # noqa: F401
from mim_pretrain.models import MIMVisionTransformer, ViTFeaturePyramid

TINY = dict(embed_dims=32, depth=4, num_heads=2)


def _save_as_backbone(model, tmp_path):
    """Save ``model`` as the ``backbone.`` of a checkpoint; its path."""
    path = tmp_path / 'w.pth'
    torch.save({'state_dict': {f'backbone.{k}': v
                               for k, v in model.state_dict().items()}}, path)
    return path


def _vit(**kw):
    cfg = dict(arch=TINY, patch_size=8, img_size=32)
    cfg.update(kw)
    model = MIMVisionTransformer(**cfg)
    model.init_weights()
    return model


@pytest.mark.parametrize('size,grid', [((64, 64), (8, 8)),
                                       ((48, 80), (6, 10)),
                                       ((234, 345), (30, 44))])
@pytest.mark.parametrize('windowed', [False, True])
def test_output_shapes_for_any_input_size(size, grid, windowed):
    kw = dict(window_size=3, global_blocks=(1, 3), with_cls_token=False,
              rel_pos='decomposed') if windowed else {}
    vit = _vit(out_indices=(1, 3), **kw).eval()
    outs = vit(torch.randn(2, 3, *size))
    assert [o.shape for o in outs] == [(2, 32, *grid)] * 2
    pyramid = ViTFeaturePyramid(32, 16)(outs)
    assert [p.shape[-2:] for p in pyramid] == [
        (grid[0] * 4, grid[1] * 4), (grid[0] * 2, grid[1] * 2), grid,
        (grid[0] // 2, grid[1] // 2)
    ]


def test_registered_for_mmdet_mmseg_and_mmpretrain():
    for registry in (DET_MODELS, SEG_MODELS, PRE_MODELS):
        model = registry.build(dict(type='MIMVisionTransformer', arch=TINY,
                                    patch_size=8, img_size=32))
        assert isinstance(model, MIMVisionTransformer)


@pytest.mark.parametrize('rel_pos', ['decomposed', 'beit'])
def test_windows_covering_the_grid_equal_global_attention(rel_pos):
    torch.manual_seed(0)
    common = dict(with_cls_token=False, rel_pos=rel_pos, irpe=dict(),
                  out_indices=(0, 1, 2, 3))
    glob = _vit(**common).eval()
    win = _vit(window_size=4, **common).eval()
    for p in glob.parameters():
        p.data.normal_(std=0.1)
    win.load_state_dict(glob.state_dict())
    x = torch.randn(2, 3, 32, 32)  # a 4x4 grid: one window
    for a, b in zip(glob(x), win(x)):
        assert torch.allclose(a, b, atol=1e-5)
    # with padding (grid 5x5, window 4) the two differ, as in ViTDet
    x = torch.randn(1, 3, 40, 40)
    assert not torch.allclose(glob(x)[-1], win(x)[-1], atol=1e-3)


def _save_pretraining(tmp_path, algo):
    torch.manual_seed(0)
    if algo == 'LoMaR':
        model = PRE_MODELS.build(dict(
            type='LoMaR',
            backbone=dict(type='LoMaRViT', arch=TINY, patch_size=8,
                          window_size=3, num_windows=2),
            head=dict(type='LoMaRHead', embed_dims=32, patch_size=8)))
    else:
        model = PRE_MODELS.build(dict(
            type='LocalMIM',
            backbone=dict(type='LocalMIMViT',
                          arch=dict(embed_dims=32, depth=8, num_heads=2),
                          patch_size=8),
            neck=dict(type='LocalMIMDecoders', in_dims=32, dims=32,
                      num_heads=4),
            head=dict(type='LocalMIMHead'),
            target_generator=dict(type='HOGTarget')))
    model.init_weights()
    for p in model.parameters():  # make every tensor distinctive
        p.data.normal_()
    path = tmp_path / f'{algo}.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return path, model


@pytest.mark.parametrize('algo', ['LoMaR', 'LocalMIM'])
def test_pretraining_checkpoint_loads_every_encoder_weight(algo, tmp_path):
    path, pre = _save_pretraining(tmp_path, algo)
    kw = dict(pos_embed='none', irpe=dict()) if algo == 'LoMaR' else dict(
        pos_embed='sincos', arch=dict(embed_dims=32, depth=8, num_heads=2))
    vit = _vit(init_cfg=dict(type='Pretrained', checkpoint=str(path),
                             prefix='backbone.'), **kw)
    enc = pre.backbone.state_dict()
    own = vit.state_dict()
    missing = [k for k in own if k not in enc]
    assert missing == []
    for key, value in own.items():
        assert torch.equal(value, enc[key]), key
    # the same features as the pretraining encoder on the whole image
    x = torch.randn(1, 3, 32, 32)
    feats = pre.backbone(x, mask=None)[0][:, 1:]
    vit.final_norm = True
    ours = vit.eval()(x)[-1].flatten(2).transpose(1, 2)
    assert torch.allclose(ours, feats, atol=1e-5)


def test_loading_almost_nothing_is_an_error(tmp_path):
    path, _ = _save_pretraining(tmp_path, 'LoMaR')
    with pytest.raises(RuntimeError, match='only 0% of the backbone'):
        _vit(pos_embed='none', irpe=dict(),
             init_cfg=dict(type='Pretrained', checkpoint=str(path),
                           prefix='encoder.'))


def test_learned_position_is_resized_on_load(tmp_path):
    torch.manual_seed(0)
    small = _vit(pos_embed='learned', img_size=32)  # 4x4 grid
    small.pos_embed.data.normal_()
    path = _save_as_backbone(small, tmp_path)
    big = _vit(pos_embed='learned', img_size=64,
               init_cfg=dict(type='Pretrained', checkpoint=str(path),
                             prefix='backbone.'))
    assert big.pos_embed.shape == (1, 1 + 64, 32)
    assert torch.equal(big.pos_embed[:, 0], small.pos_embed[:, 0])
    assert torch.equal(big.blocks[2].mlp.fc1.weight,
                       small.blocks[2].mlp.fc1.weight)


def test_activation_checkpointing_gives_identical_outputs_and_grads():
    torch.manual_seed(0)
    plain = _vit(drop_path_rate=0., irpe=dict(), out_indices=(1, 3)).train()
    ckpt = _vit(drop_path_rate=0., irpe=dict(), out_indices=(1, 3),
                with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 48, requires_grad=True)
    outs = []
    for model in (plain, ckpt):
        model.zero_grad()
        y = model(x)
        sum(o.square().sum() for o in y).backward()
        outs.append((y, {n: p.grad for n, p in model.named_parameters()}))
    for a, b in zip(outs[0][0], outs[1][0]):
        assert torch.equal(a, b)
    # the final norm is unused without final_norm: no gradient in either
    assert {n for n, g in outs[0][1].items() if g is None} == {
        'norm.weight', 'norm.bias'} == {
            n for n, g in outs[1][1].items() if g is None}
    for name, grad in outs[0][1].items():
        if grad is not None:
            assert torch.allclose(grad, outs[1][1][name], atol=1e-6), name


def test_bad_settings_have_clear_errors():
    with pytest.raises(ValueError, match='needs with_cls_token=False'):
        _vit(window_size=4)
    with pytest.raises(ValueError, match="rel_pos must be None, 'decomp"):
        _vit(rel_pos='beit-ish')
    with pytest.raises(ValueError, match='repeat a block'):
        _vit(out_indices=(3, -1))


def test_beit_bias_equals_the_direct_formula():
    from mim_pretrain.models.vit import Attention
    torch.manual_seed(0)
    attn = Attention(16, num_heads=2, rel_bias_size=(3, 4))
    table = attn.relative_position_bias_table
    table.data.normal_()
    assert table.shape == (5 * 7 + 3, 2)
    bias = attn.beit_bias((3, 4), prefix=1)
    coords = [(r, c) for r in range(3) for c in range(4)]
    t = table.shape[0]
    for i, (ri, ci) in enumerate(coords):
        for j, (rj, cj) in enumerate(coords):
            want = table[(ri - rj + 2) * 7 + (ci - cj + 3)]
            assert torch.equal(bias[:, i + 1, j + 1], want)
        assert torch.equal(bias[:, 0, i + 1], table[t - 3])
        assert torch.equal(bias[:, i + 1, 0], table[t - 2])
    assert torch.equal(bias[:, 0, 0], table[t - 1])
    # another grid: resized, same cls entries
    other = attn.beit_bias((5, 5), prefix=1)
    assert other.shape == (2, 26, 26)
    assert torch.equal(other[:, 0, 0], table[t - 1])


def test_beit_table_is_resized_on_load_and_trains(tmp_path):
    torch.manual_seed(0)
    small = _vit(rel_pos='beit', img_size=32)  # 4x4 grid: 7*7+3 rows
    for blk in small.blocks:
        blk.attn.relative_position_bias_table.data.normal_()
    path = _save_as_backbone(small, tmp_path)
    big = _vit(rel_pos='beit', img_size=48,
               init_cfg=dict(type='Pretrained', checkpoint=str(path),
                             prefix='backbone.'))
    table = big.blocks[0].attn.relative_position_bias_table
    assert table.shape == (11 * 11 + 3, 2)
    src = small.blocks[0].attn.relative_position_bias_table
    assert torch.equal(table[-3:], src[-3:])
    big.train()
    sum(o.sum() for o in big(torch.randn(1, 3, 48, 48))).backward()
    assert table.grad is not None and table.grad.abs().sum() > 0
