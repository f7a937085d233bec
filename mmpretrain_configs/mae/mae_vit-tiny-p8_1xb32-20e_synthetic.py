# MAE (mmpretrain's own implementation, untouched) on the same tiny ViT as
# the tiny LoMaR config (192-d, 4 blocks, 3 heads, patch 8) and the built-in
# 96-px images, for tests and the main job. The parent is mmpretrain's ViT-B
# 400-epoch config; only model sizes, input size, batch, schedule, precision
# (fp32: CPU) and data root change.
_base_ = [
    './mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py',
    '../_base_/synthetic_run.py'
]

img_size = 96  # = synthetic_run.img_size
patch_size = 8
embed_dims = 192
model = dict(
    backbone=dict(
        _delete_=True,  # the parent's arch is a name ('b'), not a dict
        type='MAEViT',
        arch=dict(
            embed_dims=embed_dims,
            num_layers=4,
            num_heads=3,
            feedforward_channels=embed_dims * 4),
        img_size=img_size,
        patch_size=patch_size,
        mask_ratio=0.75),
    neck=dict(
        patch_size=patch_size,
        num_patches=(img_size // patch_size)**2,
        embed_dim=embed_dims,
        decoder_embed_dim=128,
        decoder_depth=2,
        decoder_num_heads=4),
    head=dict(patch_size=patch_size))

# the built-in run's data, schedule and logging (../_base_/synthetic_run.py;
# mmengine makes each key an assignment here, see that file); the full-size
# config's weight-decay rules, fp32 (--amp: bf16, also on a CPU)
train_dataloader = _base_.synthetic_run.train_dataloader
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=_base_.synthetic_run.optimizer,
    paramwise_cfg=_base_.optim_wrapper.paramwise_cfg)
param_scheduler = _base_.synthetic_run.param_scheduler
train_cfg = _base_.synthetic_run.train_cfg
default_hooks = _base_.synthetic_run.default_hooks
auto_scale_lr = _base_.synthetic_run.auto_scale_lr
