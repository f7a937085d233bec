# ViTDet Mask R-CNN (mask-rcnn_vitdet-b.py) initialised from LoMaR ViT-B/16
# (this toolkit's run, or the authors' checkpoint converted with
# tools/model_converters/convert_checkpoint.py --format lomar).
# The choice for LoMaR: no absolute position embedding (LoMaR never learns
# one) and its pretrained iRPE tables kept in every block, in windowed and
# global attention alike (its buckets are clipped at 3 patches, so the same
# tables serve any window or grid); ViTDet's decomposed relative position is
# added as for every other initialisation (zero-initialised), so that long
# offsets are told apart in the 64 x 64 global blocks too.
_base_ = './mask-rcnn_vitdet-b.py'

model = dict(
    backbone=dict(
        pos_embed='none',
        irpe=dict(),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/lomar_vit-base-p16_backbone.pth',
            prefix='backbone.')))
