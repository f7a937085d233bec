# The built-in ADE20K-layout data (tools/data/generate_data.py): mmseg's own
# ADE20K dataset config with the data root, a subset of ADE20K's class names
# (mapped by mmseg's label map) and the crop size changed. Dataset class,
# reduce_zero_label and evaluator (IoUMetric) are upstream's, unchanged.
_base_ = 'mmseg::_base_/datasets/ade20k.py'

data_root = 'data/ade/ADEChallengeData2016'
metainfo = dict(
    classes=('car', 'person', 'tree', 'lamp', 'plant', 'signboard'))
crop_size = (128, 128)
img_scale = (256, 128)

# loading that checks its input (mim_pretrain/datasets/transforms.py): a
# truncated or unreadable file, or a label that is not one of the classes
# (255 = ignore), is an error naming the file
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(
        type='CheckedLoadAnnotations',
        num_classes=len(metainfo['classes']),
        reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=img_scale,
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(
        type='CheckedLoadAnnotations',
        num_classes=len(metainfo['classes']),
        reduce_zero_label=True),
    dict(type='PackSegInputs')
]
# mmseg's test-time augmentation (--tta), loading as above
tta_pipeline = [
    dict(_base_.tta_pipeline[0], type='CheckedLoadImageFromFile'),
    dict(
        _base_.tta_pipeline[1],
        transforms=[[
            dict(t, type='CheckedLoadAnnotations',
                 num_classes=len(metainfo['classes']))
            if t.type == 'LoadAnnotations' else t for t in branch
        ] for branch in _base_.tta_pipeline[1].transforms])
]
train_dataloader = dict(
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
