# ViTDet Mask R-CNN (mask-rcnn_vitdet-b.py) initialised from LocalMIM
# ViT-B/16 (this toolkit's run, or the authors' checkpoint converted with
# tools/model_converters/convert_checkpoint.py --format localmim). LocalMIM
# has no detection code; this is ViTDet's protocol applied to it, as for MAE:
# the absolute position is ViTDet's learned 14 x 14 table, interpolated to
# the input grid in every forward, and it starts from the fixed sin-cos of
# pretraining (the authors' checkpoints store that table as their
# pos_embed and load it; this toolkit's store none, so
# pos_embed_init='sincos' computes the same values); decomposed relative
# position new. Only the last block is read, so the tap norms of pretraining
# are not used.
# Departs from mmdet's ViTDet in: the backbone's LayerNorm eps, 1e-6
# (LocalMIM's pretraining eps), where upstream's config gets mmcv's default
# 1e-5.
_base_ = './mask-rcnn_vitdet-b.py'

model = dict(
    backbone=dict(
        pos_embed_init='sincos',
        norm_eps=1e-6,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/localmim_vit-base-p16_backbone.pth',
            prefix='backbone.')))
