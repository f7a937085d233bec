# ViTDet Mask R-CNN (mask-rcnn_vitdet-b.py) initialised from LocalMIM
# ViT-B/16 (this toolkit's run, or the authors' checkpoint converted with
# tools/model_converters/convert_checkpoint.py --format localmim): the fixed
# 2-D sin-cos absolute position of pretraining, computed for the 64 x 64
# grid; decomposed relative position new (zero-initialised), as in ViTDet.
# Only the last block's map is used, so the tap norms of pretraining are not.
_base_ = './mask-rcnn_vitdet-b.py'

model = dict(
    backbone=dict(
        pos_embed='sincos',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/localmim_vit-base-p16_backbone.pth',
            prefix='backbone.')))
