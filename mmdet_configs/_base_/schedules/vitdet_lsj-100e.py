# ViTDet's fine-tuning schedule as mmdet's projects/ViTDet writes it
# (configs/lsj-100e_coco-instance.py, vitdet/layer_decay_optimizer_
# constructor.py, vitdet/fp16_compression_hook.py): AdamW lr 1e-4, betas
# (0.9, 0.999), weight decay 0.1 with upstream's exemptions (the backbone
# blocks' LayerNorms and pos_embed, nothing else: weight_decay_rule='vitdet'),
# layer-wise lr decay 0.7 over 12 + 2 layers, float16 mixed precision with a
# dynamic loss scale (AmpOptimWrapper's default), DDP gradients all-reduced
# in float16 (Fp16CompressionHook, upstream's Fp16CompresssionHook); 100
# epochs of COCO train2017 at total batch 64 = 184375 iterations, 250
# warm-up iterations, lr x 0.1 at epochs 88 and 96; logging, checkpoints and
# evaluation every 5000 iterations as upstream.
# Departs from mmdet's ViTDet in: the exact-resume iteration loop and the
# FiniteLossHook of this repository's runtime (reliability, same training);
# fused AdamW (the same update in one kernel).
_base_ = '../default_runtime.py'

optim_wrapper = dict(
    # float16 with a dynamic loss scale, as upstream's AmpOptimWrapper
    # (MixedPrecisionOptimWrapper also runs on a CPU; dtype='auto' would
    # take bfloat16 where the GPU has it). A config that sets
    # type='OptimWrapper' (fp32) must drop the dtype key: _delete_=True.
    type='MixedPrecisionOptimWrapper',
    dtype='float16',
    loss_scale='dynamic',
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1,
        fused=True),
    paramwise_cfg=dict(layer_decay_rate=0.7, weight_decay_rule='vitdet'))

# 100 ep = 184375 iters * 64 images / 118000 images per epoch
max_iters = 184375
val_interval = 5000
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=250),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[163889, 177546],  # 88 and 96 epochs
        gamma=0.1)
]
train_cfg = dict(
    type='ResumableIterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=val_interval,
    # evaluate the last iteration too
    dynamic_intervals=[(max_iters // val_interval * val_interval + 1,
                        max_iters)])
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        save_last=True,
        interval=val_interval,
        max_keep_ckpts=5))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)

# 16 GPUs x 4 images; tools/train.py --auto-scale-lr rescales other totals
auto_scale_lr = dict(base_batch_size=64)

# TensorBoard events beside the local scalars (vis_data/), as upstream
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend')
]
visualizer = dict(
    type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')

# upstream's DDP hook, after the repository's FiniteLossHook
custom_hooks = _base_.custom_hooks + [dict(type='Fp16CompressionHook')]
