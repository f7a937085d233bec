# UperNet, Swin-B (patch 4, window 7), on ADE20K 512 x 512 with the authors'
# settings (Haoqing-Wang/LocalMIM semantic_segmentation/, commit 314a6e5),
# which are mmseg's Swin-B UperNet recipe: AdamW lr 6e-5, betas
# (0.9, 0.999), weight decay 0.01 (none on norms, absolute position and
# relative position tables), drop path 0.3, LayerNorm eps 1e-5, 1500 linear
# warm-up iterations from 1e-6 then poly (power 1), 160k iterations at batch
# 16 (8 GPUs x 2), auxiliary FCN head, fp32, single-scale whole-image test,
# seed 0; initialised from LocalMIM Swin-B pretraining. mmseg's own
# SwinTransformer loads the weights by name (see the Mask R-CNN config for
# how the file is made).
# Departs from the authors' code in (docs/model_zoo.md):
# * patch merging: their downstream Swin concatenates the 2 x 2 neighbours
#   in another order than their pretraining and loads the weights
#   unpermuted; the converter here permutes them, so the merging layers
#   compute what they computed in pretraining;
# * norm3: loaded from pretraining's last norm here; theirs start as
#   identity LayerNorms (their keys do not match), as norm0-2 do in both;
# * poly decay runs from the end of the warm-up (mmseg's PolyLR) where
#   theirs runs from iteration 0 scaled by the warm-up (mmcv's poly with
#   warm-up): the learning rates differ by under 1 %;
# * not deterministic (they pass --deterministic).
_base_ = ('mmseg::swin/swin-base-patch4-window7-in1k-pre_upernet_8xb2-160k_'
          'ade20k-512x512.py')

custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        drop_path_rate=0.3,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/localmim_swin-base-w7_backbone.pth')))
# mmseg's fp32 recipe (tools/train.py --amp for mixed precision); fused AdamW
optim_wrapper = dict(optimizer=dict(fused=True))
# mmseg's pipelines with loading steps that check their input, as
# ../_base_/datasets/ade20k_8xb2.py (mim_pretrain/datasets/transforms.py)
checked_loading = dict(
    LoadImageFromFile=dict(type='CheckedLoadImageFromFile'),
    LoadAnnotations=dict(type='CheckedLoadAnnotations', num_classes=150))
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(t, **checked_loading.get(t.type, {}))
        for t in _base_.train_dataloader.dataset.pipeline
    ]))
val_dataloader = dict(
    dataset=dict(pipeline=[
        dict(t, **checked_loading.get(t.type, {}))
        for t in _base_.val_dataloader.dataset.pipeline
    ]))
test_dataloader = val_dataloader
tta_pipeline = [
    dict(_base_.tta_pipeline[0], type='CheckedLoadImageFromFile'),
    dict(
        _base_.tta_pipeline[1],
        transforms=[[dict(t, **checked_loading.get(t.type, {}))
                     for t in branch]
                    for branch in _base_.tta_pipeline[1].transforms])
]

# mmengine forbids a second base beside this full upstream config (both
# would define the runtime), so the repository's runtime additions
# (_base_/default_runtime.py) are written here: exact-resume loop and
# FiniteLossHook
train_cfg = dict(type='ResumableIterBasedTrainLoop')
randomness = dict(seed=0)  # the authors' train.py default
custom_hooks = [dict(type='FiniteLossHook', action='stop')]
