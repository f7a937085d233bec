"""The transfer configs against the origins they name: mmdet's
projects/ViTDet, mmseg's MAE UperNet and the LocalMIM authors'
segmentation code (position modes, initialisations, weight-decay groups,
the DDP fp16 compression hook, the authors' pyramid and schedule)."""
import logging
import math
import os.path as osp
import socket
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import build_model as _build
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import HOOKS, PARAM_SCHEDULERS, DefaultScope

import mim_pretrain  # noqa: F401
from mim_pretrain.engine import Fp16CompressionHook
from mim_pretrain.models import (Feature2PyramidPool, MIMVisionTransformer,
                                 ViTFeaturePyramid, sincos_pos_embed_2d)
from mim_pretrain.models.utils import (LayerNorm2d, resize_beit_table,
                                       resize_pos_table)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY = dict(embed_dims=32, depth=2, num_heads=2)
VITDET = 'mmdet_configs/vitdet/mask-rcnn_vit-b-{}_simfp_16xb4-lsj-100e_coco.py'
AUTHORS = ('mmseg_configs/upernet/upernet_vit-b-localmim-authors_8xb2-amp-'
           '160k_ade20k-512x512.py')
OURS = 'mmseg_configs/upernet/upernet_vit-b-localmim_8xb2-amp-160k_ade20k-' \
       '512x512.py'


@pytest.fixture(autouse=True)
def _quiet():
    # mmengine's init_weights lists every tensor at INFO
    logger = MMLogger.get_instance('mmengine')
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


def _bicubic(table, src, dst):
    """``[src_h * src_w, C]`` -> ``[dst_h * dst_w, C]``, F.interpolate as
    ViTDet's get_abs_pos calls it."""
    grid = table.reshape(1, *src, -1).permute(0, 3, 1, 2)
    out = F.interpolate(grid, size=dst, mode='bicubic', align_corners=False)
    return out.permute(0, 2, 3, 1).reshape(-1, table.shape[-1])


def _fp32(optim_wrapper, **changes):
    """The config's optimizer wrapper as a plain fp32 OptimWrapper."""
    cfg = dict(optim_wrapper, type='OptimWrapper', **changes)
    cfg.pop('dtype', None)
    cfg.pop('loss_scale', None)
    return cfg


def _save(tmp_path, state, name='w.pth'):
    path = tmp_path / name
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in state.items()}},
               path)
    return str(path)


# ------------------------------------------------------------ position


def test_pretraining_table_is_resized_once_at_an_off_grid_input(tmp_path):
    """A 14 x 14 checkpoint table, loaded and run at a 10 x 13 grid (neither
    the table's nor img_size's), is one bicubic resize of the checkpoint's
    table, in float64 (ViTDet's get_abs_pos)."""
    torch.manual_seed(0)
    table = torch.randn(1, 1 + 14 * 14, 32, dtype=torch.float64)
    ckpt = _save(tmp_path, {'pos_embed': table})
    vit = MIMVisionTransformer(
        arch=TINY, patch_size=8, img_size=128, pos_embed='interpolated',
        pretrain_img_size=112, min_loaded=0.,
        init_cfg=dict(type='Pretrained', checkpoint=ckpt, prefix='backbone.'))
    vit.double()
    vit.init_weights()
    assert vit.pos_embed.dtype == torch.float64
    assert torch.equal(vit.pos_embed.data, table)  # kept at 14 x 14
    want = _bicubic(table[0, 1:], (14, 14), (10, 13))
    got = vit.position((10, 13), table.device, torch.float64)[0]
    assert got.dtype == torch.float64
    assert torch.allclose(got, want, rtol=0, atol=1e-12)
    # and the forward adds exactly that to the patch tokens
    vit.eval()
    x = torch.randn(1, 3, 80, 104, dtype=torch.float64)
    tokens, grid = vit.patch_embed(x)
    tokens = torch.cat([vit.cls_token + table[:, :1], tokens + want], 1)
    _, ref = vit.forward_blocks(tokens, grid, vit.out_indices)
    ref = ref[-1][:, 1:].transpose(1, 2).reshape(1, 32, 10, 13)
    assert torch.allclose(vit(x)[-1], ref, rtol=0, atol=1e-10)


