# LocalMIM on a tiny ViT (192-d, 4 blocks, 3 heads, patch 8: the encoder of
# the tiny LoMaR and MAE configs) and the built-in 96-px images, for tests
# and the main job. ViT-B's taps after blocks 2, 4, 10, 12 (two lower, two
# upper) become every block of 4. It keeps the real config's algorithm (75%
# masking, sin-cos position, decoders at 4x/2x/1x/0.5x the patch grid, HOG
# with 9 bins, equal weights) and changes only sizes (decoders 128-d, 4
# heads), batch, schedule, precision (fp32: CPU) and data root.
_base_ = [
    './localmim_vit-base-p16_8xb256-amp-coslr-1600e_in1k.py',
    '../_base_/synthetic_run.py'
]

img_size = 96  # = synthetic_run.img_size
patch_size = 8
embed_dims = 192
model = dict(
    backbone=dict(
        _delete_=True,  # the parent's arch is a name ('b'), not a dict;
        # the algorithm settings below equal the parent's (a test checks it)
        type='LocalMIMViT',
        arch=dict(embed_dims=embed_dims, depth=4, num_heads=3),
        patch_size=patch_size,
        mask_ratio=0.75,
        out_indices=(0, 1, 2, 3),
        pos_embed='sincos'),
    # per cell: HOG's 3 channels x 9 bins (PixelTarget would need
    # 12/48/192/768 for the 2/4/8/16-px cells of these taps)
    neck=dict(
        in_dims=embed_dims, dims=128, num_heads=4,
        out_channels=(27, 27, 27, 27)))

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
