# What the tiny built-in pretraining runs (tests, the main job) share: the
# built-in 96-px images in the ImageNet layout (tools/data/generate_data.py),
# batch 32, 20 epochs of fp32 AdamW (a short-run lr of 1.5e-3) with 2 linear
# warm-up epochs then cosine to 0, a log line every 4 iterations and a
# checkpoint every 5 epochs. The pipeline is the full configs' (mmpretrain's
# MAE pipeline) at 96 px.
#
# Everything is under one key, `synthetic_run`: a tiny config inherits its
# full-size config and this file side by side, and mmengine refuses a key
# that two sibling bases both define (train_dataloader, param_scheduler, ...),
# so a tiny config assigns each entry itself, e.g.
#     train_dataloader = _base_.synthetic_run.train_dataloader
# (no other top-level name here for the same reason).
synthetic_run = dict(
    img_size=96,
    train_dataloader=dict(
        batch_size=32,
        num_workers=2,
        dataset=dict(
            data_root='data/imagenet/',
            pipeline=[
                dict(type='CheckedLoadImageFromFile'),
                dict(
                    type='RandomResizedCrop',
                    scale=96,
                    crop_ratio_range=(0.2, 1.0),
                    backend='pillow',
                    interpolation='bicubic'),
                dict(type='RandomFlip', prob=0.5),
                dict(type='PackInputs')
            ])),
    optimizer=dict(
        type='AdamW', lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05,
        fused=True),
    param_scheduler=[
        dict(
            type='LinearLR',
            start_factor=1e-3,
            by_epoch=True,
            begin=0,
            end=2,  # warm-up epochs
            convert_to_iter_based=True),
        dict(
            type='CosineAnnealingLR',
            T_max=18,
            eta_min=0.,
            by_epoch=True,
            begin=2,
            end=20,
            convert_to_iter_based=True)
    ],
    train_cfg=dict(max_epochs=20),
    default_hooks=dict(
        logger=dict(interval=4),
        checkpoint=dict(interval=5, max_keep_ckpts=2)),
    auto_scale_lr=dict(base_batch_size=32))
