# ImageNet-1k linear probing of LoMaR ViT-B/16: mmpretrain's MAE protocol
# (../../mae/benchmarks/mae_vit-base-p16_linear-8xb2048-amp-coslr-90e_in1k.py:
# frozen backbone, BatchNorm without affine, linear head, LARS lr 6.4, batch
# 16384, 90 epochs) with LoMaR's position encoding (its iRPE tables, no
# absolute position) and one change of feature: the MEAN of the patch tokens
# after the pretrained final norm, not the cls token. The LoMaR authors
# publish no linear-probing protocol. LoMaR's loss reads masked patch tokens
# only, and in pretraining its cls token sat in 7 x 7 windows of 49 patches,
# with one iRPE bucket for all its pairs; at 224 px it attends to 196. The
# patch tokens are what its objective shaped, and mean pooling is the
# feature its fine-tuning uses.
_base_ = ('../../mae/benchmarks/'
          'mae_vit-base-p16_linear-8xb2048-amp-coslr-90e_in1k.py')

model = dict(
    backbone=dict(
        pos_embed='none',
        irpe=dict(),
        out_type='avg_featmap',
        init_cfg=dict(
            checkpoint='pretrain/lomar_vit-base-p16_backbone.pth')))
