"""LocalMIM: HOG and pixel targets, decoders, mask resampling, loss."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import mim_pretrain  # noqa: F401
from mim_pretrain.models import HOGTarget, PixelTarget
from mim_pretrain.models.utils import random_masking, resample_mask

TINY = dict(embed_dims=32, depth=8, num_heads=2)


def _model(target=dict(type='HOGTarget', nbins=9),
           out_channels=(27, 27, 27, 27), **backbone):
    cfg = dict(type='LocalMIMViT', arch=TINY, patch_size=8)
    cfg.update(backbone)
    model = MODELS.build(
        dict(type='LocalMIM', backbone=cfg,
             neck=dict(type='LocalMIMDecoders', in_dims=32, dims=32,
                       num_heads=4, out_channels=out_channels),
             head=dict(type='LocalMIMHead'), target_generator=target))
    model.init_weights()
    return model


@pytest.mark.parametrize('direction,expected_bin', [('x', 4), ('y', 0)])
def test_hog_of_a_single_gradient_direction(direction, expected_bin):
    ramp = torch.arange(32.).view(1, 32) * torch.ones(32, 1)
    img = (ramp if direction == 'x' else ramp.t()).expand(1, 3, 32, 32)
    hog = HOGTarget(nbins=9)
    hist = hog.histogram(img)[..., 2:-2, 2:-2]  # away from the border
    per_bin = hist.sum(dim=(0, 1, 3, 4))
    assert per_bin.argmax().item() == expected_bin
    assert per_bin[expected_bin] == pytest.approx(per_bin.sum().item())
    # magnitude of the Sobel response of a unit ramp: 8
    assert hist[0, 0, expected_bin].mean().item() == pytest.approx(8.0)


def test_hog_pooling_and_normalisation_equal_a_naive_loop():
    torch.manual_seed(0)
    img = torch.randn(2, 3, 16, 24)
    hog = HOGTarget(nbins=9)
    out = hog(img, cell=8)
    assert out.shape == (2, 27, 2, 3)
    hist = hog.histogram(img)
    for b in range(2):
        for c in range(3):
            for i in range(2):
                for j in range(3):
                    cell = hist[b, c, :, i * 8:(i + 1) * 8,
                                j * 8:(j + 1) * 8]
                    v = cell.mean(dim=(1, 2))
                    v = v / max(v.norm().item(), 1e-12)
                    assert torch.allclose(out[b, c * 9:(c + 1) * 9, i, j], v,
                                          atol=1e-6)
    # the per-pixel bins follow the documented formula
    x = F.pad(img, (1, 1, 1, 1), mode='reflect')
    gx = F.conv2d(x, hog.weight_x, groups=3)
    gy = F.conv2d(x, hog.weight_y, groups=3)
    b = int(math.floor(math.atan2(gx[0, 1, 5, 7], gy[0, 1, 5, 7]) / math.pi *
                       9)) % 9
    assert hist[0, 1, b, 5, 7] == pytest.approx(
        math.hypot(gx[0, 1, 5, 7], gy[0, 1, 5, 7]), rel=1e-5)


@pytest.mark.parametrize('target,size', [(HOGTarget(nbins=9), (72, 40)),
                                         (PixelTarget(), (64, 32))])
def test_multi_scale_targets_equal_one_cell_at_a_time(target, size):
    """LocalMIM asks for all cells at once (HOG pools one histogram in
    cascade, here on a size not a multiple of every cell); each equals the
    target for that cell alone."""
    torch.manual_seed(0)
    img = torch.randn(2, 3, *size)
    cells = [8, 4, 16, 32]
    for cell, out in zip(cells, target.multi_scale(img, cells)):
        assert torch.allclose(out, target(img, cell), atol=1e-5), cell


def test_pixel_target_equals_a_naive_loop():
    torch.manual_seed(0)
    img = torch.randn(1, 3, 8, 12)
    out = PixelTarget()(img, cell=4)
    assert out.shape == (1, 48, 2, 3)
    block = img[0, :, 4:8, 8:12].permute(1, 2, 0).reshape(-1)
    want = (block - block.mean()) / (block.var() + 1e-6)**.5
    assert torch.allclose(out[0, :, 1, 2], want, atol=1e-5)
    assert PixelTarget().out_channels(32) == 3072


@pytest.mark.parametrize('size,grids', [(224, [56, 28, 14, 7]),
                                        (160, [40, 20, 10, 5])])
def test_decoder_grids(size, grids):
    model = _model(patch_size=16)
    x = torch.randn(1, 3, size, size)
    preds, targets, mask, grid = model.predict_targets(x)
    assert [p.shape[-1] for p in preds] == grids
    assert [t.shape[-2:] for t in targets] == [p.shape[-2:] for p in preds]
    assert all(p.shape[1] == 27 for p in preds)


def test_mask_resampling_equals_a_reference():
    torch.manual_seed(0)
    mask = (torch.rand(2, 16) > 0.5).float()  # 4x4 grid
    up = resample_mask(mask, (4, 4), (16, 16))
    down = resample_mask(mask, (4, 4), (2, 2))
    m = mask.view(2, 4, 4)
    for i in range(16):
        for j in range(16):
            assert up[:, i, j].tolist() == m[:, i // 4, j // 4].tolist()
    for i in range(2):
        for j in range(2):
            ref = m[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean(dim=(1, 2))
            assert torch.allclose(down[:, i, j], ref)
    assert torch.equal(resample_mask(mask, (4, 4), (4, 4)), m)


def test_random_masking_counts_and_errors():
    keep, restore, mask = random_masking(3, 196, 0.75, torch.device('cpu'))
    assert keep.shape == (3, 49) and mask.sum(1).eq(147).all()
    assert torch.equal(mask.gather(1, keep), torch.zeros(3, 49))
    with pytest.raises(ValueError, match='keeps 0 of 16'):
        random_masking(1, 16, 1.0, torch.device('cpu'))


def test_encoder_sees_exactly_the_visible_tokens():
    torch.manual_seed(0)
    model = _model().eval()
    vit = model.backbone
    seen = {}
    vit.blocks[0].register_forward_pre_hook(
        lambda m, args: seen.setdefault('x', args[0]))
    x = torch.randn(2, 3, 32, 32)  # 4x4 patches, 4 visible
    taps, mask, ids_restore = vit(x)
    tokens, grid = vit.patch_embed(x)
    tokens = tokens + vit.position(grid, x.device, x.dtype)
    assert seen['x'].shape == (2, 1 + 4, 32)
    for b in range(2):
        visible = tokens[b][mask[b] == 0]
        got = seen['x'][b, 1:]
        # the same set of rows (the encoder keeps MAE's shuffled order)
        assert torch.allclose(got.sort(0).values, visible.sort(0).values)
    assert len(taps) == 4 and all(t.shape == (2, 5, 32) for t in taps)


def test_loss_equals_a_naive_reference():
    torch.manual_seed(0)
    # pixels of the 2/4/8/16-px cells of the 4x/2x/1x/0.5x decoders
    model = _model(target=dict(type='PixelTarget'),
                   out_channels=(12, 48, 192, 768)).eval()
    x = torch.randn(2, 3, 32, 32)
    torch.manual_seed(1)
    preds, targets, mask, grid = model.predict_targets(x)
    torch.manual_seed(1)
    losses = model.loss(x, [])
    total = 0.
    for k, (p, t) in enumerate(zip(preds, targets)):
        h, w = t.shape[-2:]
        num = den = 0.
        for b in range(2):
            for i in range(h):
                for j in range(w):
                    # weight: the share of masked patches the cell covers
                    if h >= 4:
                        wgt = mask[b, (i * 4 // h) * 4 + j * 4 // w]
                    else:
                        s = 4 // h
                        wgt = sum(mask[b, (i * s + a) * 4 + j * s + c]
                                  for a in range(s) for c in range(s)) / s**2
                    num += wgt * ((p[b, :, i, j] - t[b, :, i, j])**2).mean()
                    den += wgt
        tap = num / den
        block = model.backbone.out_indices[k]
        assert losses[f'loss_block{block}'].item() == pytest.approx(
            tap.item(), rel=1e-4)
        total += tap
    assert losses['loss'].item() == pytest.approx(total.item(), rel=1e-4)
    # only the weighted total is optimised
    loss, log_vars = model.parse_losses(losses)
    assert loss is losses['loss'] and 'loss_block7' in log_vars


def test_loss_weights_are_applied():
    torch.manual_seed(0)
    model = _model()
    model.head.loss_weights = (1., 0., 2., 0.)
    losses = model.loss(torch.randn(2, 3, 32, 32), [])
    want = losses['loss_block1'] + 2 * losses['loss_block5']
    assert losses['loss'].item() == pytest.approx(want.item(), rel=1e-5)


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = _model(layer_scale_init=0.1).train()
    model.loss(torch.randn(2, 3, 32, 32), [])['loss'].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_settings_have_clear_errors():
    with pytest.raises(ValueError, match='must be distinct blocks'):
        _model(arch=dict(embed_dims=32, depth=6, num_heads=2))
    with pytest.raises(ValueError, match='decoder scale must be one of'):
        MODELS.build(dict(type='LocalMIMDecoders', in_dims=32,
                          scales=(3., ), out_channels=(27, )))
    with pytest.raises(ValueError, match='4 taps .* but 3 decoder scales'):
        MODELS.build(
            dict(type='LocalMIM', backbone=dict(type='LocalMIMViT', arch=TINY,
                                                patch_size=8),
                 neck=dict(type='LocalMIMDecoders', in_dims=32, dims=32,
                           num_heads=4, scales=(4., 2., 1.)),
                 head=dict(type='LocalMIMHead'),
                 target_generator=dict(type='HOGTarget')))


CFG = 'mmpretrain_configs/localmim/'


@pytest.mark.parametrize('name,arch,lr,batch,epochs,nbins,taps', [
    ('localmim_vit-base-p16_8xb256-amp-coslr-1600e_in1k.py', 'b',
     2e-4 * 8, 256 * 8, 1600, 9, [1, 3, 9, 11]),
    ('localmim_vit-large-p16_8xb512-amp-coslr-800e_in1k.py', 'l',
     1.5e-4 * 16, 512 * 8, 800, 18, [1, 3, 21, 23]),
])
def test_real_configs_have_the_authors_recipe(name, arch, lr, batch, epochs,
                                              nbins, taps, repo_root):
    cfg = Config.fromfile(f'{repo_root}/{CFG}{name}')
    assert cfg.model.backbone.arch == arch
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(lr)
    assert cfg.optim_wrapper.optimizer.betas == (0.9, 0.95)
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.train_dataloader.batch_size * 8 == batch
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.param_scheduler[0].end == 40
    assert cfg.model.target_generator.nbins == nbins
    # --hog_bias in the authors' ViT-L command only; min_lr 1e-6
    assert cfg.model.target_generator.get('sobel_biases', 0) == (
        4 if arch == 'l' else 0)
    assert cfg.param_scheduler[1].eta_min == 1e-6
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    assert model.backbone.out_indices == taps
    assert model.backbone.mask_ratio == 0.75
    assert [d.scale for d in model.neck.decoders] == [4., 2., 1., 0.5]
    assert [d.pred[-1].out_channels
            for d in model.neck.decoders] == [3 * nbins] * 4
    n = sum(p.numel() for p in model.parameters())
    print(f'LocalMIM ViT-{arch.upper()}: {n / 1e6:.1f} M parameters')


def test_tiny_config_changes_only_sizes(repo_root):
    real = Config.fromfile(
        f'{repo_root}/{CFG}localmim_vit-base-p16_8xb256-amp-coslr-1600e_'
        'in1k.py').model
    tiny = Config.fromfile(
        f'{repo_root}/{CFG}localmim_vit-tiny-p8_1xb32-20e_synthetic.py').model
    for key in ('type', 'mask_ratio', 'pos_embed'):
        assert tiny.backbone[key] == real.backbone[key], key
    # as many taps, spread over 4 blocks instead of 12: every block
    assert len(tiny.backbone.out_indices) == len(real.backbone.out_indices)
    assert tiny.backbone.out_indices == (0, 1, 2, 3)
    assert tiny.backbone.arch.depth == 4
    assert tiny.neck.scales == real.neck.scales
    assert tiny.head == real.head
    assert tiny.target_generator == real.target_generator


def _naive_hog(img, nbins, bias, cell):
    """HOG of one image ``[C, H, W]`` pixel by pixel, in float64: the 3x3
    Sobel cross-correlation over reflect padding plus ``bias``, the
    magnitude into bin ``floor(atan2(gx, gy) / pi * nbins) mod nbins``,
    the mean over each cell, L2 over the bins of each channel."""
    c, h, w = img.shape
    kx = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]

    def px(ch, r, q):
        r = -r if r < 0 else (2 * (h - 1) - r if r >= h else r)
        q = -q if q < 0 else (2 * (w - 1) - q if q >= w else q)
        return float(img[ch, r, q])

    out = torch.zeros(c, nbins, h // cell, w // cell, dtype=torch.float64)
    for ch in range(c):
        for r in range(h):
            for q in range(w):
                gx = bias[0] + sum(kx[i][j] * px(ch, r + i - 1, q + j - 1)
                                   for i in range(3) for j in range(3))
                gy = bias[1] + sum(kx[j][i] * px(ch, r + i - 1, q + j - 1)
                                   for i in range(3) for j in range(3))
                k = math.floor(math.atan2(gx, gy) / math.pi * nbins) % nbins
                out[ch, k, r // cell, q // cell] += math.hypot(gx, gy)
    out /= cell * cell
    out /= out.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return out.flatten(0, 1)


def test_hog_sobel_bias_equals_a_per_pixel_reference():
    """The authors' --hog_bias: each target its own frozen Sobel bias,
    equal to the per-pixel reference; without bias the same reference
    with (0, 0)."""
    torch.manual_seed(0)
    img = torch.rand(1, 3, 8, 12)
    img[:, :, :4, :4] = 0.5  # a smooth region, where the bias decides
    hog = HOGTarget(nbins=6, sobel_biases=2, bias_seed=3)
    outs = hog.multi_scale(img, [2, 4])
    for out, bias, cell in zip(outs, hog.sobel_bias.tolist(), [2, 4]):
        ref = _naive_hog(img[0], 6, bias, cell)
        assert (out[0].double() - ref).abs().max() < 1e-5
    # unbiased, away from flat parts and the border cells: there a gradient
    # component is 0 (reflect padding makes gy 0 on the top and bottom
    # rows), and its float32 rounding, +-1e-7, picks the bin
    rough = torch.rand(1, 3, 8, 12)
    assert (HOGTarget(nbins=6)(rough, 2)[0].double() -
            _naive_hog(rough[0], 6, (0., 0.), 2))[:, 1:-1, 1:-1].abs().max(
            ) < 1e-5
    plain = HOGTarget(nbins=6).multi_scale(img, [2])[0]
    # on the smooth cells the unbiased target is 0, the biased one a bin
    assert plain[0, :, 0, 0].abs().max() == 0
    assert torch.allclose(outs[0][0, :6, 0, 0].norm(), torch.tensor(1.))


def test_hog_bias_is_seeded_kept_and_checked():
    """The biases come from ``bias_seed`` only (not the global RNG), lie in
    PyTorch's default conv-bias range U(-1/3, 1/3), are saved with the
    model, and need one cell per bias."""
    torch.manual_seed(1)
    a = HOGTarget(sobel_biases=4, bias_seed=0)
    torch.manual_seed(2)
    b = HOGTarget(sobel_biases=4, bias_seed=0)
    assert torch.equal(a.sobel_bias, b.sobel_bias)
    assert not torch.equal(a.sobel_bias,
                           HOGTarget(sobel_biases=4, bias_seed=1).sobel_bias)
    assert a.sobel_bias.shape == (4, 2) and a.sobel_bias.abs().max() < 1 / 3
    assert 'sobel_bias' in a.state_dict()
    assert 'sobel_bias' not in HOGTarget().state_dict()
    with pytest.raises(ValueError, match='sobel_biases=4 makes one target '
                       'per bias; got 2 cells'):
        a.multi_scale(torch.rand(1, 3, 16, 16), [4, 8])
    with pytest.raises(ValueError, match='sobel_biases must be'):
        HOGTarget(sobel_biases=-1)


def _authors_vit_decay(name, p):
    """timm's add_weight_decay, as the authors' ViT pretraining calls it:
    no decay for 1-D parameters and biases."""
    return not (p.ndim == 1 or name.endswith('.bias'))


def _authors_swin_decay(name, p):
    """The authors' Swin pretraining: timm's rule plus names containing
    'position_bias' or 'token'."""
    return _authors_vit_decay(name, p) and 'position_bias' not in name \
        and 'token' not in name


@pytest.mark.parametrize('name,rule', [
    ('localmim_vit-tiny-p8_1xb32-20e_synthetic.py', _authors_vit_decay),
    ('localmim_swin-tiny-w3_1xb32-20e_synthetic.py', _authors_swin_decay),
])
def test_weight_decay_follows_the_authors_rule(name, rule, repo_root):
    """Every trainable parameter is decayed exactly where the authors'
    optimizer decays it (the tiny configs keep the full-size rules)."""
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(f'{repo_root}/{CFG}{name}')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[id(p)] = group['weight_decay'] > 0
    checked = 0
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert decay[id(p)] == rule(n, p), n
            checked += 1
    assert checked > 20
