# ViTDet Mask R-CNN (mask-rcnn_vitdet-b.py) initialised from an MAE ViT-B/16
# pretrained with mmpretrain (MAEViT; its parameter names are mapped on the
# fly when loading): the learned absolute position embedding of the 14 x 14
# pretraining grid is resized bicubically to the 64 x 64 grid; the decomposed
# relative position tables are new (zero-initialised), as in ViTDet.
_base_ = './mask-rcnn_vitdet-b.py'

model = dict(
    backbone=dict(
        pos_embed='learned',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/mae_vit-base-p16_backbone.pth',
            prefix='backbone.')))
