"""LocalMIM on Swin: masked hierarchical encoder (efficient and simple
modes), per-stage decoders, loading into OpenMMLab's Swin backbones, the
authors' checkpoint converter, configs, and an end-to-end run through the
real tools."""
import glob
import json
import logging
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import NO_WORKERS, det_data_options, seg_data_options
from mmengine.config import Config, ConfigDict
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import mim_pretrain  # noqa: F401
from mim_pretrain.apis import convert_checkpoint_main
from mim_pretrain.benchmarks import swin_modes
from mim_pretrain.converters.swin import (AUTHORS_ORDER, OFFICIAL_ORDER,
                                          merging_to_unfold,
                                          taps_to_mmpretrain)
from mim_pretrain.models import localmim_swin
from mim_pretrain.models.localmim_swin import (LocalMIMSwinTransformer,
                                               PatchMerging, Windows)
from mim_pretrain.models.utils import resample_mask

ARCH = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4))
INF = float('-inf')
MMLogger.get_current_instance().setLevel(logging.WARNING)


def _encoder(seed=0, **kw):
    cfg = dict(arch=ARCH, window_size=2)
    cfg.update(kw)
    torch.manual_seed(seed)
    enc = LocalMIMSwinTransformer(**cfg)
    enc.init_weights()
    for p in enc.parameters():  # away from the init's zeros and ones
        p.data.add_(torch.randn_like(p) * 0.05)
    return enc.eval()


# decoder channels per target: HOG (9 bins) and pixels of the 8/16/32/32-px
# cells of the stage taps
HOG9 = (27, 27, 27, 27)
PIXELS = (8 * 8 * 3, 16 * 16 * 3, 32 * 32 * 3, 32 * 32 * 3)


def _model(target=dict(type='HOGTarget', nbins=9), out_channels=HOG9,
           **backbone):
    cfg = dict(type='LocalMIMSwinTransformer', arch=ARCH, window_size=7)
    cfg.update(backbone)
    model = MODELS.build(
        dict(type='LocalMIMSwin', backbone=cfg,
             neck=dict(type='LocalMIMDecoders', dims=32, num_heads=4,
                       out_channels=out_channels),
             head=dict(type='LocalMIMHead'), target_generator=target))
    model.init_weights()
    return model


def test_stage_grids_and_channel_dims():
    """At 224 px: taps after each patch merging at strides 8/16/32/32 with
    2C/4C/8C/8C channels; 37 of 49 units masked, one mask per batch; the
    decoders predict each tap's grid with the target's channels."""
    model = _model().eval()
    enc = model.backbone
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        maps = enc(x, mask=None)
        taps, mask, units = enc(x)
        preds, targets, _, _ = model.predict_targets(x)
    assert [tuple(m.shape) for m in maps] == [
        (2, 32, 28, 28), (2, 64, 14, 14), (2, 128, 7, 7), (2, 128, 7, 7)]
    assert units == (7, 7) and mask.sum(1).tolist() == [37., 37.]
    assert torch.equal(mask[0], mask[1])  # the authors' per-batch mask
    assert [tuple(t.shape) for t in taps] == [
        (2, 12 * 16, 32), (2, 12 * 4, 64), (2, 12, 128), (2, 12, 128)]
    assert [tuple(p.shape) for p in preds] == [
        (2, 27, 28, 28), (2, 27, 14, 14), (2, 27, 7, 7), (2, 27, 7, 7)]
    assert [t.shape for t in targets] == [p.shape for p in preds]
    assert model.cells == [8, 16, 32, 32]
    pixel = _model(target=dict(type='PixelTarget'), out_channels=PIXELS)
    assert [d.pred[-1].out_channels for d in pixel.neck.decoders] == [
        8 * 8 * 3, 16 * 16 * 3, 32 * 32 * 3, 32 * 32 * 3]
    # decoders sized for another target are refused, naming the sizes
    with pytest.raises(ValueError, match=r'neck.out_channels=\[192, 768, '
                       r'3072, 3072\]'):
        _model(target=dict(type='PixelTarget'))
    enc.mask_per_sample = True
    _, mask, _ = enc(torch.randn(4, 3, 224, 224))
    assert mask.sum(1).tolist() == [37.] * 4 and not all(
        torch.equal(mask[0], m) for m in mask[1:])


