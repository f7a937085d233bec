# LocalMIM on a tiny ViT (192-d, 4 blocks, 3 heads, patch 8: the encoder of
# the tiny LoMaR and MAE configs) and the built-in 96-px images, for tests
# and the main job. ViT-B's taps after blocks 2, 4, 10, 12 (two lower, two
# upper) become every block of 4. It keeps the real config's algorithm (75%
# masking, sin-cos position, decoders at 4x/2x/1x/0.5x the patch grid, HOG
# with 9 bins, equal weights) and changes only sizes (decoders 128-d, 4
# heads), batch, schedule, precision (fp32: CPU) and data root.
_base_ = './localmim_vit-base-p16_8xb256-amp-coslr-1600e_in1k.py'

img_size = 96
patch_size = 8
embed_dims = 192
model = dict(
    backbone=dict(
        _delete_=True,  # the parent's arch is a name ('b'), not a dict;
        # the algorithm settings below equal the parent's (a test checks it)
        type='LocalMIMViT',
        arch=dict(embed_dims=embed_dims, depth=4, num_heads=3),
        patch_size=patch_size,
        mask_ratio=0.75,
        out_indices=(0, 1, 2, 3),
        pos_embed='sincos'),
    neck=dict(in_dims=embed_dims, dims=128, num_heads=4))

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
            'pos_embed': dict(decay_mult=0.)
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
