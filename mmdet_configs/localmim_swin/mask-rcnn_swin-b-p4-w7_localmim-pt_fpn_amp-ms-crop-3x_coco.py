# Mask R-CNN, Swin-B (patch 4, window 7) FPN, on COCO with mmdet's 3x
# multi-scale-crop schedule (36 epochs, batch 16 = 8 GPUs x 2, AdamW lr 1e-4,
# weight decay 0.05, none on norms and relative position tables, AMP),
# initialised from LocalMIM Swin-B pretraining. mmdet's own SwinTransformer
# loads the weights by name: this toolkit's pretraining encoder uses its
# layout (run tools/model_converters/extract_weights.py CKPT OUT --prefix
# backbone.), and the authors' checkpoints convert to it
# (tools/model_converters/convert_checkpoint.py --format localmim-swin).
# norm0-2 (the pre-merging stage outputs C/2C/4C) have no pretrained
# counterpart and start as identity LayerNorms; norm3 is pretraining's.
# The authors publish no detection code; the origin of this recipe is mmdet's
# Swin-T 3x config, with Swin-B's sizes. Departs from it in precision (bf16
# where the GPU has it, see below). Its drop path 0.2 is mmdet's Swin-T/S
# Mask R-CNN's; the official Swin-B detection configs use 0.3
# (cfg-options model.backbone.drop_path_rate=0.3).
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_amp-ms-crop-3x_coco.py'

custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        embed_dims=128,
        depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32],
        window_size=7,
        convert_weights=False,  # already mmdet's layout
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/localmim_swin-base-w7_backbone.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
# mmdet's AmpOptimWrapper (fp16) -> bf16 autocast where the GPU has it, else
# fp16 with a dynamic loss scale; fused AdamW
optim_wrapper = dict(
    type='MixedPrecisionOptimWrapper', optimizer=dict(fused=True))
# mmdet's pipelines, images loaded with CheckedLoadImageFromFile
# (mim_pretrain/datasets/transforms.py): a truncated or unreadable image is an
# error naming the file
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(t, type='CheckedLoadImageFromFile')
        if t.type == 'LoadImageFromFile' else t
        for t in _base_.train_dataloader.dataset.pipeline
    ]))
val_dataloader = dict(
    dataset=dict(pipeline=[
        dict(t, type='CheckedLoadImageFromFile')
        if t.type == 'LoadImageFromFile' else t
        for t in _base_.val_dataloader.dataset.pipeline
    ]))
test_dataloader = val_dataloader

# mmengine forbids a second base beside this full upstream config (both
# would define the runtime), so the repository's runtime additions
# (_base_/default_runtime.py) are written here: exact-resume loop and
# FiniteLossHook
train_cfg = dict(type='ResumableEpochBasedTrainLoop')
custom_hooks = [dict(type='FiniteLossHook', action='stop')]

# COCO train2017 holds a few boxes that mmdet's CocoDataset drops without a
# word; drop them as upstream does, counted in the log (troubleshooting.md)
data_checks = dict(invalid_boxes='skip')
