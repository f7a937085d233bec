# The tiny UperNet
# (upernet_vit-tiny-p8-scratch_1xb4-200i_ade20k-128x128_synthetic.py)
# initialised from the tiny LoMaR pretraining
# (mmpretrain_configs/lomar/lomar_vit-tiny-p8_1xb32-20e_synthetic.py): the same
# backbone, 4 blocks, with the settings of
# upernet_vit-b-lomar_8xb2-amp-160k_ade20k-512x512.py, i.e. LoMaR's (no
# absolute position, its iRPE tables kept). The checkpoint is its weights
# extracted with tools/model_converters/extract_weights.py CKPT
# work_dirs/lomar_vit-tiny-p8_1xb32-20e_synthetic/backbone.pth --prefix
# backbone. (tools/transfer.py --tiny does it).
_base_ = './upernet_vit-tiny-p8-scratch_1xb4-200i_ade20k-128x128_synthetic.py'

depth = 4  # blocks of the tiny LoMaR pretraining ViT
model = dict(
    backbone=dict(
        arch=dict(depth=depth),
        out_indices=(depth // 4 - 1, depth // 2 - 1, 3 * depth // 4 - 1,
                     depth - 1),
        pos_embed='none',
        irpe=dict(),
        init_cfg=dict(
            type='Pretrained',
            checkpoint=('work_dirs/lomar_vit-tiny-p8_1xb32-20e_synthetic/'
                        'backbone.pth'),
            prefix='backbone.')))
