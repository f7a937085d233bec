# ImageNet-1k fine-tuning of LoMaR ViT-B/16, the LoMaR authors' recipe
# (junchen14/LoMaR README and main_finetune_lomar.py / models_vit_rp.py):
# 100 epochs, batch 1024 (their 4 GPUs x 256; here 8 x 128), AdamW lr 2e-3 =
# base 5e-4 x 1024 / 256, betas (0.9, 0.999), weight decay 0.05, layer decay
# 0.65, 5 warm-up epochs then cosine to 1e-6, drop path 0.1, RandAugment
# (rand-m9-mstd0.5-inc1), random erasing 0.25, Mixup 0.8 / CutMix 1.0, label
# smoothing 0.1, AMP, 224 px. Their fine-tuning ViT keeps LoMaR's iRPE in
# every block and adds NO absolute position embedding; classification reads
# the mean of the patch tokens (cls token left out) through a new LayerNorm
# (fc_norm; the pretrained final norm is not used), as MAE's global pooling.
# This is the MAE fine-tuning config
# (../../mae/benchmarks/mae_vit-base-p16_ft-8xb128-amp-coslr-100e_in1k.py,
# mmpretrain's MAE recipe, which is the same recipe) with LoMaR's position
# encoding and checkpoint.
# Departs from the authors' code in: no weight decay on the iRPE tables
# (their fine-tuning decays them; the pretraining config here and theirs
# do not), the toolkit's rule for every ViT here.
_base_ = ('../../mae/benchmarks/'
          'mae_vit-base-p16_ft-8xb128-amp-coslr-100e_in1k.py')

model = dict(
    backbone=dict(
        pos_embed='none',
        irpe=dict(),
        init_cfg=dict(
            checkpoint='pretrain/lomar_vit-base-p16_backbone.pth')))
