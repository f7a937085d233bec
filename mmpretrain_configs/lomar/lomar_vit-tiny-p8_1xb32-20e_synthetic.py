# LoMaR on a tiny ViT (192-d, 4 blocks, 3 heads, patch 8) and the built-in
# 96-px images, for tests and the main job. It keeps the real config's
# algorithm (4 windows of 7x7 patches, 80% masked, iRPE, linear head) and
# changes only sizes, batch, schedule, precision (fp32: CPU) and data root.
_base_ = './lomar_vit-base-p16_4xb256-accum4-amp-coslr-400e_in1k.py'

img_size = 96
patch_size = 8
embed_dims = 192
model = dict(
    backbone=dict(
        _delete_=True,  # the parent's arch is a name ('b'), not a dict;
        # the algorithm settings below equal the parent's (a test checks it)
        type='LoMaRViT',
        arch=dict(embed_dims=embed_dims, depth=4, num_heads=3),
        patch_size=patch_size,
        window_size=7,
        num_windows=4,
        mask_ratio=0.8,
        sampling='independent',
        irpe=dict(alpha=1.9, beta=3.8, gamma=15.2),
        pos_embed='none'),
    head=dict(embed_dims=embed_dims, patch_size=patch_size))

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

max_epochs = 20
warmup_epochs = 2
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05,
        fused=True),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'cls_token': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'pos_embed': dict(decay_mult=0.),
            'lookup_table_weight': dict(decay_mult=0.)
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
        eta_min=0.,
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
