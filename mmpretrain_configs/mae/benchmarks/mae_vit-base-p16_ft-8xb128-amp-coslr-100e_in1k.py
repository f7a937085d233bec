# ImageNet-1k fine-tuning of MAE ViT-B/16, mmpretrain's own MAE recipe
# (mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py, inherited whole):
# 100 epochs, batch 1024 = 8 GPUs x 128, AdamW lr 2e-3 (base 5e-4 x 1024 /
# 256), betas (0.9, 0.999), weight decay 0.05, layer decay 0.65, 5 linear
# warm-up epochs then cosine to 1e-6, drop path 0.1, RandAugment (m9, mstd
# 0.5), random erasing 0.25, Mixup 0.8 / CutMix 1.0, label smoothing 0.1,
# mean-pooled patch tokens through a new LayerNorm (fc_norm) into a linear
# head (trunc-normal std 2e-5); 224 px, test: resize 256 + center crop 224.
# The MAE authors' main_finetune.py recipe is the same.
# The backbone is this toolkit's MIMVisionTransformer in mmpretrain MAE's
# settings (learned absolute position, loaded from the checkpoint; the cls
# token kept in the sequence and left out of the pooling); mmpretrain
# checkpoints load into it with their parameter names mapped on the fly.
# Departs from mmpretrain's config in:
# * precision: bf16 autocast where the GPU has it, else fp16 with a dynamic
#   loss scale (the MAE authors fine-tune with AMP; mmpretrain's config runs
#   fp32), as every pretraining config here;
# * the layer-decay constructor: this toolkit's
#   LayerDecayOptimWrapperConstructor (mim_pretrain/engine/optim.py) with
#   the same rates and no weight decay on 1-D parameters, tokens and position
#   tables (mmpretrain's custom keys '.ln' / '.bias' / '.cls_token' /
#   '.pos_embed' give the same groups on its own ViT).
_base_ = 'mmpretrain::mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py'

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
        drop_path_rate=0.1,
        with_cls_token=True,
        out_type='avg_featmap',
        final_norm=False,
        fc_norm=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/mae_vit-base-p16_backbone.pth',
            prefix='backbone.')))

optim_wrapper = dict(
    type='MixedPrecisionOptimWrapper',
    dtype='auto',
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(_delete_=True, layer_decay_rate=0.65))

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
    max_epochs=100,
    val_interval=1)
custom_hooks = [dict(type='FiniteLossHook', action='stop')]