def test_learned_table_is_resized_once_on_load_for_its_grid(tmp_path):
    """'learned' keeps a free table for img_size: the checkpoint's is
    resized once, on load, and not again at that grid."""
    table = torch.randn(1, 1 + 14 * 14, 32, dtype=torch.float64)
    ckpt = _save(tmp_path, {'pos_embed': table})
    vit = MIMVisionTransformer(
        arch=TINY, patch_size=8, img_size=128, pos_embed='learned',
        min_loaded=0., init_cfg=dict(type='Pretrained', checkpoint=ckpt,
                                     prefix='backbone.')).double()
    vit.init_weights()
    assert vit.pos_embed.shape == (1, 1 + 16 * 16, 32)
    want = _bicubic(table[0, 1:], (14, 14), (16, 16))
    assert torch.allclose(vit.pos_embed[0, 1:], want, rtol=0, atol=1e-12)
    assert torch.equal(vit.pos_embed[0, 0], table[0, 0])
    assert torch.equal(vit.position((16, 16), None, torch.float64),
                       vit.pos_embed[:, 1:])


def test_table_resizers_keep_the_dtype():
    table = torch.randn(12, 5, dtype=torch.float64)
    out = resize_pos_table(table, (3, 4), (5, 7))
    assert out.dtype == torch.float64
    assert torch.equal(out, _bicubic(table, (3, 4), (5, 7)))
    axis = resize_pos_table(table, (12, ), (7, ))
    assert axis.dtype == torch.float64
    beit = resize_beit_table(torch.randn(15 + 3, 2, dtype=torch.float64),
                             (3, 5), (5, 5))
    assert beit.dtype == torch.float64
    # half tables are resized in float32 and returned in their dtype
    assert resize_pos_table(table.half(), (3, 4), (5, 7)).dtype == \
        torch.float16


def test_sincos_start_of_a_learned_table(tmp_path):
    """pos_embed_init='sincos': the fixed sin-cos of the pretraining grid
    with a zero cls position, resized to the table as a checkpoint's
    would be (the LocalMIM authors' start); a checkpoint without pos_embed
    keeps it, one with a pos_embed overrides it."""
    sincos = sincos_pos_embed_2d(32, 14, 14)
    vit = MIMVisionTransformer(arch=TINY, patch_size=8, img_size=64,
                               pos_embed='learned', pos_embed_init='sincos',
                               pretrain_img_size=112)
    vit.init_weights()
    assert vit.pos_embed.requires_grad
    assert torch.equal(vit.pos_embed[0, 0], torch.zeros(32))
    assert torch.allclose(vit.pos_embed[0, 1:],
                          _bicubic(sincos, (14, 14), (8, 8)), atol=1e-6)
    kept = MIMVisionTransformer(arch=TINY, patch_size=8, img_size=64,
                                pos_embed='interpolated',
                                pos_embed_init='sincos',
                                pretrain_img_size=112)
    kept.init_weights()
    assert torch.equal(kept.pos_embed[0, 1:], sincos)
    # loading weights without pos_embed (this toolkit's LocalMIM) keeps it
    state = {k: v for k, v in vit.state_dict().items() if k != 'pos_embed'}
    ckpt = _save(tmp_path, state)
    loaded = MIMVisionTransformer(
        arch=TINY, patch_size=8, img_size=64, pos_embed='learned',
        pos_embed_init='sincos', pretrain_img_size=112,
        init_cfg=dict(type='Pretrained', checkpoint=ckpt, prefix='backbone.'))
    loaded.init_weights()
    assert torch.equal(loaded.pos_embed, vit.pos_embed)
    ckpt = _save(tmp_path, dict(state, pos_embed=torch.ones(1, 65, 32)),
                 'with_pos.pth')
    loaded = MIMVisionTransformer(
        arch=TINY, patch_size=8, img_size=64, pos_embed='learned',
        pos_embed_init='sincos', pretrain_img_size=112,
        init_cfg=dict(type='Pretrained', checkpoint=ckpt, prefix='backbone.'))
    loaded.init_weights()
    assert torch.equal(loaded.pos_embed.data, torch.ones(1, 65, 32))


