# UperNet on ADE20K at 512 x 512 for 160k iterations (total batch 16 = 8 GPUs x
# 2 images, AdamW, AMP, sliding-window test, IoUMetric mIoU) with ViT-B/16 from
# MAE (mmpretrain; its parameter names are mapped on the fly when loading),
# mmseg's MAE protocol: blocks [3, 5, 7, 11], BEiT-style relative position bias
# (new, zero-initialised), layer scale 1.0, learned absolute position resized
# from the 14 x 14 pretraining grid, lr 1e-4, layer decay 0.65. See
# docs/model_zoo.md for the expected numbers.
# Everything else is mmseg's MAE config (configs/mae/mae-base_upernet_8xb2-amp-
# 160k_ade20k-512x512.py) except where the model and schedule bases
# (_base_/models/upernet_vit-b.py, _base_/schedules/upernet_vit_160k.py)
# say "departs".
_base_ = [
    '../_base_/models/upernet_vit-b.py', '../_base_/datasets/ade20k_8xb2.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/upernet_vit_160k.py'
]

custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/mae_vit-base-p16_backbone.pth',
            prefix='backbone.')))
