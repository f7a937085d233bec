# ImageNet-1k linear probing of MAE ViT-B/16, mmpretrain's own MAE protocol
# (mae/benchmarks/vit-base-p16_8xb2048-linear-coslr-90e_in1k.py, inherited
# whole): the whole backbone frozen (frozen_stages=12, kept in eval mode),
# the cls token after the final norm, a BatchNorm without affine parameters
# (ClsBatchNormNeck), a linear head (trunc-normal std 0.01); LARS lr 6.4 =
# 0.1 x 16384 / 256, momentum 0.9, no weight decay, batch 16384 = 8 GPUs x
# 2048, 10 linear warm-up epochs then cosine to 0, 90 epochs,
# RandomResizedCrop 224 + flip, test: resize 256 + center crop 224; AMP.
# The MAE authors' main_linprobe.py protocol is the same.
# The backbone is this toolkit's MIMVisionTransformer in mmpretrain MAE's
# settings (learned absolute position, loaded from the checkpoint).
# Departs from mmpretrain's config in precision only: bf16 autocast where
# the GPU has it, else fp16 with a dynamic loss scale (mmpretrain: fp16).
_base_ = ('mmpretrain::mae/benchmarks/'
          'vit-base-p16_8xb2048-linear-coslr-90e_in1k.py')

custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)
# resume only with tools/train.py --resume, as every config here
resume = False

model = dict(
    backbone=dict(
        _delete_=True,
        type='MIMVisionTransformer',
        arch='b',
        patch_size=16,
        img_size=224,
        pos_embed='learned',
        with_cls_token=True,
        out_type='cls_token',
        final_norm=True,
        frozen_stages=12,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/mae_vit-base-p16_backbone.pth',
            prefix='backbone.')))

optim_wrapper = dict(type='MixedPrecisionOptimWrapper', dtype='auto')

# mmpretrain's pipelines, images loaded with CheckedLoadImageFromFile
# (mim_pretrain/datasets/transforms.py): a truncated or unreadable image is
# an error naming the file
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(t, type='CheckedLoadImageFromFile')
        if t.type == 'LoadImageFromFile' else t
        for t in _base_.train_pipeline
    ]))
val_dataloader = dict(
    dataset=dict(pipeline=[
        dict(t, type='CheckedLoadImageFromFile')
        if t.type == 'LoadImageFromFile' else t
        for t in _base_.test_pipeline
    ]))
test_dataloader = val_dataloader

# mmengine forbids a second base beside this full upstream config (both
# would define the runtime), so the repository's runtime additions
# (_base_/default_runtime.py) are written here: exact-resume loop and
# FiniteLossHook
train_cfg = dict(
    _delete_=True,  # mmengine refuses mmpretrain's by_epoch beside a type
    type='ResumableEpochBasedTrainLoop',
    max_epochs=90,
    val_interval=1)
custom_hooks = [dict(type='FiniteLossHook', action='stop')]
