# LoMaR ViT-B/16 at 448 px: the same 4 windows of 7x7 patches, so the
# encoder cost per image does not grow with the resolution.
_base_ = './lomar_vit-base-p16_4xb256-accum4-amp-coslr-400e_in1k.py'

train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=448,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
