# UperNet with a plain ViT-B/16 at 512 x 512, mmseg's MAE/BEiT recipe:
# mmseg's own upernet_mae.py (Feature2Pyramid 4x / 2x / 1x / 0.5x, UPerHead
# with 768 channels, auxiliary FCN head, 150 ADE20K classes, sliding-window
# test 512 / 341) with the backbone replaced by this toolkit's
# MIMVisionTransformer in mmseg MAE's settings: blocks [3, 5, 7, 11], a new
# BEiT-style relative position bias per block (zero-initialised), layer
# scale 1.0, drop path 0.1, a learned absolute position embedding (a free
# 32 x 32 table, a checkpoint's resized to it on load, as mmseg's MAE
# resize_abs_pos_embed), the cls token kept, raw block outputs (mmseg's MAE
# has final_norm=False), LayerNorm eps 1e-6. This is the randomly
# initialised ("scratch") model; the configs under upernet/ set the
# initialisation.
# Departs from mmseg's MAE model in: the random initialisation, this
# toolkit's MAE (xavier) one; mmseg's MAE backbone is made to load a
# checkpoint, and its random path (trunc-normal, zero pos_embed) has no
# published result to match.
_base_ = 'mmseg::_base_/models/upernet_mae.py'

model = dict(
    data_preprocessor=dict(size=(512, 512)),
    backbone=dict(
        _delete_=True,
        type='MIMVisionTransformer',
        arch='b',
        patch_size=16,
        img_size=512,
        pos_embed='learned',
        rel_pos='beit',
        layer_scale_init=1.0,
        drop_path_rate=0.1,
        with_cls_token=True,
        out_indices=(3, 5, 7, 11)),
    neck=dict(embed_dim=768, rescales=[4, 2, 1, 0.5]),
    decode_head=dict(
        in_channels=[768, 768, 768, 768], channels=768, num_classes=150),
    auxiliary_head=dict(in_channels=768, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
