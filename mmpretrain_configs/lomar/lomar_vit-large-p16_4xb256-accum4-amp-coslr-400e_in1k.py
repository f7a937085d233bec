# LoMaR ViT-L/16 (1024-d, 24 blocks, 16 heads), recipe of the ViT-B config.
_base_ = './lomar_vit-base-p16_4xb256-accum4-amp-coslr-400e_in1k.py'

model = dict(backbone=dict(arch='l'), head=dict(embed_dims=1024))