def test_position_options_that_would_do_nothing_are_errors():
    def vit(**kw):
        return MIMVisionTransformer(arch=TINY, patch_size=8, img_size=32,
                                    **kw)

    with pytest.raises(ValueError, match="pos_embed must be one of"):
        vit(pos_embed='interp')
    with pytest.raises(ValueError, match="pos_embed_init='sincos' init"):
        vit(pos_embed='none', pos_embed_init='sincos')
    with pytest.raises(ValueError, match='pos_embed_init must be one of'):
        vit(pos_embed_init='zeros')
    with pytest.raises(ValueError, match='pretrain_img_size=224 is used by'):
        vit(pos_embed='learned', pretrain_img_size=224)
    with pytest.raises(ValueError, match='pretrain_img_size must be an int'):
        vit(pos_embed='interpolated', pretrain_img_size=4)
    with pytest.raises(ValueError, match='weight_init must be one of'):
        vit(weight_init='kaiming')


# ------------------------------------------------------- initialisation


def test_trunc_normal_init_is_vitdets():
    """weight_init='trunc_normal': ViTDet's _init_weights (trunc-normal 0.02
    Linear weights, zero biases, LayerNorms at 1 / 0), trunc-normal 0.02
    position, the patch embedding at PyTorch's Conv2d default."""
    torch.manual_seed(0)
    arch = dict(embed_dims=192, depth=2, num_heads=3)
    vit = MIMVisionTransformer(arch=arch, patch_size=16, img_size=224,
                               pos_embed='interpolated',
                               weight_init='trunc_normal',
                               rel_pos='decomposed')
    for p in vit.parameters():
        p.data.fill_(7.)
    vit.init_weights()
    for name, m in vit.named_modules():
        if isinstance(m, nn.Linear):
            assert m.weight.std().item() == pytest.approx(.02, rel=0.05), name
            assert m.weight.abs().max() < 2.  # mmengine's truncation at +-2
            assert torch.equal(m.bias, torch.zeros_like(m.bias)), name
        elif isinstance(m, nn.LayerNorm):
            assert torch.equal(m.weight, torch.ones_like(m.weight)), name
            assert torch.equal(m.bias, torch.zeros_like(m.bias)), name
    assert vit.pos_embed.std().item() == pytest.approx(.02, rel=0.05)
    # kaiming-uniform with a = sqrt(5): uniform within 1 / sqrt(fan_in)
    w = vit.patch_embed.proj.weight
    bound = 1 / math.sqrt(w[0].numel())
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert torch.equal(vit.blocks[0].attn.rel_pos_h,
                       torch.full_like(vit.blocks[0].attn.rel_pos_h, 7.))
    # the default stays MAE's xavier
    mae = MIMVisionTransformer(arch=arch, patch_size=16)
    mae.init_weights()
    fc1 = mae.blocks[0].mlp.fc1.weight
    assert fc1.std().item() == pytest.approx(
        math.sqrt(2 / sum(fc1.shape)), rel=0.05)


def test_vitdet_neck_norm_eps_and_conv_init():
    neck = ViTFeaturePyramid(64, 32, norm_eps=1e-5)
    norms = [m for m in neck.modules() if isinstance(m, LayerNorm2d)]
    assert len(norms) == 9 and {m.eps for m in norms} == {1e-5}
    assert {m.eps for m in ViTFeaturePyramid(64, 32).modules()
            if isinstance(m, LayerNorm2d)} == {1e-6}
    # mmcv ConvModule's kaiming-normal, fan-out, ReLU gain
    torch.manual_seed(0)
    conv = ViTFeaturePyramid(256, 256).stages[2][2]  # identity level
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3)
    fan_out = conv.weight.shape[0] * 9
    assert conv.weight.std().item() == pytest.approx(
        math.sqrt(2 / fan_out), rel=0.03)


