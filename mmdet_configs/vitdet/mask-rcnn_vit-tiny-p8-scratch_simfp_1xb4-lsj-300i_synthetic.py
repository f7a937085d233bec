# The ViTDet Mask R-CNN of mask-rcnn_vit-b-scratch_simfp_16xb4-lsj-100e_coco.py
# at toy size, to run the real pipeline end to end on CPU in minutes: a
# randomly initialised ViT of the tiny pretraining configs' width (192-d, 3
# heads, 8-px patches; `depth` blocks), on the built-in COCO-layout data
# (tools/data/generate_data.py). Everything else is the real config's: window
# attention with global blocks, decomposed relative position, the simple
# feature pyramid, LayerNorm heads, large-scale jitter, AdamW with layer
# decay, CocoMetric. Changed: sizes (window and position table = the
# 12 x 12 grid of the 96-px pretraining images, as ViTDet's 14 = 224 / 16; a
# 128-px canvas; 32-channel heads), the schedule (fp32, CPU), the data root
# and class list.
_base_ = './mask-rcnn_vit-b-scratch_simfp_16xb4-lsj-100e_coco.py'

depth = 4  # blocks; the tiny LoMaR and MAE pretraining ViTs have 4
embed_dims = 192
patch_size = 8
window = 8
image_size = (128, 128)
channels = 32  # of the pyramid and the heads
num_classes = 6

model = dict(
    data_preprocessor=dict(batch_augments=[
        dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)
    ]),
    backbone=dict(
        arch=dict(
            _delete_=True, embed_dims=embed_dims, depth=depth, num_heads=3),
        patch_size=patch_size,
        img_size=image_size[0],
        pretrain_img_size=96,
        window_size=window,
        # one global block in the middle and one at the end, as ViT-B's
        # every third
        global_blocks=(depth // 2 - 1, depth - 1)),
    neck=dict(
        in_channels=embed_dims,
        out_channels=channels,
        # strides 4-32 from the stride-8 map
        scales=(2., 1., 0.5, 0.25)),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            in_channels=channels,
            conv_out_channels=channels,
            fc_out_channels=256,
            num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(
            in_channels=channels,
            conv_out_channels=channels,
            num_classes=num_classes)),
    train_cfg=dict(rcnn=dict(sampler=dict(num=128))))

data_root = 'data/coco/'
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'star', 'ring', 'cross'))
# the real pipelines at this size
train_pipeline = [
    dict(step, **{k: image_size
                  for k in ('scale', 'crop_size', 'size') if k in step})
    for step in _base_.train_pipeline
]
# The test images are not padded in the pipeline: the data preprocessor's
# pad_size_divisor=32 pads the resized 128 x 102 images to the same 128 x 128
# input, and the boxes are then clipped to the image instead of the padded
# canvas. (A box wholly in the padding, which an undertrained model does
# predict, makes mmdet 3.3's CPU mask pasting fail: FCNMaskHead's
# _do_paste_mask with skip_empty, used on CPU only.)
test_pipeline = [
    dict(step, **{k: image_size for k in ('scale', ) if k in step})
    for step in _base_.test_pipeline if step['type'] != 'Pad'
]
# An infinite sampler: mmengine's iteration loop sleeps 2 s each time a
# finite one runs out, i.e. every 12 iterations of batch 4 on the 48
# built-in images (20 s of sleep in a 120-iteration run); on COCO, with
# upstream's finite sampler, that is once in 1800 iterations.
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        filter_cfg=dict(min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# fp32 by default (--amp: bf16, also on a CPU); a short schedule with the
# real one's shape
max_iters = 300
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor=_base_.optim_wrapper.constructor,
    optimizer=dict(_base_.optim_wrapper.optimizer, lr=1e-3),
    paramwise_cfg=_base_.optim_wrapper.paramwise_cfg)
param_scheduler = [
    dict(_base_.param_scheduler[0], end=50),
    dict(
        _base_.param_scheduler[1],
        end=max_iters,
        milestones=[int(max_iters * 0.88),
                    int(max_iters * 0.96)])
]
train_cfg = dict(
    max_iters=max_iters, val_interval=max_iters, dynamic_intervals=None)
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=max_iters))
auto_scale_lr = dict(base_batch_size=4)
