# LoMaR ViT-B/16, 224 px, 400 epochs: the authors' recipe.
# Effective batch 4096 = 4 GPUs x 256 x 4 accumulation steps; lr = 1.5e-4 *
# 4096 / 256; AdamW (0.9, 0.95), wd 0.05 except norms, biases, tokens and the
# iRPE tables; 20 warm-up epochs then cosine; RandomResizedCrop(224, 0.2-1,
# bicubic) + flip (mmpretrain's MAE data pipeline); AMP.
_base_ = [
    '../_base_/models/lomar_vit-base-p16.py',
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
    accumulative_counts=4,
    optimizer=dict(
        type='AdamW',
        lr=1.5e-4 * 4096 / 256,
        betas=(0.9, 0.95),
        weight_decay=0.05,
        fused=True),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'cls_token': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'pos_embed': dict(decay_mult=0.),
            'lookup_table_weight': dict(decay_mult=0.)
        }))

max_epochs = 400
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
        eta_min=0.,
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
# --auto-scale-lr scales by (GPUs x batch per GPU) / 1024: the lr above is
# for 4 x 256 per step with 4 accumulation steps, and mmengine does not count
# accumulation, so keep accumulative_counts when you scale.
auto_scale_lr = dict(base_batch_size=1024)
