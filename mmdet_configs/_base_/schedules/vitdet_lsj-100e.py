# ViTDet's fine-tuning schedule (mmdet projects/ViTDet, detectron2 ViTDet):
# AdamW lr 1e-4, betas (0.9, 0.999), weight decay 0.1 (none on norms,
# biases, tokens and position tables), layer-wise lr decay 0.7, mixed
# precision; 100 epochs of COCO train2017 at total batch 64 = 184375
# iterations, 250 warm-up iterations, lr x 0.1 at epochs 88 and 96.
# Iteration-based logging and checkpoints on the repository's runtime
# (mmdet's, plus FiniteLossHook); exact-resume iteration loop.
_base_ = '../default_runtime.py'

optim_wrapper = dict(
    # its default dtype='auto': bf16 autocast where the GPU has it
    # (A100/H100), else fp16 with a dynamic loss scale (docs/compat.md);
    # no dtype key here, so a config that sets type='OptimWrapper' runs fp32
    type='MixedPrecisionOptimWrapper',
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1,
        fused=True),
    paramwise_cfg=dict(layer_decay_rate=0.7))

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
