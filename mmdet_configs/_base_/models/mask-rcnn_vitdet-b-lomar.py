# ViTDet Mask R-CNN (mask-rcnn_vitdet-b.py) initialised from LoMaR ViT-B/16
# (this toolkit's run, or the authors' checkpoint converted with
# tools/model_converters/convert_checkpoint.py --format lomar). LoMaR has no
# detection code; everything is ViTDet's protocol except the position:
# Departs from mmdet's ViTDet in:
# * no absolute position embedding (LoMaR never learns one; ViTDet's would
#   start random) and LoMaR's pretrained iRPE tables kept in every block,
#   windowed and global alike (its buckets are clipped at 3 patches, so the
#   same tables serve any window or grid); ViTDet's decomposed relative
#   position is added as for every other initialisation (zero-initialised),
#   so that long offsets are told apart in the 64 x 64 global blocks too;
# * the backbone's LayerNorm eps, 1e-6 (LoMaR's pretraining eps), where
#   upstream's config gets mmcv's default 1e-5.
_base_ = './mask-rcnn_vitdet-b.py'

model = dict(
    backbone=dict(
        pos_embed='none',
        pretrain_img_size=None,
        irpe=dict(),
        norm_eps=1e-6,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/lomar_vit-base-p16_backbone.pth',
            prefix='backbone.')))