def test_vitdet_neck_without_conv_norm():
    """conv_norm=False: the 1x1 / 3x3 convs get zero biases and no
    LayerNorm (mmcv ConvModule with norm_cfg=None); the 4x level keeps the
    LayerNorm between its transposed convs; the default keeps the layer
    order (and so the state-dict keys) of ViTDet's pyramid."""
    torch.manual_seed(0)
    plain = ViTFeaturePyramid(64, 32, num_outs=5, conv_norm=False)
    normed = ViTFeaturePyramid(64, 32, num_outs=5)
    convs = [m for m in plain.modules() if type(m) is nn.Conv2d]
    assert len(convs) == 8
    assert all(c.bias is not None and not c.bias.any() for c in convs)
    assert all(c.bias is None for c in normed.modules()
               if type(c) is nn.Conv2d)
    norms = [m for m in plain.modules() if isinstance(m, LayerNorm2d)]
    assert norms == [plain.stages[0][1]]  # inside the 4x level only
    assert [k for k in normed.state_dict() if 'stages.2.' in k] == [
        'stages.2.0.weight', 'stages.2.1.weight', 'stages.2.1.bias',
        'stages.2.2.weight', 'stages.2.3.weight', 'stages.2.3.bias']
    x = (torch.randn(2, 64, 8, 8), )
    sizes = [tuple(o.shape) for o in plain(x)]
    assert sizes == [tuple(o.shape) for o in normed(x)] == [
        (2, 32, 32, 32), (2, 32, 16, 16), (2, 32, 8, 8), (2, 32, 4, 4),
        (2, 32, 2, 2)]
    # without the norms the output keeps the input's scale: twice the
    # input, twice the output (a LayerNorm would undo it)
    y = plain.stages[2](x[0])
    assert torch.allclose(plain.stages[2](2 * x[0]), 2 * y, atol=1e-5)


# ------------------------------------------------------------ ViTDet


@pytest.fixture(scope='module')
def vitdet_b():
    return _build(VITDET.format('scratch'))


def test_vitdet_configs_match_mmdet(vitdet_b):
    model, cfg = vitdet_b
    vit = model.backbone
    assert vit.pos_embed.shape == (1, 197, 768) and vit.pos_grid == (14, 14)
    assert vit.weight_init == 'trunc_normal'
    assert {m.eps for m in vit.blocks.modules()
            if isinstance(m, nn.LayerNorm)} == {1e-5}
    heads = [m for m in model.modules()
             if type(m).__name__ in ('LN2d', 'LayerNorm2d')]
    assert len(heads) == 9 + 4 + 4 and {m.eps for m in heads} == {1e-5}
    assert cfg.train_dataloader.sampler.type == 'DefaultSampler'
    assert cfg.optim_wrapper.dtype == 'float16'
    assert [h.type for h in cfg.custom_hooks] == ['FiniteLossHook',
                                                  'Fp16CompressionHook']
    # the pretrained initialisations keep their pretraining eps
    for init in ('mae', 'lomar', 'localmim'):
        backbone = Config.fromfile(osp.join(
            REPO, VITDET.format(init))).model.backbone
        assert backbone.norm_eps == 1e-6, init
    assert Config.fromfile(osp.join(
        REPO, VITDET.format('localmim'))).model.backbone.pos_embed_init == \
        'sincos'


def test_vitdet_weight_decay_groups_are_upstreams(vitdet_b):
    """mmdet's projects/ViTDet constructor exempts the backbone blocks'
    norms and pos_embed only (by name); its lr scale is 0.7 ** (13 - id)
    with id 0 for patch_embed / pos_embed, i + 1 for blocks.i, 13 else."""
    model, cfg = vitdet_b
    ow = build_optim_wrapper(model, _fp32(cfg.optim_wrapper))
    got = {}
    for g in ow.optimizer.param_groups:
        for p in g['params']:
            got[id(p)] = (g['weight_decay'], g['lr'])

    def upstream(name):
        no_decay = (name.startswith('backbone.blocks') and 'norm' in name) \
            or 'pos_embed' in name
        if 'patch_embed' in name or 'pos_embed' in name:
            layer = 0
        elif name.startswith('backbone.blocks.'):
            layer = int(name.split('.')[2]) + 1
        else:
            layer = 13
        return 0. if no_decay else 0.1, 1e-4 * 0.7**(13 - layer)

    trainable = [(n, p) for n, p in model.named_parameters()
                 if p.requires_grad]
    assert len(got) == len(trainable)
    for name, p in trainable:
        wd, lr = upstream(name)
        assert got[id(p)][0] == wd, name
        assert got[id(p)][1] == pytest.approx(lr, rel=1e-12), name
    no_decay = sum(p.numel() for n, p in trainable if got[id(p)][0] == 0)
    # 12 blocks x 2 LayerNorms x (weight + bias) x 768 + the 197 x 768 table
    assert no_decay == 12 * 2 * 2 * 768 + 197 * 768 == 188160
    toolkit = build_optim_wrapper(model, _fp32(
        cfg.optim_wrapper, paramwise_cfg=dict(layer_decay_rate=0.7)))
    assert sum(p.numel() for g in toolkit.optimizer.param_groups
               if g['weight_decay'] == 0 for p in g['params']) - \
        no_decay == 188592


