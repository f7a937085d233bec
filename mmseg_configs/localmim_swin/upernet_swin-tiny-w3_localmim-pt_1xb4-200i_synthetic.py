# The Swin-B UperNet config at tiny size on the built-in ADE20K-layout data:
# a Swin with 32-d embeddings, 2 blocks per stage and window 3 initialised
# from the tiny LocalMIM-Swin pretraining
# (mmpretrain_configs/localmim/localmim_swin-tiny-w3_1xb32-20e_synthetic.py,
# weights extracted with tools/model_converters/extract_weights.py
# --prefix backbone.), 64-channel heads, six classes, 128 x 128 crops, 200
# iterations at batch 4. Optimizer settings and the loading path are the real
# config's.
_base_ = './upernet_swin-b-p4-w7_localmim-pt_8xb2-160k_ade20k-512x512.py'

embed_dims = 32
num_classes = 6
crop_size = (128, 128)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        embed_dims=embed_dims,
        depths=[2, 2, 2, 2],
        num_heads=[1, 2, 4, 8],
        window_size=3,
        init_cfg=dict(
            checkpoint='pretrain/localmim_swin-tiny-w3_backbone.pth')),
    decode_head=dict(
        in_channels=[embed_dims * 2**i for i in range(4)],
        channels=64,
        num_classes=num_classes),
    auxiliary_head=dict(
        in_channels=4 * embed_dims, channels=32, num_classes=num_classes))

# the built-in data, as mmseg_configs/_base_/datasets/ade20k_synthetic (a base
# config cannot be mixed in: it shares keys with the real config)
data_root = 'data/ade/ADEChallengeData2016'
metainfo = dict(
    classes=('car', 'person', 'tree', 'lamp', 'plant', 'signboard'))
img_scale = (256, 128)
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(
        type='CheckedLoadAnnotations',
        num_classes=num_classes,
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
        num_classes=num_classes,
        reduce_zero_label=True),
    dict(type='PackSegInputs')
]
# the real config's test-time augmentation, labels checked against this
# data's classes
tta_pipeline = [
    _base_.tta_pipeline[0],
    dict(
        _base_.tta_pipeline[1],
        transforms=[[
            dict(t, num_classes=num_classes) if 'num_classes' in t else t
            for t in branch
        ] for branch in _base_.tta_pipeline[1].transforms])
]
train_dataloader = dict(
    batch_size=4,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=20),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=20,
        end=max_iters,
        by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=max_iters))
