# ImageNet-1k linear probing of LocalMIM ViT-B/16: mmpretrain's MAE protocol
# (../../mae/benchmarks/mae_vit-base-p16_linear-8xb2048-amp-coslr-90e_in1k.py:
# frozen backbone, the cls token after the final norm, BatchNorm without
# affine, linear head, LARS lr 6.4, batch 16384, 90 epochs). The LocalMIM
# authors publish no linear-probing protocol; their encoder is MAE's (visible
# tokens plus the cls token, which enters every tapped decoder), so the
# feature is MAE's: the cls token, after the final norm (the norm of the
# last tap). Position: the fixed 2-D sin-cos LocalMIM pretrains with, for
# the actual grid (a frozen learned table started from it would be the
# same at 224 px).
_base_ = ('../../mae/benchmarks/'
          'mae_vit-base-p16_linear-8xb2048-amp-coslr-90e_in1k.py')

model = dict(
    backbone=dict(
        pos_embed='sincos',
        init_cfg=dict(
            checkpoint='pretrain/localmim_vit-base-p16_backbone.pth')))
