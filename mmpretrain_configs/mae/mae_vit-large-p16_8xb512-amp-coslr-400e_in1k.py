# MAE baseline: mmpretrain's own MAE ViT-L/16 400-epoch config, untouched.
_base_ = 'mmpretrain::mae/mae_vit-large-p16_8xb512-amp-coslr-400e_in1k.py'

custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)
resume = False
