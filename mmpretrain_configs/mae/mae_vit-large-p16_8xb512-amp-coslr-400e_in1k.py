# MAE baseline: mmpretrain's own MAE ViT-L/16 400-epoch config, untouched.
_base_ = 'mmpretrain::mae/mae_vit-large-p16_8xb512-amp-coslr-400e_in1k.py'

custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)
resume = False

# the precision of the LoMaR and LocalMIM configs, so the comparison is like
# for like: bf16 autocast where the GPU has it, else fp16 with mmpretrain's
# dynamic loss scale; fused AdamW (same update, one kernel). Everything
# else is mmpretrain's.
optim_wrapper = dict(
    type='MixedPrecisionOptimWrapper', dtype='auto',
    optimizer=dict(fused=True))
# mmpretrain's MAE pipeline, images loaded with CheckedLoadImageFromFile
# (mim_pretrain/datasets/transforms.py): a truncated or unreadable image is
# an error naming the file
train_pipeline = [
    dict(t, type='CheckedLoadImageFromFile')
    if t.type == 'LoadImageFromFile' else t for t in _base_.train_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# mmengine forbids a second base beside this full upstream config (both
# would define the runtime), so the repository's runtime additions
# (_base_/default_runtime.py) are written here: exact-resume loop and
# FiniteLossHook
train_cfg = dict(type='ResumableEpochBasedTrainLoop')
custom_hooks = [dict(type='FiniteLossHook', action='stop')]