def test_mmseg_weight_decay_rule_decays_tokens_and_tables():
    """mmseg's (and the BEiT-derived LocalMIM authors') constructor:
    no decay for 1-D parameters and '.bias' only; its ``name in
    ('pos_embed', 'cls_token')`` never matches the prefixed names."""
    model, cfg = _build('mmseg_configs/upernet/upernet_vit-tiny-p8-mae_1xb4-'
                        '200i_ade20k-128x128_synthetic.py',
                        **{'model.backbone.init_cfg': None})
    assert cfg.optim_wrapper.paramwise_cfg.weight_decay_rule == 'mmseg'
    ow = build_optim_wrapper(model, cfg.optim_wrapper)
    wd = {id(p): g['weight_decay'] for g in ow.optimizer.param_groups
          for p in g['params']}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        exempt = (len(p.shape) == 1 or name.endswith('.bias')
                  or name in ('pos_embed', 'cls_token'))
        assert wd[id(p)] == (0. if exempt else 0.05), name
    for name in ('backbone.pos_embed', 'backbone.cls_token',
                 'backbone.blocks.0.attn.relative_position_bias_table'):
        assert wd[id(model.get_parameter(name))] == 0.05
    with pytest.raises(ValueError, match='weight_decay_rule must be one of'):
        build_optim_wrapper(model, dict(
            cfg.optim_wrapper,
            paramwise_cfg=dict(layer_decay_rate=0.65,
                               weight_decay_rule='beit')))


