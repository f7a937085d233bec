# ViTDet Mask R-CNN (mask-rcnn_vitdet-b.py) initialised from an MAE ViT-B/16
# pretrained with mmpretrain (MAEViT; its parameter names are mapped on the
# fly when loading), as mmdet's vitdet_mask-rcnn_vit-b-mae_lsj-100e.py: the
# learned 14 x 14 absolute position of pretraining loads unchanged and is
# interpolated to the input grid in every forward; the decomposed relative
# position tables are new (zero-initialised).
# Departs from mmdet's ViTDet in: the backbone's LayerNorm eps, 1e-6 (the
# eps MAE was pretrained with) where upstream's config builds its blocks
# with mmcv's default 1e-5 around the same pretrained weights.
_base_ = './mask-rcnn_vitdet-b.py'

model = dict(
    backbone=dict(
        norm_eps=1e-6,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/mae_vit-base-p16_backbone.pth',
            prefix='backbone.')))
