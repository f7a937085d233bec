"""LoMaR: window sampling, masking, loss and gradients."""
import pytest
import torch
from mmpretrain.registry import MODELS

import mim_pretrain  # noqa: F401
from mim_pretrain.models import LoMaRViT, patchify, unpatchify
from mim_pretrain.models.utils import normalize_patches

TINY = dict(embed_dims=32, depth=2, num_heads=2)


def _model(**kw):
    backbone = dict(type='LoMaRViT', arch=TINY, patch_size=4, window_size=3,
                    num_windows=2, mask_ratio=0.5)
    backbone.update(kw)
    model = MODELS.build(
        dict(type='LoMaR', backbone=backbone,
             head=dict(type='LoMaRHead', embed_dims=32, patch_size=4)))
    model.init_weights()
    return model


def test_windows_inside_grid_and_independent_per_image():
    vit = LoMaRViT(TINY, patch_size=4, window_size=3, num_windows=4)
    torch.manual_seed(0)
    origins = vit.sample_windows(64, (5, 8), torch.device('cpu'))
    assert origins.shape == (64, 4, 2)
    assert origins[..., 0].min() >= 0 and origins[..., 0].max() <= 5 - 3
    assert origins[..., 1].min() >= 0 and origins[..., 1].max() <= 8 - 3
    index = vit.window_patch_index(origins, (5, 8))
    assert index.min() >= 0 and index.max() < 40
    # raster order inside each window, and the window is a 3x3 block
    rows, cols = index // 8, index % 8
    assert torch.equal(rows - rows[..., :1],
                       torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2]).expand_as(
                           rows))
    assert torch.equal(cols - cols[..., :1],
                       torch.tensor([0, 1, 2] * 3).expand_as(cols))
    # independent: images do not share one set of windows
    distinct = {tuple(o.flatten().tolist()) for o in origins}
    assert len(distinct) > 50


@pytest.mark.parametrize('batch', [8, 6])
def test_shared_sampling_reproduces_authors_pattern(batch):
    vit = LoMaRViT(TINY, patch_size=4, window_size=3, num_windows=4,
                   sampling='shared')
    torch.manual_seed(1)
    origins = vit.sample_windows(batch, (8, 8), torch.device('cpu'))
    distinct = {tuple(w) for w in origins.reshape(-1, 2).tolist()}
    # 4 windows with distinct rows and distinct columns, shared by the batch
    assert len(distinct) == 4
    assert len({r for r, _ in distinct}) == len({c for _, c in distinct}) == 4
    # the authors' tiling: slot t of image i holds window (i + t*B) % 4
    table = {}
    for i in range(batch):
        for t in range(4):
            table.setdefault((i + t * batch) % 4, set()).add(
                tuple(origins[i, t].tolist()))
    assert all(len(v) == 1 for v in table.values()) and len(table) == 4
    if batch % 4 == 0:  # the same window 4 times for every image
        assert all(len({tuple(w) for w in origins[i].tolist()}) == 1
                   for i in range(batch))
    else:
        assert any(len({tuple(w) for w in origins[i].tolist()}) > 1
                   for i in range(batch))


def test_masked_count_per_window_is_exact():
    vit = LoMaRViT(TINY, patch_size=4, window_size=7, num_windows=4,
                   mask_ratio=0.8)
    assert vit.num_masked == 39
    masks = vit.sample_masks(16, torch.device('cpu'))
    assert masks.shape == (16, 4, 49)
    assert masks.sum(-1).eq(39).all()
    # different windows get different masks
    assert not torch.equal(masks[0, 0], masks[0, 1])


def test_bad_settings_have_clear_errors():
    with pytest.raises(ValueError, match='masks 0 of the 9 patches'):
        LoMaRViT(TINY, window_size=3, mask_ratio=0.1)
    with pytest.raises(ValueError, match='masks 9 of the 9 patches'):
        LoMaRViT(TINY, window_size=3, mask_ratio=1.0)
    with pytest.raises(ValueError, match='sampling must be one of'):
        LoMaRViT(TINY, sampling='random')
    vit = LoMaRViT(TINY, patch_size=4, window_size=7)
    with pytest.raises(ValueError, match='does not fit the 4x4 patch grid'):
        vit(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match='not divisible by the patch size'):
        vit(torch.zeros(1, 3, 30, 30))
    shared = LoMaRViT(TINY, patch_size=4, window_size=6, num_windows=4,
                      sampling='shared')
    with pytest.raises(ValueError, match='only 3 window positions'):
        shared(torch.zeros(1, 3, 32, 32))


def test_patchify_roundtrip():
    x = torch.randn(2, 3, 8, 12)
    p = patchify(x, 4)
    assert p.shape == (2, 6, 48)
    assert torch.equal(unpatchify(p, 4, (2, 3)), x)
    # MAE's (p, q, c) order inside a patch
    assert torch.equal(p[0, 1, :3], x[0, :, 0, 4])


