"""Converted published checkpoints give the original models' features."""
import math
from functools import partial

import pytest
import torch
import torch.nn as nn

import mim_pretrain  # noqa: F401
from mim_pretrain.apis import convert_checkpoint_main
from mim_pretrain.models import MIMVisionTransformer

DIMS, DEPTH, HEADS, PATCH, IMG = 32, 8, 2, 8, 32


def _timm_vit():
    from timm.models.vision_transformer import VisionTransformer
    torch.manual_seed(0)
    vit = VisionTransformer(
        img_size=IMG, patch_size=PATCH, embed_dim=DIMS, depth=DEPTH,
        num_heads=HEADS, qkv_bias=True, num_classes=0, global_pool='token',
        norm_layer=partial(nn.LayerNorm, eps=1e-6)).eval()
    for p in vit.parameters():
        p.data.normal_(std=0.2)
    return vit


def _convert(tmp_path, state, fmt):
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    torch.save({'model': state, 'args': {'note': 'authors pickle args'}},
               src)
    converted, dropped = convert_checkpoint_main(
        [str(src), str(dst), '--format', fmt])
    return dst, converted, dropped


def _ours(dst, **kw):
    cfg = dict(arch=dict(embed_dims=DIMS, depth=DEPTH, num_heads=HEADS),
               patch_size=PATCH, img_size=IMG, final_norm=True,
               init_cfg=dict(type='Pretrained', checkpoint=str(dst),
                             prefix='backbone.'))
    cfg.update(kw)
    model = MIMVisionTransformer(**cfg)
    model.init_weights()
    return model.eval()


def _tokens(model, x):
    return model(x)[-1].flatten(2).transpose(1, 2)


def test_mae_authors_checkpoint(tmp_path):
    timm_vit = _timm_vit()
    state = dict(timm_vit.state_dict())
    state['mask_token'] = torch.zeros(1, 1, DIMS)
    state['decoder_embed.weight'] = torch.zeros(16, DIMS)
    dst, converted, dropped = _convert(tmp_path, state, 'mae')
    assert sorted(dropped) == ['decoder_embed.weight', 'mask_token']
    ours = _ours(dst)
    x = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        want = timm_vit.forward_features(x)[:, 1:]
        assert torch.allclose(_tokens(ours, x), want, atol=1e-5)


def test_localmim_authors_checkpoint(tmp_path):
    timm_vit = _timm_vit()
    state = {k: v for k, v in timm_vit.state_dict().items()
             if not k.startswith('norm.')}
    taps = [1, 3, DEPTH - 3, DEPTH - 1]
    for k in range(4):  # per-tap norms; norm.3 is the final norm
        src = timm_vit.norm if k == 3 else nn.LayerNorm(DIMS)
        if k < 3:
            src.weight.data.normal_()
        state[f'norm.{k}.weight'] = src.weight.data.clone()
        state[f'norm.{k}.bias'] = src.bias.data.clone()
    state['decoder.0.embed.weight'] = torch.zeros(8, DIMS)
    state['hog_enc.0.weight_x'] = torch.zeros(3, 1, 3, 3)
    dst, converted, dropped = _convert(tmp_path, state, 'localmim')
    assert 'backbone.norm.weight' in converted
    for k in range(3):
        assert torch.equal(converted[f'backbone.tap_norms.{taps[k]}.weight'],
                           state[f'norm.{k}.weight'])
    assert sorted(dropped) == ['decoder.0.embed.weight', 'hog_enc.0.weight_x']
    x = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        want = timm_vit.forward_features(x)[:, 1:]
        assert torch.allclose(_tokens(_ours(dst), x), want, atol=1e-5)


