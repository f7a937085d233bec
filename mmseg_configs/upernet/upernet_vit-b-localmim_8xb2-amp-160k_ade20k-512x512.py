# UperNet on ADE20K at 512 x 512 for 160k iterations with ViT-B/16 from
# LocalMIM, this toolkit's LocalMIM protocol: the LocalMIM authors' protocol
# (upernet_vit-b-localmim-authors_8xb2-amp-160k_ade20k-512x512.py: blocks
# [1, 3, 9, 11], BEiT-style relative position bias, layer scale 1.0, drop
# path 0.1, AdamW lr 4e-4, layer decay 0.65, their schedule, float16) with
# three changes.
# Departs from the LocalMIM authors' protocol in:
# * each tapped block's output goes through the LayerNorm it had in
#   pretraining (tap_norms=True loads them; the last one is the final norm),
#   where the authors feed the raw block outputs: the features the
#   pretraining objective shaped are read as pretraining read them;
# * the fixed sin-cos absolute position computed for the actual grid, where
#   the authors learn a table started from the 14 x 14 sin-cos resized to
#   32 x 32: the position pretraining used, exact at every grid;
# * max pooling for the 0.5x level (mmseg's Feature2Pyramid, as the MAE
#   protocol), where the authors average-pool.
# See docs/model_zoo.md.
_base_ = './upernet_vit-b-localmim-authors_8xb2-amp-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        pos_embed='sincos',
        pos_embed_init=None,
        pretrain_img_size=None,
        tap_norms=True),
    neck=dict(pool='max'))
