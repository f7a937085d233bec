"""ImageNet classification configs: the full-size fine-tuning and
linear-probing recipes build with their real hyperparameters (layer-decay
groups, LoMaR's position encoding, frozen backbones), pretraining
checkpoints load into the classifiers tensor for tensor, and the tiny
configs train and test through the real tools, scored by mmpretrain's
``Accuracy``."""
import json
import os.path as osp

import pytest
import torch
from conftest import NO_WORKERS, build_model
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mim_pretrain.apis import collect_run, markdown_table, read_metrics
from mim_pretrain.apis import test_main as run_test_tool
from mim_pretrain.apis import train_main
from mim_pretrain.converters.vit import convert_mmpretrain_vit

CFG = 'mmpretrain_configs/{}/benchmarks/{}'
FULL = {
    'lomar-ft': CFG.format('lomar', 'lomar_vit-base-p16_ft-8xb128-amp-'
                           'coslr-100e_in1k.py'),
    'localmim-ft': CFG.format('localmim', 'localmim_vit-base-p16_ft-8xb128-'
                              'amp-coslr-100e_in1k.py'),
    'localmim-swin-ft': CFG.format('localmim', 'localmim_swin-base-w7_ft-'
                                   '8xb128-amp-coslr-100e_in1k.py'),
    'mae-ft': CFG.format('mae', 'mae_vit-base-p16_ft-8xb128-amp-coslr-'
                         '100e_in1k.py'),
    'lomar-linear': CFG.format('lomar', 'lomar_vit-base-p16_linear-8xb2048-'
                               'amp-coslr-90e_in1k.py'),
    'localmim-linear': CFG.format('localmim', 'localmim_vit-base-p16_linear-'
                                  '8xb2048-amp-coslr-90e_in1k.py'),
    'mae-linear': CFG.format('mae', 'mae_vit-base-p16_linear-8xb2048-amp-'
                             'coslr-90e_in1k.py'),
}
TINY = {
    f'{m}-{kind}': CFG.format(m, f'{m}_vit-tiny-p8_{kind}-1xb32-10e_'
                              'synthetic.py')
    for m in ('lomar', 'localmim', 'mae') for kind in ('ft', 'linear')
}
TINY['localmim-swin-ft'] = CFG.format(
    'localmim', 'localmim_swin-tiny-w3_ft-1xb32-10e_synthetic.py')
# the tiny pretraining config whose encoder each tiny classifier loads
PRETRAIN = {
    'lomar': 'mmpretrain_configs/lomar/lomar_vit-tiny-p8_1xb32-20e_'
    'synthetic.py',
    'localmim': 'mmpretrain_configs/localmim/localmim_vit-tiny-p8_1xb32-20e_'
    'synthetic.py',
    'localmim-swin': 'mmpretrain_configs/localmim/localmim_swin-tiny-w3_'
    '1xb32-20e_synthetic.py',
    'mae': 'mmpretrain_configs/mae/mae_vit-tiny-p8_1xb32-20e_synthetic.py',
}
# the papers' recipes: (lr, layer decay, warm-up epochs, final lr)
RECIPES = {
    'lomar-ft': (2e-3, 0.65, 5, 1e-6),
    'mae-ft': (2e-3, 0.65, 5, 1e-6),
    'localmim-ft': (2e-3, 0.65, 20, 1e-5),
    'localmim-swin-ft': (4e-3, 0.9, 20, 2.5e-7),
}


def _method(name: str) -> str:
    return name.rsplit('-', 1)[0]


def _group_of(wrapper, param):
    groups = [g for g in wrapper.optimizer.param_groups
              if any(p is param for p in g['params'])]
    assert len(groups) == 1
    return groups[0]


