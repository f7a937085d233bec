# LoMaR ViT-S/16 (384-d, 12 blocks, 6 heads), recipe of the ViT-B config.
_base_ = './lomar_vit-base-p16_4xb256-accum4-amp-coslr-400e_in1k.py'

model = dict(backbone=dict(arch='s'), head=dict(embed_dims=384))