def _count_attention(monkeypatch, enc):
    """Tokens entering each qkv projection and, per attention call (one
    image), the keys that hold a token (empty slots hold zeros), the key
    slots, and whether every query that holds a token is barred from every
    empty key."""
    seen = {'qkv': [], 'keys': [], 'slots': [], 'barred': []}
    for stage in enc.stages:
        for blk in stage.blocks:
            blk.attn.w_msa.qkv.register_forward_pre_hook(
                lambda m, a: seen['qkv'].append(a[0].shape[1]))
    real = F.scaled_dot_product_attention

    def counting(q, k, v, attn_mask=None, **kw):
        # [1, windows x heads, slots, head_dim]
        real_k, real_q = k[0].abs().sum(-1) > 0, q[0].abs().sum(-1) > 0
        barred = attn_mask[0].expand(real_k.shape + real_k.shape[-1:]) == INF
        seen['barred'].append(bool(
            barred[real_q[:, :, None] & ~real_k[:, None, :]].all()))
        seen['keys'].append(int(real_k.sum()))
        seen['slots'].append(k.shape[1] * k.shape[2])
        return real(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(localmim_swin.F, 'scaled_dot_product_attention',
                        counting)
    return seen


def test_masked_tokens_never_enter_attention(monkeypatch):
    """Efficient mode at 224 px, window 7 (windows straddle the 32-px mask
    units): every qkv projection sees exactly the visible tokens of its
    stage, the keys of every attention call hold exactly those tokens (per
    head), every other key slot is empty and barred from them, and windows
    without a visible token are dropped. Simple mode, by contrast, puts
    every token through."""
    enc = _encoder(window_size=7)
    seen = _count_attention(monkeypatch, enc)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        enc(x)
    visible = [12 * 64, 12 * 16, 12 * 4, 12]  # per stage, 12 of 49 units
    per_block = [v for v in visible for _ in range(2)]
    assert seen['qkv'] == per_block
    heads = [h for h in ARCH['num_heads'] for _ in range(2)]
    assert [k // h for k, h in zip(seen['keys'], heads)] == per_block
    assert all(seen['barred'])
    full = [56 * 56, 28 * 28, 14 * 14, 7 * 7]
    slots = [s // h for s, h in zip(seen['slots'], heads)]
    # at stage 0 the 12 visible units touch at most 48 of the 64 windows
    assert slots[0] <= 48 * 49 and slots[1] <= 48 * 49
    simple = _encoder(window_size=7, mode='simple')
    seen_simple = _count_attention(monkeypatch, simple)
    with torch.no_grad():
        simple(x)
    assert seen_simple['qkv'] == [n for n in full for _ in range(2)]


def _dense_with_masked_keys(enc, x, mask):
    """Reference: the ordinary (cyclic-shift) Swin over the full grid in
    which visible queries may not attend to masked keys; the taps at the
    visible positions."""
    units = enc.unit_grid(x.shape)
    plain_windows = enc.stage_windows

    def windows(grid, pos, device):
        level = resample_mask(mask, units, grid).flatten(1)
        out = []
        for w in plain_windows(grid, None, device):
            masked = level[:, w.index[0]].view(level.shape[0], w.num, w.size)
            drop = (masked[:, :, :, None] == 0) & (masked[:, :, None] == 1)
            m = torch.zeros(drop.shape).masked_fill(drop, INF)
            if w.mask is not None:
                m = m + w.mask
            out.append(Windows(w.index, w.slot, m, w.size, padded=False))
        return out

    enc.stage_windows = windows
    try:
        maps = enc(x, mask=None)
    finally:
        del enc.stage_windows
    taps = []
    for t in maps:
        level = resample_mask(mask, units, t.shape[-2:]).flatten(1)
        tokens = t.flatten(2).transpose(1, 2)
        taps.append(torch.stack([tokens[b][level[b] == 0]
                                 for b in range(len(tokens))]))
    return taps


@pytest.mark.parametrize('size,window', [(128, 2), (96, 3)])
@pytest.mark.parametrize('per_sample', [False, True])
def test_efficient_mode_equals_swin_with_masked_keys_removed(
        per_sample, size, window):
    """Windows over the visible tokens only (shared or per-sample masks,
    windows straddling mask units, empty slots and empty windows) give what
    the ordinary Swin over the full grid gives at the visible positions when
    masked keys are excluded."""
    enc = _encoder(window_size=window)
    x = torch.randn(3, 3, size, size)
    units = enc.unit_grid(x.shape)
    torch.manual_seed(1)
    mask = enc.draw_mask(3 if per_sample else 1, units, x.device)
    with torch.no_grad():
        taps, _, _ = enc(x, mask=mask)
        ref = _dense_with_masked_keys(enc, x, mask.expand(3, -1))
    for t, r in zip(taps, ref):
        assert torch.allclose(t, r, atol=1e-5), (t - r).abs().max()


@pytest.mark.parametrize('rows', [1, 2])
def test_efficient_equals_simple_on_an_all_visible_input(rows):
    """With nothing masked, efficient mode (every token gathered as a
    visible one), simple mode and plain feature extraction give the same
    taps."""
    enc = _encoder(window_size=2)
    simple = _encoder(window_size=2, mode='simple')
    simple.load_state_dict(enc.state_dict(), strict=False)
    x = torch.randn(2, 3, 128, 128)
    none = torch.zeros(rows, 16)
    with torch.no_grad():
        eff, _, _ = enc(x, mask=none)
        sim, _, _ = simple(x, mask=none)
        maps = enc(x, mask=None)
    for e, s, m in zip(eff, sim, maps):
        assert e.shape == (2, m.shape[2] * m.shape[3], m.shape[1])
        assert torch.allclose(e, s, atol=1e-5)
        assert torch.allclose(e, m.flatten(2).transpose(1, 2), atol=1e-5)


def _pre_merge_outputs(enc, x):
    """The stage outputs before patch merging, and the final tap."""
    pre = {}
    hooks = [st.downsample.register_forward_pre_hook(
        lambda m, a, i=i: pre.__setitem__(i, a[0]))
        for i, st in enumerate(enc.stages) if st.downsample is not None]
    with torch.no_grad():
        maps = enc(x, mask=None)
    for h in hooks:
        h.remove()
    return pre, maps


def _save(tmp_path, state, name='backbone.pth'):
    path = str(tmp_path / name)
    torch.save({'state_dict': state}, path)
    return path


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_pretraining_weights_load_into_mmdet_and_mmseg_swin(scope, tmp_path):
    """The pretraining encoder's ``backbone.*`` weights, loaded by
    mmdet's / mmseg's own SwinTransformer through init_cfg, give its
    features to 1e-5 (stage outputs before merging, through the backbone's
    own norm0-2, and the final tap through norm3)."""
    import importlib
    swin = importlib.import_module(
        f'{scope}.models.backbones.swin').SwinTransformer
    enc = _encoder(window_size=2, norm_eps=1e-5)
    path = _save(tmp_path, {'backbone.' + k: v
                            for k, v in enc.state_dict().items()})
    theirs = swin(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4),
                  window_size=2, drop_path_rate=0.,
                  init_cfg=ConfigDict(type='Pretrained', checkpoint=path))
    theirs.init_weights()
    theirs.eval()
    x = torch.randn(2, 3, 128, 128)
    pre, maps = _pre_merge_outputs(enc, x)
    with torch.no_grad():
        outs = theirs(x)
        for i in range(3):
            ref = getattr(theirs, f'norm{i}')(pre[i])
            ref = ref.transpose(1, 2).reshape(outs[i].shape)
            assert (outs[i] - ref).abs().max() < 1e-5, i
    assert (outs[3] - maps[3]).abs().max() < 1e-5


def _mmpretrain_swin(path, **kw):
    from mmpretrain.models.backbones import SwinTransformer
    model = SwinTransformer(
        arch=dict(embed_dims=16, depths=(2, 2, 2, 2),
                  num_heads=(1, 2, 2, 4)), drop_path_rate=0.,
        init_cfg=dict(type='Pretrained', checkpoint=path,
                      prefix='backbone.'), **kw)
    model.init_weights()
    model.eval()  # its train() returns None
    return model


@pytest.mark.parametrize('size,window', [(128, 2), (96, 3)])
def test_pretraining_weights_load_into_mmpretrain_swin(size, window,
                                                       tmp_path):
    """mmpretrain's SwinTransformer, by prefix: its final output equals the
    last tap; with ``out_after_downsample=True`` and the tap norms renamed
    (``taps_to_mmpretrain``) all four outputs equal the taps. Also where a
    stage grid equals the window (96 px, window 3: no shift, as official
    Swin); mmdet's Swin shifts there, so its last stage differs."""
    from mmdet.models.backbones import SwinTransformer as DetSwin
    enc = _encoder(window_size=window, norm_eps=1e-5)
    state = {'backbone.' + k: v for k, v in enc.state_dict().items()}
    plain = _save(tmp_path, state)
    renamed = _save(tmp_path, taps_to_mmpretrain(state), 'taps.pth')
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        maps = enc(x, mask=None)
        final = _mmpretrain_swin(plain, window_size=window)(x)
        every = _mmpretrain_swin(renamed, window_size=window,
                                 out_indices=(0, 1, 2, 3),
                                 out_after_downsample=True)(x)
    assert (final[0] - maps[3]).abs().max() < 1e-5
    for theirs, ours in zip(every, maps):
        assert (theirs - ours).abs().max() < 1e-5
    if size == 96:
        det = DetSwin(embed_dims=16, depths=(2, 2, 2, 2),
                      num_heads=(1, 2, 2, 4), window_size=3,
                      drop_path_rate=0.,
                      init_cfg=ConfigDict(type='Pretrained',
                                          checkpoint=plain))
        det.init_weights()
        det.eval()
        with torch.no_grad():
            assert (det(x)[3] - maps[3]).abs().max() > 1e-3


def _concat_merge(x, grid, order, norm_w, norm_b, weight):
    """Reference patch merging that concatenates the 2x2 neighbours in
    ``order`` (the authors' or official Swin's)."""
    b, _, c = x.shape
    x = x.view(b, *grid, c)
    parts = [x[:, dr::2, dc::2] for dr, dc in order]
    x = torch.cat(parts, -1).view(b, -1, 4 * c)
    return F.linear(F.layer_norm(x, (4 * c, ), norm_w, norm_b, eps=1e-6),
                    weight)


@pytest.mark.parametrize('order', [AUTHORS_ORDER, OFFICIAL_ORDER])
def test_merging_weights_permute_to_the_unfold_order(order):
    """Concatenation-order merging weights, permuted, give the same output
    in this toolkit's (nn.Unfold-order) PatchMerging; the official order's
    permutation equals mmdet's own converter; confusing the two orders
    changes the result."""
    from mmdet.models.backbones.swin import swin_converter
    torch.manual_seed(0)
    c, grid = 8, (6, 4)
    x = torch.randn(2, grid[0] * grid[1], c)
    w, nw, nb = torch.randn(2 * c, 4 * c), torch.randn(4 * c), torch.randn(
        4 * c)
    ours = PatchMerging(c)
    ours.reduction.weight.data = merging_to_unfold(w, order)
    ours.norm.weight.data = merging_to_unfold(nw, order)
    ours.norm.bias.data = merging_to_unfold(nb, order)
    children, _ = localmim_swin.merge_index(None, grid, x.device)
    with torch.no_grad():
        got = ours(x, children)
    assert torch.allclose(got, _concat_merge(x, grid, order, nw, nb, w),
                          atol=1e-5)
    other = OFFICIAL_ORDER if order == AUTHORS_ORDER else AUTHORS_ORDER
    assert not torch.allclose(got, _concat_merge(x, grid, other, nw, nb, w),
                              atol=1e-3)
    if order == OFFICIAL_ORDER:
        ref = swin_converter({
            'layers.0.downsample.reduction.weight': w,
            'layers.0.downsample.norm.weight': nw})
        assert torch.equal(
            ref['backbone.stages.0.downsample.reduction.weight'],
            ours.reduction.weight)
        assert torch.equal(ref['backbone.stages.0.downsample.norm.weight'],
                           ours.norm.weight)


def _authors_layout(enc):
    """The encoder's weights written as the LocalMIM authors' Swin
    checkpoint (GreenMIM names under ``encoder.``, merging concatenated in
    (0,0), (0,1), (1,0), (1,1) order, tap norms ``norm.{k}``), with the
    buffers, decoder and target entries such a file also holds."""
    names = [('patch_embed.projection.', 'patch_embed.proj.'),
             ('stages.', 'layers.'), ('attn.w_msa.', 'attn.'),
             ('ffn.layers.0.0.', 'mlp.fc1.'), ('ffn.layers.1.', 'mlp.fc2.')]
    unfold = [(0, 0), (0, 1), (1, 0), (1, 1)]
    out = {}
    for key, value in enc.state_dict().items():
        if key.startswith('tap_norms.') or key.startswith('norm3.'):
            k = key.split('.')[1] if key.startswith('tap_norms.') else '3'
            out[f'norm.{k}.{key.rsplit(".", 1)[1]}'] = value
            continue
        new = key
        for a, b in names:
            new = new.replace(a, b)
        if '.downsample.' in key:
            # authors' channel n * C + c holds our c * 4 + unfold(n)
            c = value.shape[-1] // 4
            cols = [ch * 4 + unfold.index(nb) for nb in AUTHORS_ORDER
                    for ch in range(c)]
            value = value[..., cols]
        out['encoder.' + new] = value
        if key.endswith('attn.w_msa.qkv.weight'):
            out['encoder.' + new.replace('qkv.weight',
                                         'relative_position_index')] = \
                torch.zeros(4, 4, dtype=torch.long)
    out['decoder.0.embed.weight'] = torch.zeros(4, 4)
    out['hog_enc.0.conv.weight'] = torch.zeros(2, 1, 3, 3)
    return out


def test_authors_checkpoint_converts_to_the_same_features(tmp_path):
    """convert_checkpoint.py --format localmim-swin: every encoder weight
    of an authors'-layout file lands (strict load), the rest is reported as
    dropped, and the converted encoder gives the original's features."""
    enc = _encoder(window_size=2)
    src, dst = tmp_path / 'authors.pth', tmp_path / 'converted.pth'
    torch.save({'model': _authors_layout(enc), 'args': None}, src)
    converted, dropped = convert_checkpoint_main(
        [str(src), str(dst), '--format', 'localmim-swin'])
    assert sorted(d for d in dropped if 'relative_position_index' not in d) \
        == ['decoder.0.embed.weight', 'hog_enc.0.conv.weight']
    fresh = LocalMIMSwinTransformer(arch=ARCH, window_size=2).eval()
    state = torch.load(dst, weights_only=True)['state_dict']
    fresh.load_state_dict({k[len('backbone.'):]: v
                           for k, v in state.items()})
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        for a, b in zip(enc(x, mask=None), fresh(x, mask=None)):
            assert (a - b).abs().max() < 1e-5


def test_loss_is_the_masked_per_stage_mse():
    """Per-stage loss = MSE over features averaged over the cells of masked
    units (naive loop), the total their sum; logged as loss_stage<i>, only
    the total is optimised."""
    model = _model(target=dict(type='PixelTarget'), out_channels=PIXELS,
                   window_size=2)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    torch.manual_seed(3)
    with torch.no_grad():
        preds, targets, mask, units = model.predict_targets(x)
    torch.manual_seed(3)
    with torch.no_grad():
        losses = model.loss(x, [])
    total = 0.
    for i, (p, t) in enumerate(zip(preds, targets)):
        h, w = t.shape[-2:]
        num = den = 0.
        for b in range(2):
            for r in range(h):
                for c in range(w):
                    unit = (r * units[0] // h) * units[1] + c * units[1] // w
                    if mask[b, unit]:
                        num += ((p[b, :, r, c] - t[b, :, r, c])**2).mean()
                        den += 1
        assert losses[f'loss_stage{i}'].item() == pytest.approx(
            (num / den).item(), rel=1e-4)
        total += num / den
    assert losses['loss'].item() == pytest.approx(total.item(), rel=1e-4)
    loss, log_vars = model.parse_losses(losses)
    assert loss is losses['loss'] and 'loss_stage3' in log_vars


@pytest.mark.parametrize('mode', ['efficient', 'simple'])
def test_every_parameter_gets_a_gradient(mode):
    """Both modes train every parameter (the mask token in simple mode).
    A quarter of the units is masked so that every attention call has
    windows with several visible tokens (a window with one token has a
    softmax of 1 whatever its bias, so no bias gradient)."""
    torch.manual_seed(0)
    model = _model(window_size=2, mode=mode, mask_per_sample=True,
                   mask_ratio=0.25).train()
    model.loss(torch.randn(2, 3, 128, 128), [])['loss'].backward()
    names = [n for n, p in model.named_parameters()
             if p.grad is None or not p.grad.abs().sum() > 0]
    assert names == []
    assert ('backbone.mask_token' in dict(model.named_parameters())) == (
        mode == 'simple')


def test_bad_settings_have_clear_errors():
    """Sizes that do not fit, bad modes, masks and decoder widths name the
    offending value."""
    enc = _encoder(window_size=7)
    with pytest.raises(ValueError, match='not a multiple of 32 px'):
        enc(torch.randn(1, 3, 200, 224))
    with pytest.raises(ValueError, match=r'stage 0 grid 32x32 \(input '
                       r'128x128\) is not a multiple of the window 7'):
        enc(torch.randn(1, 3, 128, 128))
    with pytest.raises(ValueError, match=r'must be \[1 or 1, 49\]'):
        enc(torch.randn(1, 3, 224, 224), mask=torch.zeros(1, 16))
    with pytest.raises(ValueError, match='same, non-zero number'):
        enc(torch.randn(1, 3, 224, 224), mask=torch.ones(1, 49))
    with pytest.raises(ValueError, match="mode must be one of"):
        LocalMIMSwinTransformer(arch=ARCH, mode='sparse')
    with pytest.raises(ValueError, match='unknown Swin arch'):
        LocalMIMSwinTransformer(arch='huge')
    with pytest.raises(ValueError, match=r'decoder in_dims \[8, 8, 8, 8\]'):
        MODELS.build(
            dict(type='LocalMIMSwin',
                 backbone=dict(type='LocalMIMSwinTransformer', arch=ARCH),
                 neck=dict(type='LocalMIMDecoders', in_dims=8),
                 head=dict(type='LocalMIMHead'),
                 target_generator=dict(type='HOGTarget')))


CFG = 'mmpretrain_configs/localmim/'
BASE = 'localmim_swin-base-w7_8xb256-amp-coslr-400e_in1k.py'


@pytest.mark.parametrize('name,channels', [
    (BASE, [54] * 4),
    ('localmim-pixel_' + BASE.split('_', 1)[1],
     [8 * 8 * 3, 16 * 16 * 3, 32 * 32 * 3, 32 * 32 * 3]),
])
def test_swin_b_configs_have_the_authors_recipe(name, channels, repo_root):
    """Swin-B, window 7, 400 epochs (40 warm-up), batch 2048, lr 1e-4 x
    2048 / 256, mask on the 7x7 unit grid, efficient mode; the model builds
    with 256/512/1024/1024-channel taps."""
    cfg = Config.fromfile(f'{repo_root}/{CFG}{name}')
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(1e-4 * 8)
    assert cfg.optim_wrapper.optimizer.betas == (0.9, 0.95)
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.train_dataloader.batch_size * 8 == 2048
    assert cfg.train_cfg.max_epochs == 400
    assert cfg.param_scheduler[0].end == 40
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    enc = model.backbone
    assert (enc.mode, enc.window_size, enc.mask_ratio) == ('efficient', 7,
                                                           0.75)
    assert not enc.mask_per_sample and enc.unit_grid((224, 224)) == (7, 7)
    assert enc.tap_dims == [256, 512, 1024, 1024]
    assert model.cells == [8, 16, 32, 32]
    assert [d.pred[-1].out_channels for d in model.neck.decoders] == channels
    # the authors' merge geometry, LayerNorm eps, decoder widths and heads
    assert enc.geometry == 'authors'
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) > 50 and {m.eps for m in norms} == {1e-6}
    assert [d.dims for d in model.neck.decoders] == [64, 128, 128, 128]
    assert [d.block.attn.num_heads for d in model.neck.decoders] == [4] * 4
    # --hog_bias in the HOG command: a frozen bias per stage
    assert getattr(model.target_generator, 'sobel_biases', 0) == (
        4 if channels == [54] * 4 else 0)
    n = sum(p.numel() for p in enc.parameters())
    print(f'LocalMIM Swin-B encoder: {n / 1e6:.1f} M parameters')


def test_tiny_config_changes_only_sizes(repo_root):
    """The tiny config keeps the real config's algorithm settings."""
    real = Config.fromfile(f'{repo_root}/{CFG}{BASE}').model
    tiny = Config.fromfile(
        f'{repo_root}/{CFG}localmim_swin-tiny-w3_1xb32-20e_synthetic.py'
    ).model
    for key in ('type', 'patch_size', 'mode', 'mask_ratio', 'mask_per_sample',
                'geometry', 'norm_eps', 'drop_path_rate'):
        assert tiny.backbone[key] == real.backbone[key], key
    for key in ('type', 'scales', 'with_cls', 'num_heads'):
        assert tiny.neck.get(key) == real.neck.get(key), key
    # the first stage's decoder is half as wide as the others
    assert [d / tiny.neck.dims[1] for d in tiny.neck.dims] == [
        d / real.neck.dims[1] for d in real.neck.dims]
    assert tiny.head == real.head
    assert tiny.target_generator == real.target_generator


def test_transfer_configs_have_the_stated_recipes(repo_root):
    """Mask R-CNN Swin-B: mmdet's 3x multi-scale-crop schedule; UperNet
    Swin-B: lr 6e-5, weight decay 0.01, drop path 0.3, 160k iterations;
    both load this pretraining into the upstream Swin without conversion.
    """
    det = Config.fromfile(
        f'{repo_root}/mmdet_configs/localmim_swin/mask-rcnn_swin-b-p4-w7_'
        'localmim-pt_fpn_amp-ms-crop-3x_coco.py')
    bb = det.model.backbone
    assert (bb.type, bb.embed_dims, bb.depths, bb.num_heads,
            bb.window_size) == ('SwinTransformer', 128, [2, 2, 18, 2],
                                [4, 8, 16, 32], 7)
    assert not bb.convert_weights and bb.init_cfg.checkpoint.endswith(
        'localmim_swin-base-w7_backbone.pth')
    assert det.train_cfg.max_epochs == 36
    assert det.param_scheduler[1].milestones == [27, 33]
    assert det.model.neck.in_channels == [128, 256, 512, 1024]
    seg = Config.fromfile(
        f'{repo_root}/mmseg_configs/localmim_swin/upernet_swin-b-p4-w7_'
        'localmim-pt_8xb2-160k_ade20k-512x512.py')
    bb = seg.model.backbone
    assert (bb.embed_dims, bb.depths, bb.drop_path_rate) == (
        128, [2, 2, 18, 2], 0.3)
    assert seg.optim_wrapper.optimizer.lr == 6e-5
    assert seg.optim_wrapper.optimizer.weight_decay == 0.01
    assert seg.train_cfg.max_iters == 160000
    assert bb.init_cfg.checkpoint == det.model.backbone.init_cfg.checkpoint


def _run(args, cwd):
    res = subprocess.run([sys.executable, *args], cwd=cwd,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-3000:])
    return res


@pytest.mark.slow
def test_tiny_pretraining_then_mask_rcnn_and_upernet(tmp_path, synthetic_data,
                                                     repo_root):
    """End to end through the real tools: the tiny config pretrains with a
    falling loss, its weights are extracted, and the tiny Mask R-CNN and
    UperNet configs each train one step from them (mmdet's and mmseg's own
    Swin load the file) and evaluate with CocoMetric / IoUMetric."""
    root, _ = synthetic_data
    work = tmp_path / 'pretrain'
    _run(['tools/train.py', f'{CFG}localmim_swin-tiny-w3_1xb32-20e_'
          'synthetic.py', '--work-dir', str(work), '--cfg-options',
          f'train_dataloader.dataset.data_root={root}/imagenet',
          'train_dataloader.dataset.indices=32',
          'train_dataloader.batch_size=8', 'train_cfg.max_epochs=3',
          'default_hooks.logger.interval=1',
          *[f'train_dataloader.{o}' for o in NO_WORKERS]], repo_root)
    scalars = glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))
    losses = [json.loads(line)['loss'] for line in open(scalars[0])
              if '"loss"' in line]
    assert len(losses) == 12
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    print(f'tiny LocalMIM-Swin, 12 steps: loss {first:.3f} -> {last:.3f}')
    assert last < 0.75 * first
    weights = str(tmp_path / 'backbone.pth')
    _run(['tools/model_converters/extract_weights.py',
          str(work / 'epoch_3.pth'), weights, '--prefix', 'backbone.'],
         repo_root)
    load = f'model.backbone.init_cfg.checkpoint={weights}'
    det_work = tmp_path / 'det'
    det_cfg = ('mmdet_configs/localmim_swin/mask-rcnn_swin-tiny-w3_'
               'localmim-pt_fpn_1xb4-1e_synthetic.py')
    res = _run(['tools/train.py', det_cfg, '--work-dir', str(det_work),
                '--cfg-options', load, *det_data_options(root),
                'train_dataloader.dataset.indices=4'], repo_root)
    log = open(glob.glob(str(det_work / '*' / '*.log'))[0]).read()
    assert f'from path: {weights}' in res.stdout + log
    assert 'Epoch(train) [1][1/1]' in log and 'loss_mask' in log
    assert 'coco/segm_mAP' in log
    seg_work = tmp_path / 'seg'
    seg_cfg = ('mmseg_configs/localmim_swin/upernet_swin-tiny-w3_'
               'localmim-pt_1xb4-200i_synthetic.py')
    res = _run(['tools/train.py', seg_cfg, '--work-dir', str(seg_work),
                '--cfg-options', load, *seg_data_options(root),
                'train_cfg.max_iters=1', 'train_cfg.val_interval=1',
                'default_hooks.logger.interval=1'], repo_root)
    log = open(glob.glob(str(seg_work / '*' / '*.log'))[0]).read()
    # mmseg's Swin prints this line instead of logging it
    assert f'from path: {weights}' in res.stdout + log
    assert 'Iter(train) [1/1]' in log and 'decode.loss_ce' in log
    assert 'mIoU' in log
    assert osp.isfile(seg_work / 'iter_1.pth')


