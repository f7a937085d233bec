# UperNet on ADE20K at 512 x 512 for 160k iterations (total batch 16 = 8 GPUs x
# 2 images, AdamW, AMP, sliding-window test, IoUMetric mIoU) with ViT-B/16 from
# LocalMIM, the LocalMIM authors' protocol: features of the pretraining taps,
# blocks [1, 3, 9, 11], each through its own pretrained LayerNorm
# (tap_norms=True loads them), the fixed sin-cos absolute position of
# pretraining, BEiT-style relative position bias (new, zero-initialised), layer
# scale 1.0, drop path 0.1, AdamW lr 4e-4, layer decay 0.65, 1500 warm-up
# iterations, poly decay. See docs/model_zoo.md for the expected numbers.
_base_ = [
    '../_base_/models/upernet_vit-b.py', '../_base_/datasets/ade20k_8xb2.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/upernet_vit_160k.py'
]

custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        pos_embed='sincos',
        out_indices=(1, 3, 9, 11),
        tap_norms=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/localmim_vit-base-p16_backbone.pth',
            prefix='backbone.')))
optim_wrapper = dict(optimizer=dict(lr=4e-4))
