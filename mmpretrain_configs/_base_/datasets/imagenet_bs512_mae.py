# mmpretrain's MAE ImageNet data (RandomResizedCrop 224, 0.2-1, bicubic, flip),
# images loaded with CheckedLoadImageFromFile
# (mim_pretrain/datasets/transforms.py): a truncated or unreadable image is
# an error naming the file
_base_ = 'mmpretrain::_base_/datasets/imagenet_bs512_mae.py'

train_pipeline = [
    dict(t, type='CheckedLoadImageFromFile')
    if t.type == 'LoadImageFromFile' else t for t in _base_.train_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