@pytest.mark.parametrize('pos_embed', ['none', 'learned'])
def test_loss_equals_naive_per_window_loop(monkeypatch, pos_embed):
    """The batched path (only window patches embedded, targets cut from the
    image) equals embedding the whole image and looping over windows."""
    torch.manual_seed(0)
    model = _model(pos_embed=pos_embed, img_size=24).eval()
    vit, head = model.backbone, model.head
    imgs = torch.randn(3, 3, 20, 24)  # 5x6 patch grid
    origins = torch.tensor([[[0, 0], [2, 3]], [[1, 1], [1, 1]],
                            [[2, 0], [0, 3]]])
    masks = torch.zeros(3, 2, 9, dtype=torch.bool)
    for i in range(3):
        for w in range(2):
            masks[i, w, torch.randperm(9)[:4]] = True
    monkeypatch.setattr(vit, 'sample_windows', lambda b, g, d: origins)
    monkeypatch.setattr(vit, 'sample_masks', lambda b, d: masks)
    loss = model.loss(imgs, [])['loss']

    # naive: one window at a time, plain Python indexing
    tokens, grid = vit.embed(imgs)
    target_all = patchify(imgs, 4)
    total, count = 0., 0
    for i in range(3):
        for w in range(2):
            top, left = origins[i, w].tolist()
            idx = [(top + r) * 6 + left + c for r in range(3)
                   for c in range(3)]
            win = tokens[i, idx].clone()
            for k in range(9):
                if masks[i, w, k]:
                    win[k] = vit.mask_token[0, 0]
            x = torch.cat([vit.cls_token[0], win])[None]
            for blk in vit.blocks:
                x = blk(x, (3, 3))
            pred = head.predictor(vit.norm(x))[0, 1:]
            tgt = normalize_patches(target_all[i, idx])
            for k in range(9):
                if masks[i, w, k]:
                    total = total + ((pred[k] - tgt[k])**2).mean()
                    count += 1
    assert loss.item() == pytest.approx((total / count).item(), rel=1e-5)


def test_window_features_are_translation_invariant():
    """Same content at another place gives the same window features."""
    torch.manual_seed(0)
    vit = _model().backbone.eval()
    for blk in vit.blocks:
        blk.attn.rpe_k.lookup_table_weight.data.normal_()
    img = torch.randn(1, 3, 24, 24)
    shifted = torch.roll(img, shifts=(8, 4), dims=(2, 3))  # 2 and 1 patches
    mask = torch.zeros(1, 2, 9, dtype=torch.bool)
    mask[..., :4] = True

    def run(x, origin):
        vit.sample_windows = lambda b, g, d: torch.tensor([[origin] * 2])
        vit.sample_masks = lambda b, d: mask
        return vit(x)[0]

    assert torch.allclose(run(img, [0, 0]), run(shifted, [2, 1]), atol=1e-5)


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = _model(layer_scale_init=0.1).train()
    loss = model.loss(torch.randn(4, 3, 24, 24), [])['loss']
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_feature_extraction_encodes_the_whole_image():
    model = _model().eval()
    feats = model.extract_feat(torch.randn(2, 3, 20, 24))
    assert feats[0].shape == (2, 1 + 30, 32)


CFG_DIR = 'mmpretrain_configs/lomar/'
REAL = CFG_DIR + 'lomar_vit-base-p16_4xb256-accum4-amp-coslr-400e_in1k.py'
TINY_CFG = CFG_DIR + 'lomar_vit-tiny-p8_1xb32-20e_synthetic.py'


def test_real_config_has_the_authors_recipe(repo_root):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(f'{repo_root}/{REAL}')
    assert cfg.train_dataloader.batch_size * 4 * \
        cfg.optim_wrapper.accumulative_counts == 4096
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'AdamW' and opt.lr == pytest.approx(1.5e-4 * 16)
    assert opt.betas == (0.9, 0.95) and opt.weight_decay == 0.05
    assert cfg.optim_wrapper.type == 'MixedPrecisionOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'auto' and opt.fused
    warm, cos = cfg.param_scheduler
    assert warm.end == 20 and cos.begin == 20 and cos.end == 400
    assert cfg.train_cfg.max_epochs == 400
    crop = cfg.train_dataloader.dataset.pipeline[1]
    assert crop.scale == 224 and crop.crop_ratio_range == (0.2, 1.0)
    assert crop.interpolation == 'bicubic'
    b = cfg.model.backbone
    assert (b.window_size, b.num_windows, b.mask_ratio, b.pos_embed) == (
        7, 4, 0.8, 'none')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    n = sum(p.numel() for p in model.parameters())
    print(f'LoMaR ViT-B/16 parameters: {n / 1e6:.2f} M')
    # ViT-B/16 encoder 85.8 M + 12 iRPE tables + mask token + linear head
    assert 86.0e6 < n < 86.5e6
    assert model.backbone.num_masked == 39


def test_tiny_config_changes_only_sizes(repo_root):
    from mmengine.config import Config
    real = Config.fromfile(f'{repo_root}/{REAL}').model
    tiny = Config.fromfile(f'{repo_root}/{TINY_CFG}').model
    for key in ('type', 'window_size', 'num_windows', 'mask_ratio',
                'sampling', 'irpe', 'pos_embed'):
        assert tiny.backbone[key] == real.backbone[key], key
    for key in ('type', 'norm_pix', 'loss'):
        assert tiny.head[key] == real.head[key], key
    assert tiny.type == real.type == 'LoMaR'
