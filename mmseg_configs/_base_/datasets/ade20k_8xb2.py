# ADE20K at 512 x 512: mmseg's own ade20k.py (ADE20KDataset, 512 x 512
# crops of images resized to 0.5-2.0 x (2048, 512), IoUMetric mIoU,
# unchanged), 2 images per GPU (8 GPUs: total batch 16), as mmseg's MAE and
# BEiT UperNet configs.
#
# `ms_flip_tta_pipeline` is the multi-scale + flip test of those recipes,
# mmseg 0.x's MultiScaleFlipAug(img_scale=(2048, 512), img_ratios=[0.5,
# 0.75, 1.0, 1.25, 1.5, 1.75], flip=True): the single-scale test size first,
# then 0.5-1.75 x that, each with and without horizontal flip. (mmseg 1.x's
# own `tta_pipeline` scales the original image instead.) The *-ms-flip
# configs use it with --tta.
_base_ = 'mmseg::_base_/datasets/ade20k.py'

# mmseg's pipelines with loading steps that check their input
# (mim_pretrain/datasets/transforms.py): a truncated or unreadable file, or a
# label that is not one of ADE20K's 150 classes (255 = ignore), is an error
# naming the file
num_classes = 150
checked_loading = dict(
    LoadImageFromFile=dict(type='CheckedLoadImageFromFile'),
    LoadAnnotations=dict(
        type='CheckedLoadAnnotations', num_classes=num_classes))
train_pipeline = [
    dict(t, **checked_loading.get(t.type, {})) for t in _base_.train_pipeline
]
test_pipeline = [
    dict(t, **checked_loading.get(t.type, {})) for t in _base_.test_pipeline
]
tta_pipeline = [
    dict(_base_.tta_pipeline[0], type='CheckedLoadImageFromFile'),
    dict(
        _base_.tta_pipeline[1],
        transforms=[[dict(t, **checked_loading.get(t.type, {}))
                     for t in branch]
                    for branch in _base_.tta_pipeline[1].transforms])
]

train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

ms_flip_tta_pipeline = [
    dict(type='CheckedLoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize', scale_factor=r, keep_ratio=True)
                for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='CheckedLoadAnnotations', num_classes=num_classes)],
            [dict(type='PackSegInputs')],
        ])
]
