# Stack check: mmseg's own UperNet (ResNet-18, random init) on the built-in
# ADE20K-layout data, through tools/train.py and tools/test.py. It proves
# ADE20KDataset, the label mapping and IoUMetric work on this install; it is
# not a transfer experiment.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    '../_base_/datasets/ade20k_synthetic.py',
    '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py'
]

custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)

crop_size = (128, 128)
num_classes = 6
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(depth=18),
    decode_head=dict(
        in_channels=[64, 128, 256, 512],
        channels=64,
        num_classes=num_classes),
    auxiliary_head=dict(in_channels=256, channels=32,
                        num_classes=num_classes))

train_dataloader = dict(batch_size=4, num_workers=2)
val_dataloader = dict(num_workers=2)
test_dataloader = val_dataloader

max_iters = 200
train_cfg = dict(
    type='ResumableIterBasedTrainLoop', max_iters=max_iters,
    val_interval=max_iters)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters))