@pytest.mark.parametrize('name', sorted(FULL))
def test_full_size_config_builds_with_its_recipe(name):
    model, cfg = build_model(FULL[name])
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # ViT-B/16 86.6M with a 1000-class head (LoMaR: no position table, its
    # iRPE tables instead); Swin-B 87.8M
    want = 87.8e6 if 'swin' in name else 86.5e6
    assert abs(total - want) < 0.2e6, total
    assert cfg.model.head.num_classes == 1000
    assert cfg.train_cfg.type == 'ResumableEpochBasedTrainLoop'
    assert cfg.optim_wrapper.type == 'MixedPrecisionOptimWrapper'
    if name.endswith('linear'):
        # frozen backbone: the head (768 x 1000 + 1000) and nothing else;
        # the BatchNorm has no affine parameters
        assert trainable == 768 * 1000 + 1000
        assert cfg.train_cfg.max_epochs == 90
        assert cfg.optim_wrapper.optimizer.type == 'LARS'
        assert cfg.optim_wrapper.optimizer.lr == pytest.approx(6.4)
        assert cfg.model.neck.type == 'ClsBatchNormNeck'
        assert not model.neck.bn.affine
        return
    assert cfg.train_cfg.max_epochs == 100
    lr, decay, warmup, final = RECIPES[name]
    warm, cosine = cfg.param_scheduler
    assert (warm.end, cosine.begin, cosine.end) == (warmup, warmup, 100)
    assert cosine.eta_min == pytest.approx(final)
    assert cfg.model.backbone.drop_path_rate == 0.1
    assert [a.type for a in cfg.model.train_cfg.augments] == ['Mixup',
                                                              'CutMix']
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert wrapper.optimizer.defaults['lr'] == pytest.approx(lr)
    depth = 24 if 'swin' in name else 12
    embed = _group_of(wrapper, model.backbone.patch_embed.projection.weight
                      if 'swin' in name else
                      model.backbone.patch_embed.proj.weight)
    head = _group_of(wrapper, model.head.fc.weight)
    assert embed['lr'] == pytest.approx(lr * decay**(depth + 1))
    assert head['lr'] == pytest.approx(lr)
    assert head['weight_decay'] == 0.05
    if 'swin' in name:
        # the authors' Swin layer ids: a stage's patch merging goes with its
        # last block; biases and 1-D parameters get no weight decay
        merge = _group_of(wrapper,
                          model.backbone.stages[0].downsample.reduction.weight)
        assert merge['lr'] == pytest.approx(lr * decay**(depth + 1 - 2))
        bias = _group_of(wrapper, model.head.fc.bias)
        assert bias['weight_decay'] == 0.
        return
    first = _group_of(wrapper, model.backbone.blocks[0].attn.qkv.weight)
    assert first['lr'] == pytest.approx(lr * decay**depth)
    assert _group_of(wrapper, model.backbone.fc_norm.weight)['lr'] == \
        pytest.approx(lr)
    assert _group_of(wrapper, model.backbone.cls_token)['weight_decay'] == 0.


def test_lomar_finetune_backbone_keeps_irpe_and_no_absolute_position():
    model, cfg = build_model(FULL['lomar-ft'])
    vit = model.backbone
    assert cfg.model.backbone.pos_embed == 'none'
    assert not hasattr(vit, 'pos_embed')
    assert not any('pos_embed' in k for k in vit.state_dict())
    tables = [k for k in vit.state_dict() if k.endswith('lookup_table_weight')]
    assert len(tables) == 12
    assert vit.blocks[0].attn.rpe_k.lookup_table_weight.shape == (1, 64, 50)
    # mean pooling through the new fc_norm; the final norm is left unused
    assert vit.out_type == 'avg_featmap' and vit.fc_norm is not None
    assert not vit.norm.weight.requires_grad
    vit.eval()
    with torch.no_grad():  # iRPE on a 4 x 3 grid, no position table
        out, = vit(torch.randn(2, 3, 64, 48))
    assert out.shape == (2, 768)


