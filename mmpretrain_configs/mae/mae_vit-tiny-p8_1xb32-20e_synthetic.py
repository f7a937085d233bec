# MAE (mmpretrain's own implementation, untouched) on the same tiny ViT as
# the tiny LoMaR config (192-d, 4 blocks, 3 heads, patch 8) and the built-in
# 96-px images, for tests and the main job. The parent is mmpretrain's ViT-B
# 400-epoch config; only model sizes, input size, batch, schedule, precision
# (fp32: CPU) and data root change.
_base_ = './mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py'

img_size = 96
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

data_root = 'data/imagenet/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=img_size,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs')
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))

# fp32 by default (--amp: bf16, also on a CPU); a short-run learning rate
max_epochs = 20
warmup_epochs = 2
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05,
        fused=True),
    paramwise_cfg=dict(
        custom_keys={
            'ln': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.)
        }))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(
    logger=dict(interval=4),
    checkpoint=dict(interval=5, max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=32)
