# The built-in COCO-layout data (tools/data/generate_data.py): mmdet's own
# COCO instance-segmentation dataset config with the data root, the class list
# and the image scale changed. Dataset class, annotation format and evaluator
# (CocoMetric, bbox + segm) are upstream's, unchanged.
_base_ = 'mmdet::_base_/datasets/coco_instance.py'

data_root = 'data/coco/'
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'star', 'ring', 'cross'))
img_scale = (160, 128)  # (w, h) of the generated images
backend_args = None

# images load with CheckedLoadImageFromFile (mim_pretrain/datasets/
# transforms.py): a truncated or unreadable image is an error naming the file
train_pipeline = [
    dict(type='CheckedLoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
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
