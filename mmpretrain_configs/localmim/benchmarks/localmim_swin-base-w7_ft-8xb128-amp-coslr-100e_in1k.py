# ImageNet-1k fine-tuning of LocalMIM Swin-B (patch 4, window 7), the
# LocalMIM authors' recipe for their 400-epoch pixel-target model
# (Haoqing-Wang/LocalMIM Swin/README.md and Swin/run_finetune.py): 100
# epochs, batch 1024 = 8 GPUs x 128, AdamW lr 4e-3 (absolute), betas (0.9,
# 0.999), weight decay 0.05 except 1-D parameters and biases, layer decay
# 0.9 over Swin's 24 blocks (patch merging counted with the stage's last
# block, as mmpretrain's SwinTransformer.get_layer_depth, which equals their
# get_swin_layer), 20 warm-up epochs then cosine to 2.5e-7, drop path 0.1,
# RandAugment (rand-m9-mstd0.5-inc1), random erasing 0.25, Mixup 0.8 /
# CutMix 1.0, label smoothing 0.1, AMP, 224 px; the final norm, global
# average pooling and a linear head (trunc-normal std 2e-5).
# For their HOG-target model they accumulate 2 steps (batch 2048):
#   --cfg-options optim_wrapper.accumulative_counts=2
# and for a 100-epoch pretrained model they use lr 5e-3.
# The model is mmpretrain's SwinTransformer: this toolkit's LocalMIM Swin
# pretraining encoder uses its parameter names (as mmdet's, see
# mmdet_configs/localmim_swin/), so the backbone weights extracted with
# tools/model_converters/extract_weights.py CKPT OUT --prefix backbone.
# load by prefix; the authors' checkpoints convert to that layout
# (tools/model_converters/convert_checkpoint.py --format localmim-swin).
# The data, augmentation and runtime are those of the MAE fine-tuning config
# (../../mae/benchmarks/mae_vit-base-p16_ft-8xb128-amp-coslr-100e_in1k.py).
_base_ = ('../../mae/benchmarks/'
          'mae_vit-base-p16_ft-8xb128-amp-coslr-100e_in1k.py')

model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        arch='base',
        img_size=224,
        window_size=7,
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/localmim_swin-base-w7_backbone.pth',
            prefix='backbone.')),
    neck=dict(_delete_=True, type='GlobalAveragePooling'),
    head=dict(in_channels=1024))

optim_wrapper = dict(
    optimizer=dict(lr=4e-3),
    constructor='LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        _delete_=True,
        layer_decay_rate=0.9,
        bias_decay_mult=0.,
        flat_decay_mult=0.))

max_epochs = 100
warmup_epochs = 20
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        eta_min=2.5e-7,
        convert_to_iter_based=True)
]