# ------------------------------------------------------- fp16 hook


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_fp16_compression_hook_rounds_the_all_reduced_gradients():
    """Registered where mmdet's ViTDet config looks for it; on a DDP model
    the all-reduced gradients are the float16-rounded local ones (world
    size 1, gloo); without DDP it does nothing."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    with DefaultScope.overwrite_default_scope('mmdet'):
        assert isinstance(HOOKS.build(dict(type='Fp16CompressionHook')),
                          Fp16CompressionHook)
    torch.manual_seed(0)
    net = nn.Linear(16, 8)
    x = torch.randn(4, 16) * 3.3
    plain = Fp16CompressionHook()
    plain.before_train(SimpleNamespace(distributed=False, model=net))
    net(x).square().sum().backward()
    ref = net.weight.grad.clone()
    assert not torch.equal(ref.half().float(), ref)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:'
                            f'{_free_port()}', rank=0, world_size=1)
    try:
        ddp = DistributedDataParallel(net)
        net.zero_grad()
        ddp(x).square().sum().backward()
        assert torch.equal(net.weight.grad, ref)  # uncompressed
        Fp16CompressionHook().before_train(
            SimpleNamespace(distributed=True, model=ddp))
        net.zero_grad()
        ddp(x).square().sum().backward()
        assert torch.equal(net.weight.grad, ref.half().float())
    finally:
        dist.destroy_process_group()


# ----------------------------------------- LocalMIM authors' protocol


def test_feature2pyramid_pool():
    torch.manual_seed(0)
    bn = dict(type='BN', requires_grad=True)
    avg = Feature2PyramidPool(16, norm_cfg=bn, pool='avg').eval()
    mx = Feature2PyramidPool(16, norm_cfg=bn).eval()
    from mmseg.models.necks import Feature2Pyramid
    upstream = Feature2Pyramid(16, [4, 2, 1, 0.5], norm_cfg=bn).eval()
    upstream.load_state_dict(avg.state_dict())
    mx.load_state_dict(avg.state_dict())
    feats = [torch.randn(2, 16, 6, 8) for _ in range(4)]
    a, m, u = avg(feats), mx(feats), upstream(feats)
    for x, y in zip(m, u):
        assert torch.equal(x, y)
    assert torch.equal(a[3], F.avg_pool2d(feats[3], 2))
    for x, y in zip(a[:3], u[:3]):
        assert torch.equal(x, y)
    with pytest.raises(ValueError, match="pool must be one of"):
        Feature2PyramidPool(16, pool='mean')


def _authors_tiny(tmp_path):
    """The authors' config with a 12-block 64-d ViT and narrow heads (every
    other setting as written), its checkpoint one without pos_embed."""
    small = {
        'model.data_preprocessor.size': (64, 64),
        'model.backbone.arch': dict(_delete_=True, embed_dims=64, depth=12,
                                    num_heads=2),
        'model.backbone.img_size': 64,
        'model.neck.embed_dim': 64,
        'model.decode_head.in_channels': [64] * 4,
        'model.decode_head.channels': 32,
        'model.auxiliary_head.in_channels': 64,
        'model.auxiliary_head.channels': 16,
    }
    model, cfg = _build(AUTHORS, **small, **{'model.backbone.init_cfg': None})
    model.backbone.init_weights()
    state = {k: v.normal_() for k, v in model.backbone.state_dict().items()
             if k != 'pos_embed'}
    small['model.backbone.init_cfg.checkpoint'] = _save(tmp_path, state)
    model, cfg = _build(AUTHORS, **small)
    model.init_weights()
    return model, cfg, state


def test_localmim_authors_config_runs_one_step(tmp_path):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    model, cfg, state = _authors_tiny(tmp_path)
    vit = model.backbone
    assert (vit.tap_norms, vit.final_norm, vit.pos_embed_mode,
            vit.pos_embed_init) == (None, False, 'learned', 'sincos')
    assert type(model.neck).__name__ == 'Feature2PyramidPool'
    assert model.neck.pool == 'avg'
    # loaded weights, the learned table started from the 14 x 14 sin-cos
    assert torch.equal(vit.blocks[5].mlp.fc1.weight,
                       state['blocks.5.mlp.fc1.weight'])
    assert torch.allclose(vit.pos_embed[0, 1:], _bicubic(
        sincos_pos_embed_2d(64, 14, 14), (14, 14), (4, 4)), atol=1e-6)
    assert vit.pos_embed.requires_grad and vit.pos_embed[0, 0].eq(0).all()
    # raw block outputs of blocks 1, 3, 9, 11: no LayerNorm
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        tokens, grid = vit.patch_embed(x)
        cls = (vit.cls_token + vit.pos_embed[:, :1]).expand(2, -1, -1)
        t = torch.cat([cls, tokens + vit.pos_embed[:, 1:]], 1)
        raw = []
        for blk in vit.blocks:
            t = blk(t, grid)
            raw.append(t[:, 1:].transpose(1, 2).reshape(2, 64, *grid))
        outs = vit(x)
        pyramid = model.neck(outs)
    for got, i in zip(outs, (1, 3, 9, 11)):
        assert torch.allclose(got, raw[i], atol=1e-5)
    assert torch.equal(pyramid[3], F.avg_pool2d(outs[3], 2))
    # one training step through mmseg's train_step
    model.train()
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(64, 64),
                                        pad_shape=(64, 64),
                                        ori_shape=(64, 64)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, 64, 64)))
        samples.append(s)
    data = dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
                        for _ in range(2)], data_samples=samples)
    ow = build_optim_wrapper(model, _fp32(cfg.optim_wrapper))
    before = vit.pos_embed.detach().clone()
    losses = model.train_step(data, ow)
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert not torch.equal(vit.pos_embed, before)  # learned


def test_localmim_authors_schedule_is_mmcv_poly_with_warmup():
    """Their mmcv 0.x lr_config (poly over all 160k iterations, power 1,
    linear warm-up from 1e-6 over 1500 scaling it) as mmengine schedulers;
    mmseg's MAE schedule starts its poly after the warm-up instead."""
    cfg = Config.fromfile(osp.join(REPO, AUTHORS))
    assert cfg.randomness.seed == 0
    assert cfg.optim_wrapper.optimizer.lr == 4e-4
    assert cfg.optim_wrapper.paramwise_cfg == dict(
        layer_decay_rate=0.65, weight_decay_rule='mmseg')
    net = nn.Linear(2, 2)
    opt = torch.optim.AdamW(net.parameters(), lr=4e-4)
    from mmengine.optim import OptimWrapper
    ow = OptimWrapper(opt)
    schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=ow))
                  for s in cfg.param_scheduler]

    def mmcv(i):
        poly = 4e-4 * (1 - i / 160000)
        if i >= 1500:
            return poly
        return poly * (1 - (1 - i / 1500) * (1 - 1e-6))

    for i in range(2001):
        if i in (0, 1, 750, 1499, 1500, 2000):
            assert opt.param_groups[0]['lr'] == pytest.approx(
                mmcv(i), rel=1e-6), i
        for s in schedulers:
            s.step()


