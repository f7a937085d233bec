# mmseg's 160k-iteration schedule with the optimiser of its MAE/BEiT UperNet
# configs: AdamW lr 1e-4, betas (0.9, 0.999), weight decay 0.05 (none on
# norms, biases, tokens and position tables), layer-wise lr decay 0.65,
# 1500 linear warm-up iterations then poly decay (power 1) to 0, mixed
# precision (mmseg's MAE config asks for it with a `fp16` key that mmseg 1.x
# no longer reads; here it is an AmpOptimWrapper).
_base_ = 'mmseg::_base_/schedules/schedule_160k.py'

max_iters = 160000
optim_wrapper = dict(
    _delete_=True,
    # its default dtype='auto': bf16 autocast where the GPU has it
    # (A100/H100), else fp16 with a dynamic loss scale (docs/compat.md);
    # no dtype key here, so a config that sets type='OptimWrapper' runs fp32
    type='MixedPrecisionOptimWrapper',
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05,
        fused=True),
    paramwise_cfg=dict(layer_decay_rate=0.65))
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