def test_backbone_output_options_are_checked():
    from mim_pretrain.models import MIMVisionTransformer
    arch = dict(embed_dims=32, depth=2, num_heads=2)
    with pytest.raises(ValueError, match='out_type must be one of'):
        MIMVisionTransformer(arch=arch, out_type='pooled')
    with pytest.raises(ValueError, match='needs with_cls_token=True'):
        MIMVisionTransformer(arch=arch, out_type='cls_token',
                             with_cls_token=False)
    with pytest.raises(ValueError, match='fc_norm normalises'):
        MIMVisionTransformer(arch=arch, fc_norm=True)
    with pytest.raises(ValueError, match=r'frozen_stages must be .* \[0, 2\]'):
        MIMVisionTransformer(arch=arch, frozen_stages=3)
    # partly frozen: patch embedding, tokens and block 0; eval mode kept
    vit = MIMVisionTransformer(arch=arch, frozen_stages=1)
    vit.train()
    frozen = {k for k, p in vit.named_parameters() if not p.requires_grad}
    assert {'cls_token', 'pos_embed', 'patch_embed.proj.weight'} <= frozen
    assert all(k in frozen for k, _ in vit.blocks[0].named_parameters(
        prefix='blocks.0'))
    assert not any(k.startswith('blocks.1.') for k in frozen)
    assert not vit.blocks[0].training and vit.blocks[1].training
    x = torch.randn(2, 3, 32, 32)
    for out_type in ('cls_token', 'avg_featmap'):
        vit = MIMVisionTransformer(
            arch=arch, patch_size=8, img_size=32, out_type=out_type,
            final_norm=out_type == 'cls_token',
            fc_norm=out_type == 'avg_featmap')
        vit.init_weights()
        vit.eval()
        with torch.no_grad():
            for p in vit.parameters():  # no identity norms
                p.add_(torch.randn_like(p) * 0.1)
            out, = vit(x)
            tokens, _ = vit.embed(x)
            cls = vit.cls_token.expand(2, -1, -1) + vit.cls_position()
            normed, (raw, ) = vit.forward_blocks(
                torch.cat([cls, tokens], 1), (4, 4), [1])
            # cls token after the final norm; or the mean of the raw patch
            # tokens through fc_norm
            ref = (normed[:, 0] if out_type == 'cls_token' else
                   vit.fc_norm(raw[:, 1:].mean(1)))
        assert out.shape == (2, 32)
        torch.testing.assert_close(out, ref)


def _pretraining_checkpoint(method: str, path: str) -> dict:
    """A tiny pretraining model's weights written as a training checkpoint
    (``state_dict``, the pretraining model's names); returns the state."""
    torch.manual_seed(0)
    model, _ = build_model(PRETRAIN[method])
    model.init_weights()
    with torch.no_grad():
        for p in model.parameters():  # not the init's ones and zeros
            p.add_(torch.randn_like(p) * 0.01)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save({'state_dict': state, 'meta': {}}, path)
    return state


@pytest.mark.parametrize('name', sorted(TINY))
def test_pretraining_checkpoint_loads_into_the_classifier(name, tmp_path):
    """Every encoder tensor of the classifier's backbone comes from the
    tiny pretraining checkpoint, unchanged (MAE's mmpretrain names mapped),
    except what pretraining has none of: LoMaR/LocalMIM fine-tuning's new
    fc_norm, LocalMIM's learned position table (its sin-cos start)."""
    method = _method(name)
    ckpt = str(tmp_path / 'pretrain.pth')
    state = _pretraining_checkpoint(method, ckpt)
    state = {k[len('backbone.'):]: v for k, v in state.items()
             if k.startswith('backbone.')}
    if method == 'mae':
        state, _ = convert_mmpretrain_vit(state)
    model, _ = build_model(TINY[name], **{
        'model.backbone.init_cfg.checkpoint': ckpt})
    model.init_weights()
    own = model.backbone.state_dict()
    new = {k for k in own if k.startswith('fc_norm.')}
    # fine-tuning learns a position table (linear probing: fixed sin-cos)
    learned = method == 'localmim' and name.endswith('ft')
    if learned:
        new |= {'pos_embed'}
    if method == 'localmim-swin':
        # mmpretrain's Swin keeps its relative position index as a buffer
        new |= {k for k in own if k.endswith('relative_position_index')}
    missing = sorted(set(own) - set(state) - new)
    assert missing == []
    for key in set(own) - new:
        torch.testing.assert_close(own[key], state[key], msg=key)
    if learned:
        # the learned table starts from the 12 x 12 sin-cos pretraining used
        from mim_pretrain.models import sincos_pos_embed_2d
        torch.testing.assert_close(own['pos_embed'][0, 1:],
                                   sincos_pos_embed_2d(192, 12, 12))


