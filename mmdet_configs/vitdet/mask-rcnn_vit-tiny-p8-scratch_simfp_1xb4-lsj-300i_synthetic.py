# The ViTDet Mask R-CNN of mask-rcnn_vit-b-scratch_simfp_16xb4-lsj-100e_coco.py
# at toy size, to run the real pipeline end to end on CPU in minutes: a
# randomly initialised ViT of the tiny pretraining configs' width (192-d, 3
# heads, 8-px patches; `depth` blocks), on the built-in COCO-layout data
# (tools/data/generate_data.py). The architecture is the real config's: plain
# ViT with 8 x 8 window attention and global blocks, decomposed relative
# position, the simple feature pyramid, Mask R-CNN with LayerNorm conv heads;
# and so are AdamW, the step schedule's shape and CocoMetric.
# Changed for a 128-px canvas and a few hundred iterations, each for a reason:
# - sizes: a 128 x 128 canvas (ViT-B's 1024), an 8 x 8 window over the 16 x 16
#   token grid (ViT-B's 14 over 64), the position table of the 96-px
#   pretraining images' 12 x 12 grid (as ViT-B's 14 = 224 / 16);
# - anchors from 16 px (scale 4 on strides 4-64: 16-256 px; upstream's scale
#   8 starts at 32 px, above the median built-in object, so about a fifth of
#   the objects could get no RPN positive and the 256/512-px anchors fall
#   outside the canvas);
# - scale jitter 0.8-1.25 instead of large-scale jitter 0.1-2.0 (at 128 px,
#   0.1 shrinks an image to 13 px and leaves many samples mostly padding);
# - 64-channel pyramid and heads (ViT-B's 256; 32 starves the heads);
# - no LayerNorm after the pyramid's 1x1 and 3x3 convs, which get biases
#   instead (as mmdet's FPN; the ViT, the pyramid's levels and the heads'
#   LayerNorms stay): with them, this model from random weights scored 1.0
#   box AP after 300 iterations on the colour-style data, without them 41.2;
#   a ResNet-18 with the same pyramid on its stride-8 stage 0.8 and 6.2 after
#   120 (docs/reproduction.md, section 4.3);
# - 100 RPN proposals per image at test time (ViT-B's 1000: the scenes hold
#   at most 4 objects and a crowd, and the RoI head's four convolutions on
#   1000 proposals took 90% of the test time on a CPU, 0.34 s an image);
# - drop path 0 (ViT-B's 0.1 regularises 12 blocks over 100 epochs; here 4
#   blocks train for minutes);
# - no layer decay for a random initialisation (it lowers the learning rate
#   of early blocks to keep pretrained features; a random backbone has none
#   to keep, and 0.7 over 4 blocks would multiply its rates by 0.17-0.7); the
#   pretrained tiny configs keep ViTDet's 0.7;
# - fp32 (--amp: bf16, also on a CPU), lr 1e-3 at batch 4, an infinite
#   sampler; the data root and class list.
_base_ = './mask-rcnn_vit-b-scratch_simfp_16xb4-lsj-100e_coco.py'

depth = 4  # blocks; the tiny LoMaR and MAE pretraining ViTs have 4
embed_dims = 192
patch_size = 8
window = 8
image_size = (128, 128)
channels = 64  # of the pyramid and the heads
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
        drop_path_rate=0.,
        # one global block in the middle and one at the end, as ViT-B's
        # every third
        global_blocks=(depth // 2 - 1, depth - 1)),
    neck=dict(
        in_channels=embed_dims,
        out_channels=channels,
        # strides 4-32 from the stride-8 map
        scales=(2., 1., 0.5, 0.25),
        conv_norm=False),
    rpn_head=dict(
        in_channels=channels,
        feat_channels=channels,
        anchor_generator=dict(scales=[4])),
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
    train_cfg=dict(rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(max_per_img=100)))

data_root = 'data/coco/'
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'star', 'ring', 'cross'))
# the real pipelines at this size, with scale jitter 0.8-1.25
train_pipeline = [
    dict(step, **{k: image_size
                  for k in ('scale', 'crop_size', 'size') if k in step},
         **{k: (0.8, 1.25) for k in ('ratio_range', ) if k in step})
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
    paramwise_cfg=dict(_base_.optim_wrapper.paramwise_cfg,
                       layer_decay_rate=1.0))
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
