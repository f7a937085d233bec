# Stack check: mmdet's own Mask R-CNN (ResNet-18 FPN, random init) on the
# built-in COCO-layout data, through tools/train.py and tools/test.py. It
# proves the compiled mmcv ops (RoIAlign, NMS), CocoDataset and CocoMetric work
# on this install; it is not a transfer experiment.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_instance_synthetic.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py'
]

custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)

num_classes = 6
model = dict(
    backbone=dict(depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(
            in_channels=64, fc_out_channels=256, num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(
            in_channels=64, conv_out_channels=64, num_classes=num_classes)))

train_dataloader = dict(batch_size=4, num_workers=2)
val_dataloader = dict(num_workers=2)
test_dataloader = val_dataloader

max_epochs = 2
train_cfg = dict(
    type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs,
    val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=10)
]
optim_wrapper = dict(optimizer=dict(lr=0.01))
default_hooks = dict(logger=dict(interval=5))
auto_scale_lr = dict(base_batch_size=4)