def _batch(n: int = 4, size: int = 96):
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (3, size, size), generator=g,
                            dtype=torch.uint8) for _ in range(n)]
    samples = [DataSample().set_gt_label(i % 6) for i in range(n)]
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('method', ['lomar', 'mae'])
def test_linear_probe_keeps_the_backbone_frozen(method):
    model, cfg = build_model(TINY[f'{method}-linear'],
                             **{'model.backbone.init_cfg': None})
    model.init_weights()
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head = model.head.layers.head.weight.clone()
    mean = model.neck.bn.running_mean.clone()
    model.train()
    # frozen blocks stay in eval mode (no drop path) while the head trains
    assert not any(m.training for m in model.backbone.modules())
    assert model.neck.training and model.head.training
    for _ in range(2):
        losses = model.train_step(_batch(), wrapper)
        assert torch.isfinite(losses['loss'])
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, backbone[key]), key
    assert not torch.equal(model.head.layers.head.weight, head)
    assert not torch.equal(model.neck.bn.running_mean, mean)
    assert all(p.grad is None for p in model.backbone.parameters())


def _cls_options(root: str, ckpt: str) -> list:
    return [
        f'train_dataloader.dataset.data_root={root}/imagenet',
        f'val_dataloader.dataset.data_root={root}/imagenet',
        f'test_dataloader.dataset.data_root={root}/imagenet',
        'train_dataloader.batch_size=8', 'train_dataloader.dataset.indices=16',
        'val_dataloader.batch_size=8', 'test_dataloader.batch_size=8',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1', 'randomness.seed=0',
        f'model.backbone.init_cfg.checkpoint={ckpt}',
        *[f'{s}_dataloader.{o}' for s in ('train', 'val', 'test')
          for o in NO_WORKERS]
    ]


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(TINY))
def test_tiny_config_trains_and_tests(name, synthetic_data, tmp_path):
    """tools/train.py from a tiny pretraining checkpoint (2 steps and a
    validation), then tools/test.py of the checkpoint it wrote: top-1 from
    mmpretrain's Accuracy, read back as collect_results reads it."""
    root, summary = synthetic_data
    ckpt = str(tmp_path / 'pretrain.pth')
    _pretraining_checkpoint(_method(name), ckpt)
    work = str(tmp_path / 'cls')
    options = _cls_options(root, ckpt)
    with DefaultScope.overwrite_default_scope('mmengine'):
        runner = train_main([TINY[name], '--work-dir', work,
                             '--cfg-options', *options,
                             f'experiment_name=train-{name}'])
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 2 and all(map(torch.isfinite, torch.tensor(losses)))
    with DefaultScope.overwrite_default_scope('mmengine'):
        metrics = run_test_tool([
            TINY[name], osp.join(work, 'epoch_1.pth'), '--work-dir', work,
            '--out-metrics', osp.join(work, 'test_metrics.json'),
            '--cfg-options', *options, f'experiment_name=test-{name}'])
    assert 0. <= metrics['accuracy/top1'] <= 100.
    # mmpretrain's Accuracy over the whole built-in validation split
    n_val = summary['imagenet']['val']['num_images']
    assert round(metrics['accuracy/top1'] * n_val / 100) == pytest.approx(
        metrics['accuracy/top1'] * n_val / 100, abs=1e-3)
    assert read_metrics(work, ['accuracy/top1'])['accuracy/top1'] == \
        metrics['accuracy/top1']