def test_project_localmim_protocol_departs_in_three_points():
    authors = Config.fromfile(osp.join(REPO, AUTHORS))
    ours = Config.fromfile(osp.join(REPO, OURS))
    a, o = authors.model.backbone, ours.model.backbone
    assert (o.tap_norms, o.pos_embed, o.pos_embed_init,
            ours.model.neck.pool) == (True, 'sincos', None, 'max')
    assert (a.tap_norms, a.pos_embed, a.pos_embed_init,
            authors.model.neck.pool) == (False, 'learned', 'sincos', 'avg')
    for key in ('out_indices', 'rel_pos', 'layer_scale_init',
                'drop_path_rate', 'norm_eps', 'init_cfg'):
        assert a.get(key) == o.get(key), key
    assert ours.optim_wrapper == authors.optim_wrapper
    assert ours.param_scheduler == authors.param_scheduler


def test_swin_transfer_configs_have_the_authors_settings():
    """The Swin-B UperNet config against the values of the authors'
    semantic_segmentation/configs/upernet_swin_base_12_512_slide_160k_
    ade20k.py (Haoqing-Wang/LocalMIM 314a6e5), written out here."""
    cfg = Config.fromfile(osp.join(
        REPO, 'mmseg_configs/localmim_swin/upernet_swin-b-p4-w7_localmim-'
        'pt_8xb2-160k_ade20k-512x512.py'))
    bb = cfg.model.backbone
    assert (bb.embed_dims, list(bb.depths), list(bb.num_heads),
            bb.window_size) == (128, [2, 2, 18, 2], [4, 8, 16, 32], 7)
    assert bb.drop_path_rate == 0.3 and not bb.use_abs_pos_embed
    assert bb.norm_cfg.type == 'LN' and 'eps' not in bb.norm_cfg  # 1e-5
    assert cfg.model.decode_head.channels == 512
    assert cfg.model.auxiliary_head.loss_decode.loss_weight == 0.4
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, tuple(opt.betas), opt.weight_decay) == (
        'AdamW', 6e-5, (0.9, 0.999), 0.01)
    keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
    assert {k: v.decay_mult for k, v in keys.items()} == {
        'absolute_pos_embed': 0., 'relative_position_bias_table': 0.,
        'norm': 0.}
    warm, poly = cfg.param_scheduler
    assert (warm.type, warm.start_factor, warm.end) == ('LinearLR', 1e-6,
                                                        1500)
    assert (poly.type, poly.power, poly.eta_min, poly.end) == (
        'PolyLR', 1.0, 0.0, 160000)
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs
    assert cfg.randomness.seed == 0
    assert 'optimizer' in cfg.optim_wrapper and cfg.optim_wrapper.get(
        'type', 'OptimWrapper') == 'OptimWrapper'  # fp32
