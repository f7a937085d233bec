# The Swin-B Mask R-CNN config at tiny size on the built-in COCO-layout data:
# a Swin with 32-d embeddings, 2 blocks per stage and window 3 initialised
# from the tiny LocalMIM-Swin pretraining
# (mmpretrain_configs/localmim/localmim_swin-tiny-w3_1xb32-20e_synthetic.py,
# weights extracted with tools/model_converters/extract_weights.py
# --prefix backbone.), 64-channel FPN and heads, six classes, 160 x 128
# images, one epoch at batch 4, fp32 (CPU). Optimizer settings and the loading
# path are the real config's.
_base_ = './mask-rcnn_swin-b-p4-w7_localmim-pt_fpn_amp-ms-crop-3x_coco.py'

embed_dims = 32
num_classes = 6
model = dict(
    backbone=dict(
        embed_dims=embed_dims,
        depths=[2, 2, 2, 2],
        num_heads=[1, 2, 4, 8],
        window_size=3,
        init_cfg=dict(
            checkpoint='pretrain/localmim_swin-tiny-w3_backbone.pth')),
    neck=dict(
        in_channels=[embed_dims * 2**i for i in range(4)], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(
            in_channels=64, fc_out_channels=256, num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(
            in_channels=64, conv_out_channels=64, num_classes=num_classes)))

# the built-in data, as mmdet_configs/_base_/datasets/coco_instance_synthetic
# (a base config cannot be mixed in: it shares keys with the real config)
data_root = 'data/coco/'
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'star', 'ring', 'cross'))
img_scale = (160, 128)
# images load with CheckedLoadImageFromFile (mim_pretrain/datasets/
# transforms.py): a truncated or unreadable image is an error naming the file
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root +
                     'annotations/instances_val2017.json')
test_evaluator = val_evaluator

max_epochs = 1
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=10)
]
optim_wrapper = dict(type='OptimWrapper')
default_hooks = dict(logger=dict(interval=5))
auto_scale_lr = dict(base_batch_size=4)
