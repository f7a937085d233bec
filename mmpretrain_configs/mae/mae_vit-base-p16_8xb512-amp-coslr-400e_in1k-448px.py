# MAE baseline at 448 px: mmpretrain's MAE ViT-B/16 400-epoch config with
# the input size (and so the encoder/decoder token count) raised to 448,
# the peer of LoMaR's 448-px config.
_base_ = './mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py'

img_size = 448
model = dict(
    backbone=dict(img_size=img_size),
    neck=dict(num_patches=(img_size // 16)**2))
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=img_size,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
