# mmseg's 160k-iteration schedule with the optimiser of its MAE UperNet
# config (configs/mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py, its
# LearningRateDecayOptimizerConstructor): AdamW lr 1e-4, betas
# (0.9, 0.999), weight decay 0.05 with mmseg's exemptions (1-D parameters
# and biases only: its pos_embed / cls_token check never matches the
# prefixed names, so those and the relative-position tables are decayed;
# weight_decay_rule='mmseg'), layer-wise lr decay 0.65 over 12 + 2 layers,
# 1500 linear warm-up iterations (from 1e-6) then poly decay (power 1) to 0.
# Departs from mmseg's MAE config in: float16 mixed precision with a dynamic
# loss scale, which that config asks for with `fp16 =
# dict(loss_scale='dynamic')`, a key mmseg 1.x no longer reads (as written
# it trains in fp32; its published 48.13 mIoU comes from mmseg 0.x, where
# the key gave this fp16 run); fused AdamW (the same update in one kernel);
# the exact-resume loop and the FiniteLossHook of this repository.
_base_ = 'mmseg::_base_/schedules/schedule_160k.py'

max_iters = 160000
optim_wrapper = dict(
    _delete_=True,
    # MixedPrecisionOptimWrapper also runs on a CPU; dtype='auto' would take
    # bfloat16 where the GPU has it. A config that sets type='OptimWrapper'
    # (fp32) must drop the dtype key: _delete_=True.
    type='MixedPrecisionOptimWrapper',
    dtype='float16',
    loss_scale='dynamic',
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05,
        fused=True),
    paramwise_cfg=dict(layer_decay_rate=0.65, weight_decay_rule='mmseg'))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=1500,
        end=max_iters,
        by_epoch=False)
]
# mmseg's IterBasedTrainLoop with exact resume (mim_pretrain.engine.loops)
train_cfg = dict(type='ResumableIterBasedTrainLoop')
# 8 GPUs x 2 images; tools/train.py --auto-scale-lr rescales other totals
auto_scale_lr = dict(base_batch_size=16)