@pytest.mark.slow
def test_mode_benchmark_counts_the_tokens(tmp_path, repo_root):
    """tools/benchmarks/swin_modes.py on the tiny config (96 px: 2 of 9
    units visible): efficient mode's qkv projections see exactly the
    visible tokens of each stage (2 blocks each), simple mode's every
    token; the JSON holds both modes' times and memory."""
    out = tmp_path / 'modes.json'
    swin_modes.main([
        '--config', f'{repo_root}/{CFG}localmim_swin-tiny-w3_1xb32-20e_'
        'synthetic.py', '--size', '96', '--batch', '2', '--steps', '1',
        '--warmup', '0', '--out', str(out)])
    rows = {r['mode']: r for r in json.load(open(out))['results']}
    visible = [2 * 64, 2 * 16, 2 * 4, 2]
    assert rows['efficient']['qkv_tokens'] == 2 * sum(visible)
    assert rows['simple']['qkv_tokens'] == 2 * (24**2 + 12**2 + 6**2 + 3**2)
    assert rows['efficient']['counted_gflops'] < rows['simple'][
        'counted_gflops']
    for r in rows.values():
        assert r['step_s'] > 0 and r['encoder_peak_mib'] >= 0


def _reference_layout(true_pos, grid, unit, window, shift, geometry,
                      merged):
    """Which tokens share a window and the relative offset of each pair,
    computed token by token from the authors' description of their code.

    ``true_pos``: the visible tokens' raster positions. Stage coordinates:
    each token's own (``'swin'``, and stage 0 of ``'authors'``, where their
    code permutes the coordinates with the tokens), or, for ``'authors'``
    after a merging (``merged``), what their patch merging hands on: the
    tokens are listed unit-major and the k-th one gets the k-th raster
    coordinate among the raster indices whose entry of the
    unit-major visibility mask is set. Windows: GreenMIM's grouping,
    ``(coord + (window - shift) % window) // window`` per axis (no wrap);
    offsets: ``(dr + window - 1) * (2 * window - 1) + dc + window - 1``.
    Returns ``{(a, b): offset index}`` over ordered pairs of tokens (by
    true position) that attend to each other.
    """
    h, w = grid
    present = set(true_pos)
    coords = {p: divmod(p, w) for p in true_pos}
    if geometry == 'authors' and merged:
        units_w = w // unit
        unit_major = []  # true position of each unit-major index
        for uu in range((h // unit) * units_w):
            for t in range(unit * unit):
                r = (uu // units_w) * unit + t // unit
                c = (uu % units_w) * unit + t % unit
                unit_major.append(r * w + c)
        tokens = [p for p in unit_major if p in present]
        raster = [divmod(i, w) for i, p in enumerate(unit_major)
                  if p in present]
        coords = dict(zip(tokens, raster))
    off = (window - shift) % window

    def group(p):
        r, c = coords[p]
        return (r + off) // window, (c + off) // window

    pairs = {}
    for a in true_pos:
        for b in true_pos:
            if group(a) == group(b):
                dr = coords[a][0] - coords[b][0]
                dc = coords[a][1] - coords[b][1]
                pairs[(a, b)] = ((dr + window - 1) * (2 * window - 1) + dc +
                                 window - 1)
    return pairs


def _project_layout(enc, stage, windows, true_pos):
    """The same mapping read off the encoder's window layout: tokens in one
    window whose mask entry is 0, and the relative position index of their
    slots."""
    size = windows.size
    index = enc.stages[stage].blocks[0].attn.w_msa.relative_position_index
    slot = windows.slot[0].tolist()
    pairs = {}
    for i, a in enumerate(true_pos):
        for j, b in enumerate(true_pos):
            (ka, sa), (kb, sb) = divmod(slot[i], size), divmod(slot[j], size)
            if ka != kb or (windows.mask is not None and
                            windows.mask[0, ka, sa, sb] != 0):
                continue
            pairs[(a, b)] = int(index[sa, sb])
    return pairs


@pytest.mark.parametrize('geometry', ['swin', 'authors'])
def test_window_geometry_equals_a_per_token_reference(geometry):
    """Every stage's plain and shifted windows (who attends to whom, with
    which relative offset) equal the per-token reference, for true Swin
    geometry and for the authors' merge coordinates; the two differ after
    a merging (stages 1 and 2) and nowhere else."""
    enc = LocalMIMSwinTransformer(arch=ARCH, window_size=3,
                                  geometry=geometry)
    units = (3, 6)  # 96 x 192 px: stage grids 24x48, 12x24, 6x12, 3x6
    g = torch.Generator().manual_seed(3)
    mask = torch.ones(1, 18)
    mask[0, torch.randperm(18, generator=g)[:6]] = 0
    grid = (24, 48)
    level = resample_mask(mask, units, grid).flatten(1)
    n_vis = int((level[0] == 0).sum())
    pos = localmim_swin.visible_order(level)[:, :n_vis]
    moved = []
    for stage in range(4):
        unit = 2**(3 - stage)
        wpos = enc.window_positions(pos, grid, stage)
        moved.append(float((wpos != pos).float().mean()))
        layouts = enc.stage_windows(grid, wpos, pos.device)
        shifts = (0, 1 if min(grid) > 3 else 0)
        true_pos = pos[0].tolist()
        for windows, shift in zip(layouts, shifts):
            ref = _reference_layout(true_pos, grid, unit, 3, shift, geometry,
                                    merged=stage > 0)
            assert _project_layout(enc, stage, windows, true_pos) == ref, \
                (stage, shift)
        if stage < 3:
            _, pos = localmim_swin.merge_index(pos, grid, pos.device)
            grid = (grid[0] // 2, grid[1] // 2)
    if geometry == 'swin':
        assert moved == [0.] * 4
    else:
        # most visible tokens of stages 1 and 2 carry another position
        assert moved[0] == moved[3] == 0. and min(moved[1:3]) > 0.5, moved


def test_authors_geometry_changes_only_the_merged_stages():
    """Same weights, images and mask: the stage-0 tap is identical under
    both geometries, the later ones are not; per-sample masks work; the
    authors' geometry has no simple-mode version."""
    x = torch.randn(2, 3, 96, 96)
    mask = torch.tensor([[1., 0, 1, 1, 0, 1, 1, 1, 0],
                         [0., 1, 1, 0, 1, 1, 0, 1, 1]])
    taps = {}
    for geometry in ('swin', 'authors'):
        enc = _encoder(window_size=3, geometry=geometry)
        with torch.no_grad():
            taps[geometry] = enc(x, mask=mask)[0]
    assert torch.equal(taps['swin'][0], taps['authors'][0])
    for a, b in zip(taps['swin'][1:], taps['authors'][1:]):
        assert a.shape == b.shape and (a - b).abs().max() > 1e-3
    with pytest.raises(ValueError, match="mode='simple' has no"):
        LocalMIMSwinTransformer(arch=ARCH, mode='simple', geometry='authors')
    with pytest.raises(ValueError, match='geometry must be one of'):
        LocalMIMSwinTransformer(arch=ARCH, geometry='greenmim')


def test_decoders_take_per_stage_widths_and_heads():
    """The authors' Swin decoders: widths 64/128/128/128, 4 heads each;
    lengths that do not match the taps and widths not divisible by the
    heads are refused."""
    model = _model(out_channels=HOG9)
    assert [d.dims for d in model.neck.decoders] == [32] * 4
    from mim_pretrain.models.necks import LocalMIMDecoders
    neck = LocalMIMDecoders(in_dims=(32, 64, 128, 128), scales=(1., ) * 4,
                            dims=(64, 128, 128, 128), num_heads=4,
                            with_cls=False)
    assert [d.dims for d in neck.decoders] == [64, 128, 128, 128]
    assert [d.block.attn.num_heads for d in neck.decoders] == [4] * 4
    with pytest.raises(ValueError, match='3 dims for 4 decoder scales'):
        LocalMIMDecoders(in_dims=32, scales=(1., ) * 4, dims=(64, 128, 128))
    with pytest.raises(ValueError, match='dims 66 is not a multiple of its '
                       'num_heads 4'):
        LocalMIMDecoders(in_dims=32, scales=(1., ) * 4, dims=66, num_heads=4)
