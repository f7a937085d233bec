# COCO instance segmentation with ViTDet's large-scale jitter at 1024 px:
# mmdet's own coco_instance.py (CocoDataset, CocoMetric for bbox and segm,
# unchanged) with the pipelines and loaders of mmdet's projects/ViTDet
# (configs/lsj-100e_coco-instance.py: random flip, resize to 0.1-2.0 x 1024,
# 1024 x 1024 crop, pad; test: longer side 1024, padded; DefaultSampler
# with shuffle, no aspect-ratio grouping), 4 images per GPU (16 GPUs: total
# batch 64). Departs from it in: the image loader, which checks its input.
_base_ = 'mmdet::_base_/datasets/coco_instance.py'

image_size = (1024, 1024)
backend_args = None

# images load with CheckedLoadImageFromFile (mim_pretrain/datasets/
# transforms.py): a truncated or unreadable image is an error naming the file
train_pipeline = [
    dict(type='CheckedLoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomResize',
        scale=image_size,
        ratio_range=(0.1, 2.0),
        keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_type='absolute_range',
        crop_size=image_size,
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='Pad', size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='Pad', size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=8,
    # every image is cropped and padded to one square size: no aspect-ratio
    # grouping (upstream ViTDet uses none either)
    batch_sampler=None,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# COCO train2017 holds a few boxes that mmdet's CocoDataset drops without a
# word (under a pixel, zero area); drop them as upstream does, counted in the
# log (docs/troubleshooting.md, "Data checks")
data_checks = dict(invalid_boxes='skip')
