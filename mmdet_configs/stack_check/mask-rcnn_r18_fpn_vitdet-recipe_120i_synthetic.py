# A diagnostic for the main job's detection column (docs/reproduction.md,
# section 4): the tiny ViTDet Mask R-CNN
# (../vitdet/mask-rcnn_vit-tiny-p8-scratch_simfp_1xb4-lsj-300i_synthetic.py:
# anchors from 16 px, scale jitter 0.8-1.25, LayerNorm conv heads of 64
# channels, a pyramid without norms, AdamW without layer decay) with its
# plain ViT and simple feature pyramid swapped for a randomly initialised
# ResNet-18 FPN (no norms either), for 120 iterations. Everything but the
# backbone and neck is the random ViT's, so the two are like for like: it
# separates what the recipe costs from what the plain-ViT backbone costs;
# not a transfer experiment. Swapping parts between the two is how the
# pyramid's LayerNorms were found to keep both from detecting
# (docs/reproduction.md, section 4.3).
_base_ = ('../vitdet/mask-rcnn_vit-tiny-p8-scratch_simfp_1xb4-lsj-300i_'
          'synthetic.py')

max_iters = 120
model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=[64, 128, 256, 512],
        out_channels=_base_.channels,
        num_outs=5))
# the same AdamW, without layer decay as the random ViT's
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(_base_.optim_wrapper.optimizer))
param_scheduler = [
    dict(_base_.param_scheduler[0], end=max_iters // 6),
    dict(
        _base_.param_scheduler[1],
        end=max_iters,
        milestones=[int(max_iters * 0.88),
                    int(max_iters * 0.96)])
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
