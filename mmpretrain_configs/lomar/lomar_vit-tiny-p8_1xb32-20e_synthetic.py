# LoMaR on a tiny ViT (192-d, 4 blocks, 3 heads, patch 8) and the built-in
# 96-px images, for tests and the main job. It keeps the real config's
# algorithm (4 windows of 7x7 patches, 80% masked, iRPE, linear head) and
# changes only sizes, batch, schedule, precision (fp32: CPU) and data root.
_base_ = [
    './lomar_vit-base-p16_4xb256-accum4-amp-coslr-400e_in1k.py',
    '../_base_/synthetic_run.py'
]

img_size = 96  # = synthetic_run.img_size
patch_size = 8
embed_dims = 192
model = dict(
    backbone=dict(
        _delete_=True,  # the parent's arch is a name ('b'), not a dict;
        # the algorithm settings below equal the parent's (a test checks it)
        type='LoMaRViT',
        arch=dict(embed_dims=embed_dims, depth=4, num_heads=3),
        patch_size=patch_size,
        window_size=7,
        num_windows=4,
        mask_ratio=0.8,
        sampling='independent',
        irpe=dict(alpha=1.9, beta=3.8, gamma=15.2),
        pos_embed='none'),
    head=dict(embed_dims=embed_dims, patch_size=patch_size))

# the built-in run's data, schedule and logging (../_base_/synthetic_run.py;
# mmengine makes each key an assignment here, see that file); the full-size
# config's weight-decay rules, fp32 (--amp: bf16, also on a CPU)
train_dataloader = _base_.synthetic_run.train_dataloader
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=_base_.synthetic_run.optimizer,
    paramwise_cfg=_base_.optim_wrapper.paramwise_cfg)
param_scheduler = _base_.synthetic_run.param_scheduler
train_cfg = _base_.synthetic_run.train_cfg
default_hooks = _base_.synthetic_run.default_hooks
auto_scale_lr = _base_.synthetic_run.auto_scale_lr
