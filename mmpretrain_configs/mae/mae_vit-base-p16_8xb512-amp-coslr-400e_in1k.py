# MAE baseline: mmpretrain's own MAE ViT-B/16 400-epoch config, untouched
# (batch 4096, lr 1.5e-4 * 4096 / 256, 40 warm-up epochs, AMP), the peer of
# the LoMaR and LocalMIM configs at the same budget.
_base_ = 'mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py'

custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)
# resume only with tools/train.py --resume, as every config here
resume = False
