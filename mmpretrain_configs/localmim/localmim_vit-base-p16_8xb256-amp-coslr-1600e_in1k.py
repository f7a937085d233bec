# LocalMIM ViT-B/16 with HOG targets, 1600 epochs: the authors' recipe.
# Batch 2048 (8 GPUs x 256), lr = 2e-4 * 2048 / 256, AdamW (0.9, 0.95),
# weight decay 0.05 (none on 1-D parameters and biases: timm's
# add_weight_decay, which decays the cls and mask tokens), 40 warm-up epochs
# then cosine to min_lr 1e-6, RandomResizedCrop(224, 0.2-1, bicubic) + flip,
# AMP. To exempt the tokens as MAE's mmpretrain config does, add
# custom_keys={'cls_token': dict(decay_mult=0.), 'mask_token': ...}.
_base_ = [
    '../_base_/models/localmim_vit-base-p16.py',
    '../_base_/datasets/imagenet_bs512_mae.py',
    '../_base_/default_runtime.py',
]

train_dataloader = dict(batch_size=256, num_workers=10)

optim_wrapper = dict(
    # bf16 autocast where the GPU has it (A100/H100), else fp16 with a
    # dynamic loss scale (docs/compat.md, mixed precision)
    type='MixedPrecisionOptimWrapper',
    dtype='auto',
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW',
        lr=2e-4 * 2048 / 256,
        betas=(0.9, 0.95),
        weight_decay=0.05,
        fused=True),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        # the fixed sin-cos table is frozen; the rule only keeps it so
        custom_keys={'pos_embed': dict(decay_mult=0.)}))

max_epochs = 1600
warmup_epochs = 40
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
        eta_min=1e-6,  # the authors' min_lr
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
resume = False
auto_scale_lr = dict(base_batch_size=2048)