def _authors_lomar_features(state, x):
    """Straightforward ViT with the authors' attention-with-iRPE formula."""

    def axis_bucket(d):
        if abs(d) <= 1.9:
            return int(d)
        v = 1.9 + math.log(abs(d) / 1.9) / math.log(15.2 / 1.9) * 1.9
        return int(math.copysign(min(float(round(v)), 3.8), d))

    g = IMG // PATCH
    coords = [(r, c) for r in range(g) for c in range(g)]
    n = 1 + len(coords)
    bucket = torch.full((n, n), 49, dtype=torch.long)
    for i, (ri, ci) in enumerate(coords):
        for j, (rj, cj) in enumerate(coords):
            bucket[i + 1, j + 1] = (axis_bucket(ri - rj) + 3) * 7 + \
                axis_bucket(ci - cj) + 3

    def ln(t, p):
        return nn.functional.layer_norm(t, (DIMS, ), state[p + '.weight'],
                                        state[p + '.bias'], 1e-6)

    def lin(t, p):
        return t @ state[p + '.weight'].t() + state[p + '.bias']

    b = x.shape[0]
    t = nn.functional.conv2d(x, state['patch_embed.proj.weight'],
                             state['patch_embed.proj.bias'], stride=PATCH)
    t = torch.cat([state['cls_token'].expand(b, -1, -1),
                   t.flatten(2).transpose(1, 2)], 1)  # no absolute position
    hd = DIMS // HEADS
    for i in range(DEPTH):
        p = f'blocks.{i}'
        qkv = lin(ln(t, p + '.norm1'), p + '.attn.qkv')
        q, k, v = qkv.reshape(b, n, 3, HEADS, hd).permute(2, 0, 3, 1, 4)
        w = state[p + '.attn.rpe_k.lookup_table_weight'][0]  # hd x 50
        logits = (q @ k.transpose(-2, -1)) * hd**-0.5
        rows = torch.arange(n)[:, None]
        # pair (i, j) adds q_i . w[:, bucket(i, j)], with the unscaled q_i
        logits = logits + (q @ w)[:, :, rows, bucket]
        a = logits.softmax(-1) @ v
        t = t + lin(a.transpose(1, 2).reshape(b, n, DIMS), p + '.attn.proj')
        h = nn.functional.gelu(lin(ln(t, p + '.norm2'), p + '.mlp.fc1'))
        t = t + lin(h, p + '.mlp.fc2')
    return ln(t, 'norm')[:, 1:]


def test_lomar_authors_checkpoint(tmp_path):
    state = {k: v for k, v in _timm_vit().state_dict().items()}
    hd = DIMS // HEADS
    for i in range(DEPTH):
        state[f'blocks.{i}.attn.rpe_k.lookup_table_weight'] = torch.randn(
            1, hd, 50)
    state['mask_token'] = torch.randn(1, 1, DIMS)
    state['encoder_pred.weight'] = torch.randn(PATCH * PATCH * 3, DIMS)
    state['encoder_pred.bias'] = torch.randn(PATCH * PATCH * 3)
    dst, converted, dropped = _convert(tmp_path, state, 'lomar')
    assert dropped == ['pos_embed']  # LoMaR never adds it
    assert 'head.predictor.weight' in converted
    assert 'backbone.mask_token' in converted
    x = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        want = _authors_lomar_features(state, x)
        got = _tokens(_ours(dst, pos_embed='none', irpe=dict()), x)
        assert torch.allclose(got, want, atol=1e-5)


def test_mmpretrain_mae_checkpoint_loads_directly(tmp_path):
    from mmpretrain.models import MAEViT
    torch.manual_seed(0)
    mae = MAEViT(arch=dict(embed_dims=DIMS, num_layers=DEPTH,
                           num_heads=HEADS, feedforward_channels=4 * DIMS),
                 img_size=IMG, patch_size=PATCH)
    mae.eval()  # mmpretrain's train() returns None: no chaining
    for p in mae.parameters():
        p.data.normal_(std=0.2)
    path = tmp_path / 'mmpretrain_mae.pth'
    torch.save({'state_dict': {f'backbone.{k}': v
                               for k, v in mae.state_dict().items()}}, path)
    ours = _ours(path)  # mapped on the fly when loading
    x = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        want = mae(x, mask=None)[0][:, 1:]
        assert torch.allclose(_tokens(ours, x), want, atol=1e-5)


def test_unknown_layout_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="no key of the 'mae' layout"):
        _convert(tmp_path, {'foo.weight': torch.zeros(2)}, 'mae')
