# The MAE (mmpretrain's) fine-tuning config at tiny size on the built-in
# ImageNet-layout data: the ViT of the tiny MAE (mmpretrain's) pretraining
# (mmpretrain_configs/mae/mae_vit-tiny-p8_1xb32-20e_synthetic.py: 192-d, 4
# blocks, 3 heads, patch 8), 96-px images, 6 classes, batch 32, 10 epochs, fp32
# (CPU). Model settings, optimizer, lr, layer decay and augmentation are the
# full-size config's.
# The checkpoint is the tiny pretraining's weights extracted with
# tools/model_converters/extract_weights.py CKPT
# work_dirs/mae_vit-tiny-p8_1xb32-20e_synthetic/backbone.pth --prefix backbone.
_base_ = [
    './mae_vit-base-p16_ft-8xb128-amp-coslr-100e_in1k.py',
    '../../_base_/synthetic_classification.py'
]

img_size = 96  # = synthetic_classification.img_size
embed_dims = 192
num_classes = 6  # = synthetic_classification.num_classes
model = dict(
    backbone=dict(
        # the parent's arch is a name ('b'), not a dict
        arch=dict(_delete_=True, embed_dims=embed_dims, depth=4, num_heads=3),
        patch_size=8,
        img_size=img_size,
        init_cfg=dict(
            checkpoint=('work_dirs/mae_vit-tiny-p8_1xb32-20e_synthetic/'
                        'backbone.pth'))),
    head=dict(num_classes=num_classes, in_channels=embed_dims))
data_preprocessor = dict(num_classes=num_classes)

# the full config's pipelines at 96 px (../../_base_/
# synthetic_classification.py; mmengine makes each key an assignment here)
train_dataloader = dict(
    batch_size=_base_.synthetic_classification.batch_size,
    num_workers=2,
    dataset=dict(
        classes=_base_.synthetic_classification.classes,
        pipeline=[
            dict(t, scale=img_size) if t.type == 'RandomResizedCrop' else t
            for t in _base_.train_dataloader.dataset.pipeline
        ]))
val_dataloader = dict(
    batch_size=_base_.synthetic_classification.batch_size,
    num_workers=2,
    dataset=dict(
        classes=_base_.synthetic_classification.classes,
        pipeline=[
            dict(t, scale=_base_.synthetic_classification.test_resize)
            if t.type == 'ResizeEdge' else
            dict(t, crop_size=img_size) if t.type == 'CenterCrop' else t
            for t in _base_.val_dataloader.dataset.pipeline
        ]))
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True,  # fp32: no dtype
    type='OptimWrapper',
    optimizer=_base_.optim_wrapper.optimizer,
    constructor=_base_.optim_wrapper.constructor,
    paramwise_cfg=_base_.optim_wrapper.paramwise_cfg)
warmup_epochs = _base_.synthetic_classification.warmup_epochs
max_epochs = _base_.synthetic_classification.train_cfg.max_epochs
param_scheduler = [
    dict(_base_.param_scheduler[0], end=warmup_epochs),
    dict(
        _base_.param_scheduler[1],
        T_max=max_epochs - warmup_epochs,
        begin=warmup_epochs,
        end=max_epochs)
]
train_cfg = _base_.synthetic_classification.train_cfg
default_hooks = _base_.synthetic_classification.default_hooks
auto_scale_lr = _base_.synthetic_classification.auto_scale_lr