def test_collect_results_reads_top1(tmp_path):
    """cls/ (tools/test.py --out-metrics) and cls_linear/ (only the
    validation of its training) are read as box AP and mIoU are; a run
    without them keeps the detection/segmentation table."""
    run = tmp_path / 'lomar'
    (run / 'cls').mkdir(parents=True)
    (run / 'cls' / 'test_metrics.json').write_text(
        json.dumps({'accuracy/top1': 84.1, 'accuracy/top5': 96.9}))
    vis = run / 'cls_linear' / '20260101_000000' / 'vis_data'
    vis.mkdir(parents=True)
    lines = [{'accuracy/top1': 60.0, 'step': 45},
             {'accuracy/top1': 67.5, 'step': 90}]
    (vis / 'scalars.json').write_text(
        '\n'.join(json.dumps(x) for x in lines) + '\n')
    (run / 'seg').mkdir()
    (run / 'seg' / 'test_metrics.json').write_text(json.dumps({'mIoU': 48.}))
    row = collect_run(str(run))
    assert row['metrics']['cls']['accuracy/top1'] == 84.1
    assert row['metrics']['cls']['kind'] == 'test'
    assert row['metrics']['cls_linear']['accuracy/top1'] == 67.5
    assert row['metrics']['cls_linear']['kind'] == 'val'
    table = markdown_table([row])
    assert 'top-1 (fine-tune) | top-1 (linear)' in table
    assert '| 48.0 | 84.1 | 67.5 |' in table
    other = tmp_path / 'mae'
    (other / 'seg').mkdir(parents=True)
    (other / 'seg' / 'test_metrics.json').write_text(json.dumps({'mIoU': 47}))
    assert 'top-1' not in markdown_table([collect_run(str(other))])
    assert markdown_table([row, collect_run(str(other))]).endswith(
        '| 47.0 | - | - |')
    (run / 'cls' / 'test_metrics.json').write_text(json.dumps({'x': 1}))
    with pytest.raises(ValueError, match="no metrics \\['accuracy/top1'\\]"):
        collect_run(str(run))


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(FULL))
def test_full_size_config_steps_at_224(name):
    """One forward/backward of the full-size classifier, batch 1 (2 for
    linear probing: its BatchNorm needs two samples in training), 224 px,
    through the data preprocessor and the loss (Mixup/CutMix included)."""
    cfg = Config.fromfile(osp.join(osp.dirname(osp.dirname(
        osp.abspath(__file__))), FULL[name]))
    model, _ = build_model(FULL[name], **{
        'model.data_preprocessor': cfg.data_preprocessor,
        'model.backbone.init_cfg': None})
    model.init_weights()
    model.train()
    n = 2 if name.endswith('linear') else 1
    data = model.data_preprocessor(_batch(n, 224), training=True)
    assert data['inputs'].shape == (n, 3, 224, 224)
    losses = model(**data, mode='loss')
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if name.endswith('linear'):
        assert all(p.grad is None for p in model.backbone.parameters())


def test_tiny_configs_only_shrink_the_full_ones(repo_root):
    """The tiny configs keep the full configs' recipe: optimizer, lr, layer
    decay, augmentation, feature and freezing."""
    for name, tiny in TINY.items():
        small = Config.fromfile(osp.join(repo_root, tiny))
        full = Config.fromfile(osp.join(repo_root, FULL[name]))
        assert small.optim_wrapper.optimizer == full.optim_wrapper.optimizer
        assert small.optim_wrapper.get('paramwise_cfg') == \
            full.optim_wrapper.get('paramwise_cfg')
        assert small.model.get('train_cfg') == full.model.get('train_cfg')
        assert small.model.head.loss == full.model.head.loss
        for key in ('out_type', 'final_norm', 'fc_norm', 'pos_embed', 'irpe',
                    'drop_path_rate'):
            assert small.model.backbone.get(key) == \
                full.model.backbone.get(key), (name, key)
        steps = [[t.type for t in c.train_dataloader.dataset.pipeline]
                 for c in (small, full)]
        assert steps[0] == steps[1]
        assert small.val_dataloader.dataset.split == 'val'
        assert small.model.backbone.init_cfg.checkpoint.endswith(
            'backbone.pth')
