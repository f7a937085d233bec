# The UperNet of upernet_vit-b-scratch_8xb2-amp-160k_ade20k-512x512.py at toy
# size, to run the real pipeline end to end on CPU in minutes: a randomly
# initialised ViT of the tiny pretraining configs' width (192-d, 3 heads,
# 8-px patches; `depth` blocks), on the built-in ADE20K-layout data
# (tools/data/generate_data.py). Everything else is the real config's:
# BEiT-style relative position bias, layer scale, the 4x / 2x / 1x / 0.5x
# pyramid (here 2x / 1x / 0.5x / 0.25x of the stride-8 map: strides 4-32),
# UPerHead + auxiliary FCN head, random resize / crop / flip / photometric
# augmentation, AdamW with layer decay, poly schedule, sliding-window test,
# IoUMetric. Changed: sizes (128 x 128 crops, the (2048, 512) scale and the
# 341-px test stride divided by 4; 64-channel heads), the schedule (fp32,
# CPU), the data root and class list.
_base_ = './upernet_vit-b-scratch_8xb2-amp-160k_ade20k-512x512.py'

depth = 4  # blocks; the tiny LoMaR and MAE pretraining ViTs have 4
embed_dims = 192
patch_size = 8
crop_size = (128, 128)
img_scale = (512, 128)
num_classes = 6

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(
            _delete_=True, embed_dims=embed_dims, depth=depth, num_heads=3),
        patch_size=patch_size,
        img_size=crop_size[0],
        # ViT-B's [3, 5, 7, 11] of 12, spread the same way over `depth`
        out_indices=(depth // 4 - 1, depth // 2 - 1, 3 * depth // 4 - 1,
                     depth - 1)),
    neck=dict(embed_dim=embed_dims, rescales=[2, 1, 0.5, 0.25]),
    decode_head=dict(
        in_channels=[embed_dims] * 4, channels=64, num_classes=num_classes),
    auxiliary_head=dict(
        in_channels=embed_dims, channels=32, num_classes=num_classes),
    test_cfg=dict(crop_size=crop_size, stride=(85, 85)))

data_root = 'data/ade/ADEChallengeData2016'
metainfo = dict(
    classes=('car', 'person', 'tree', 'lamp', 'plant', 'signboard'))
# the real pipelines with their sizes divided by 4, their labels checked
# against this data's classes
train_pipeline = [
    dict(step, **{k: tuple(x // 4 for x in step[k])
                  for k in ('scale', 'crop_size') if k in step},
         **{k: num_classes for k in ('num_classes', ) if k in step})
    for step in _base_.train_pipeline
]
test_pipeline = [
    dict(step, **{k: tuple(x // 4 for x in step[k])
                  for k in ('scale', ) if k in step},
         **{k: num_classes for k in ('num_classes', ) if k in step})
    for step in _base_.test_pipeline
]
# the multi-scale + flip test (--tta) of the -ms-flip configs, from this
# config's test size
tta_pipeline = [
    _base_.ms_flip_tta_pipeline[0],
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(
        _base_.ms_flip_tta_pipeline[2],
        transforms=[[
            dict(t, num_classes=num_classes) if 'num_classes' in t else t
            for t in branch
        ] for branch in _base_.ms_flip_tta_pipeline[2].transforms])
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader

# fp32 by default (--amp: bf16, also on a CPU); a short schedule with the
# real one's shape
max_iters = 200
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor=_base_.optim_wrapper.constructor,
    optimizer=dict(_base_.optim_wrapper.optimizer, lr=1e-3),
    paramwise_cfg=_base_.optim_wrapper.paramwise_cfg)
param_scheduler = [
    dict(_base_.param_scheduler[0], end=20),
    dict(_base_.param_scheduler[1], begin=20, end=max_iters)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=max_iters))
auto_scale_lr = dict(base_batch_size=4)
