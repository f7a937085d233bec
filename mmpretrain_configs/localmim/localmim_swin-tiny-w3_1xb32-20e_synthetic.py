# LocalMIM on a tiny Swin (32-d, 2 blocks per stage, window 3) and the
# built-in 96-px images (3x3 mask units of 32 px; stage grids 24/12/6/3),
# for tests and quick runs. It keeps the real config's algorithm (efficient
# mode, 75% of the units masked with one mask per batch, taps after every
# patch merging, the authors' window geometry, one-block decoders with
# linear heads and the first stage's halved, 4 heads, HOG with 18 bins and
# Sobel biases, equal weights) and changes only sizes (decoders
# 32/64/64/64-d), batch, schedule, precision (fp32: CPU) and data root.
_base_ = [
    './localmim_swin-base-w7_8xb256-amp-coslr-400e_in1k.py',
    '../_base_/synthetic_run.py'
]

img_size = 96  # = synthetic_run.img_size
embed_dims = 32
model = dict(
    backbone=dict(
        _delete_=True,  # the parent's arch is a name ('base'), not a dict;
        # the algorithm settings below equal the parent's (a test checks it)
        type='LocalMIMSwinTransformer',
        arch=dict(
            embed_dims=embed_dims, depths=(2, 2, 2, 2),
            num_heads=(1, 2, 4, 8)),
        patch_size=4,
        window_size=3,
        mode='efficient',
        mask_ratio=0.75,
        mask_per_sample=False,
        geometry='authors',
        norm_eps=1e-6,
        drop_path_rate=0.),
    neck=dict(
        in_dims=(2 * embed_dims, 4 * embed_dims, 8 * embed_dims,
                 8 * embed_dims),
        dims=(32, 64, 64, 64)))

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
