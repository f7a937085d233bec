"""Mixed precision, operation by operation: what stays float32, what reaches
scaled_dot_product_attention, mmcv's ops, the optimizer wrapper and the
non-finite guard (CPU autocast reaches the same dtype rules as a GPU's)."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from test_bad_inputs import _toy_runner

import mim_pretrain  # noqa: F401
from mim_pretrain.engine.amp import (MixedPrecisionOptimWrapper,
                                     resolve_amp_dtype)
from mim_pretrain.engine.hooks import nonfinite_grads
from mim_pretrain.models import HOGTarget, PixelTarget
from mim_pretrain.models import vit as vit_module
from mim_pretrain.models.vit import VisionTransformer

LOW = (torch.bfloat16, torch.float16)


def autocast(dtype):
    return torch.autocast('cpu', dtype=dtype)


@pytest.mark.parametrize('dtype', LOW)
def test_targets_are_float32_and_equal_under_autocast(dtype):
    """HOG (a scatter into a float32 histogram: it failed under autocast)
    and normalised pixels come out float32 and equal to the fp32 run."""
    torch.manual_seed(0)
    img = torch.randn(2, 3, 32, 32)
    for target in (HOGTarget(nbins=9), PixelTarget()):
        ref = target.multi_scale(img, [4, 8, 16])
        with autocast(dtype):
            low = target.multi_scale(img, [4, 8, 16])
        for r, x in zip(ref, low):
            assert x.dtype == torch.float32
            torch.testing.assert_close(x, r, rtol=0, atol=0)


def _record_sdpa(monkeypatch, module):
    seen = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):
        seen.append((q.dtype, None if attn_mask is None else attn_mask.dtype,
                     None if attn_mask is None else attn_mask.requires_grad))
        return real(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(module.F, 'scaled_dot_product_attention', spy)
    return seen


@pytest.mark.parametrize('dtype', LOW)
@pytest.mark.parametrize('kind', [
    dict(irpe=dict()),
    dict(rel_pos='decomposed', pos_embed='learned'),
    dict(rel_pos='beit'),
    dict(rel_pos='decomposed', window_size=4, global_blocks=(1, ),
         pos_embed='learned'),
    dict(irpe=dict(num_prefix=1), window_size=4, global_blocks=(1, )),
])
def test_position_biases_reach_sdpa_in_the_query_dtype(
        kind, dtype, monkeypatch):
    """iRPE, decomposed and BEiT relative position, windowed or global:
    the additive bias has the query's dtype (the fused kernels need it)
    and carries its gradient to the tables."""
    seen = _record_sdpa(monkeypatch, vit_module)
    windowed = kind.get('window_size', 0) > 0
    vit = VisionTransformer(
        arch=dict(embed_dims=32, depth=2, num_heads=2), patch_size=8,
        img_size=64, **kind)
    vit.init_weights()
    for p in vit.parameters():  # non-zero tables, so gradients show up
        if p.ndim >= 2 and not p.abs().sum():
            torch.nn.init.normal_(p, std=0.02)
    tokens, grid = vit.embed(torch.randn(2, 3, 64, 64))
    with autocast(dtype):
        if windowed:
            out = vit.forward_blocks(tokens, grid)[0]
        else:
            out = vit.encode_all(tokens, grid)
        # summed, not averaged: an unscaled fp16 mean underflows here
        out.float().pow(2).sum().backward()
    assert seen and all(q == m for q, m, _ in seen), seen
    assert all(q == dtype and grad for q, _, grad in seen), seen
    tables = [p for n, p in vit.named_parameters() if any(
        k in n for k in ('lookup_table', 'rel_pos', 'relative_position'))]
    assert tables and all(p.grad is not None and p.grad.dtype ==
                          torch.float32 and p.grad.abs().sum() > 0
                          for p in tables)


@pytest.mark.parametrize('dtype', LOW)
def test_lomar_loss_is_float32_and_matches_fp32(dtype):
    """The head's target and loss run in float32 under autocast; the loss
    of the bf16/fp16 prediction equals the fp32 formula on that
    prediction."""
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='LoMaR',
        backbone=dict(type='LoMaRViT', arch=dict(embed_dims=32, depth=2,
                                                 num_heads=2),
                      patch_size=8, window_size=3, num_windows=2),
        head=dict(type='LoMaRHead', embed_dims=32, patch_size=8)))
    model.init_weights()
    imgs = torch.randn(2, 3, 48, 48)
    with autocast(dtype):
        feats, mask, index = model.backbone(imgs)
        pred = model.head(feats)
        loss = model.head.loss(feats, imgs, index, mask)
    assert pred.dtype == dtype and loss.dtype == torch.float32
    target = model.head.construct_target(imgs, index)
    err = (pred.float() - target).pow(2).mean(-1)
    want = (err * mask).sum() / mask.sum()
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-6)


def test_mmcv_ops_take_bfloat16_features():
    """RoI extraction and NMS under bf16: they ran into mmcv's float32-only
    kernels; the RoI extractor now works in float32 (RoIs not rounded to
    bf16) and returns bf16, NMS keeps the same boxes."""
    from mmcv.ops import batched_nms
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    torch.manual_seed(0)
    extractor = SingleRoIExtractor(
        roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
        out_channels=8, featmap_strides=[4, 8])
    feats = [torch.randn(1, 8, 64, 64), torch.randn(1, 8, 32, 32)]
    xy = torch.rand(20, 2) * 150
    rois = torch.cat([torch.zeros(20, 1), xy, xy + 10 + torch.rand(20, 2) *
                      90], 1)
    ref = extractor(feats, rois)
    low = extractor([f.bfloat16() for f in feats], rois)
    assert low.dtype == torch.bfloat16
    ref_low = extractor([f.bfloat16().float() for f in feats], rois)
    torch.testing.assert_close(low.float(), ref_low, rtol=1e-2, atol=1e-2)
    assert (low.float() - ref).abs().max() < 0.05
    boxes, scores = rois[:, 1:], torch.rand(20)
    idxs = torch.zeros(20, dtype=torch.long)
    nms_cfg = dict(type='nms', iou_threshold=0.5)
    _, keep = batched_nms(boxes, scores, idxs, nms_cfg)
    _, keep_low = batched_nms(boxes.bfloat16(), scores.bfloat16(), idxs,
                              nms_cfg)
    assert keep_low.numel() > 0 and set(keep_low.tolist()) <= set(
        range(20))


def test_amp_dtype_resolution(monkeypatch):
    assert resolve_amp_dtype('auto', 'cpu') == torch.bfloat16
    assert resolve_amp_dtype(None, 'cpu') == torch.bfloat16
    assert resolve_amp_dtype('float16', 'cpu') == torch.float16
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda *a:
                        (7, 0))  # V100: no native bf16
    assert resolve_amp_dtype('auto', 'cuda') == torch.float16
    with pytest.raises(ValueError, match='compute capability'):
        resolve_amp_dtype('bfloat16', 'cuda')
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda *a:
                        (9, 0))  # H100 / H200
    assert resolve_amp_dtype('auto', 'cuda') == torch.bfloat16
    with pytest.raises(ValueError, match="one of .*'float16'"):
        resolve_amp_dtype('float8', 'cpu')


def _wrapper(dtype, **kw):
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, fused=True)
    return model, MixedPrecisionOptimWrapper(optimizer=opt, dtype=dtype,
                                             device='cpu', **kw)


def test_wrapper_autocasts_and_keeps_float32_state():
    for dtype, scaled in (('bfloat16', False), ('float16', True)):
        model, wrapper = _wrapper(dtype)
        assert (wrapper.loss_scaler is not None) == scaled
        with wrapper.optim_context(model):
            out = model(torch.randn(3, 4))
        assert out.dtype == getattr(torch, dtype)
        wrapper.update_params(out.float().pow(2).mean())
        assert model.weight.dtype == torch.float32
        state = wrapper.optimizer.state[model.weight]
        assert state['exp_avg'].dtype == torch.float32
        saved = wrapper.state_dict()
        assert ('loss_scaler' in saved) == scaled
        # a checkpoint of either kind resumes under the other
        _, other = _wrapper('float16' if dtype == 'bfloat16' else 'bfloat16')
        other.load_state_dict(saved)


def test_nonfinite_grads_flag_on_the_device():
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.AdamW(model.parameters(), fused=True)
    model(torch.ones(1, 3)).sum().backward()
    assert nonfinite_grads(opt).item() == 0
    model.bias.grad[0] = float('inf')
    assert nonfinite_grads(opt).item() == 1
    model.bias.grad[0] = float('nan')
    assert nonfinite_grads(opt).item() == 1


@pytest.fixture
def keep_default_scope():
    with DefaultScope.overwrite_default_scope('mmengine'):
        yield


def test_guard_with_a_fused_optimizer_never_syncs_before_the_step(
        tmp_path, monkeypatch, keep_default_scope):
    """Fused AdamW: the non-finite step is skipped inside the optimizer
    (found_inf), the weights and moments stay as they were, and the guard
    reads nothing on the host before the step."""
    from mmengine.hooks import Hook
    runner = _toy_runner(tmp_path, 'stop', {3},
                         dict(type='AdamW', lr=0.1, fused=True))
    snapshot, inside = {}, []

    class Probe(Hook):

        def before_train(self, runner):
            optim = runner.optim_wrapper.optimizer
            real_step = optim.step

            def step(*a, **k):
                assert getattr(optim, 'found_inf', None) is not None
                inside.append(True)
                try:
                    return real_step(*a, **k)
                finally:
                    inside.pop()

            optim.step = step

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if runner.iter == 2:  # before the bad (third) iteration
                optim = runner.optim_wrapper.optimizer
                snapshot.update({k: v.clone() for k, v in
                                 runner.model.state_dict().items()})
                snapshot['exp_avg'] = optim.state[
                    runner.model.fc.weight]['exp_avg'].clone()

    runner.register_hook(Probe(), 'LOWEST')
    real_item = torch.Tensor.item

    def no_item_in_step(self):
        if inside:
            raise AssertionError('host sync inside the guarded step')
        return real_item(self)

    monkeypatch.setattr(torch.Tensor, 'item', no_item_in_step)
    with pytest.raises(FloatingPointError, match='iteration 3'):
        runner.train()
    optim = runner.optim_wrapper.optimizer
    weight = runner.model.fc.weight
    for k, v in runner.model.state_dict().items():
        torch.testing.assert_close(v, snapshot[k])
    torch.testing.assert_close(optim.state[weight]['exp_avg'],
                               snapshot['exp_avg'])
    assert int(optim.state[weight]['step']) == 2


@pytest.mark.parametrize('fused', [True, False])
def test_guard_skips_and_counts(tmp_path, fused, keep_default_scope):
    runner = _toy_runner(tmp_path, 'skip', {3, 6},
                         dict(type='AdamW', lr=0.1, fused=fused))
    runner.train()
    assert runner.iter == 8
    assert runner.message_hub.get_info('skipped_nonfinite_steps') == 2
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())
    weight = runner.model.fc.weight
    assert int(runner.optim_wrapper.optimizer.state[weight]['step']) == 6
