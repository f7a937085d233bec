# LocalMIM on a tiny Swin (32-d, 2 blocks per stage, window 3) and the
# built-in 96-px images (3x3 mask units of 32 px; stage grids 24/12/6/3),
# for tests and quick runs. It keeps the real config's algorithm (efficient
# mode, 75% of the units masked with one mask per batch, taps after every
# patch merging, one-block decoders with linear heads, HOG with 18 bins,
# equal weights) and changes only sizes (decoders 64-d, 4 heads), batch,
# schedule, precision (fp32: CPU) and data root.
_base_ = './localmim_swin-base-w7_8xb256-amp-coslr-400e_in1k.py'

img_size = 96
embed_dims = 32
model = dict(
    backbone=dict(
        _delete_=True,  # the parent's arch is a name ('base'), not a dict;
        # the algorithm settings below equal the parent's (a test checks it)
        type='LocalMIMSwinTransformer',
        arch=dict(
            embed_dims=embed_dims, depths=(2, 2, 2, 2),
            num_heads=(1, 2, 4, 8)),
        patch_size=4,
        window_size=3,
        mode='efficient',
        mask_ratio=0.75,
        mask_per_sample=False,
        drop_path_rate=0.),
    neck=dict(
        in_dims=(2 * embed_dims, 4 * embed_dims, 8 * embed_dims,
                 8 * embed_dims),
        dims=64,
        num_heads=4))

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
            'mask_token': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.)
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
