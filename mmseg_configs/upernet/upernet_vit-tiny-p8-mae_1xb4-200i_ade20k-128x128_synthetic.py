# The tiny UperNet
# (upernet_vit-tiny-p8-scratch_1xb4-200i_ade20k-128x128_synthetic.py)
# initialised from the tiny MAE pretraining
# (mmpretrain_configs/mae/mae_vit-tiny-p8_1xb32-20e_synthetic.py): the same
# backbone, 4 blocks, with the settings of
# upernet_vit-b-mae_8xb2-amp-160k_ade20k-512x512.py, i.e. MAE's (mmpretrain
# MAEViT, learned position resized to the input grid). The checkpoint is its
# weights extracted with tools/model_converters/extract_weights.py CKPT
# work_dirs/mae_vit-tiny-p8_1xb32-20e_synthetic/backbone.pth --prefix backbone.
# (tools/transfer.py --tiny does it).
_base_ = './upernet_vit-tiny-p8-scratch_1xb4-200i_ade20k-128x128_synthetic.py'

depth = 4  # blocks of the tiny MAE pretraining ViT
model = dict(
    backbone=dict(
        arch=dict(depth=depth),
        out_indices=(depth // 4 - 1, depth // 2 - 1, 3 * depth // 4 - 1,
                     depth - 1),
        pos_embed='learned',
        init_cfg=dict(
            type='Pretrained',
            checkpoint=('work_dirs/mae_vit-tiny-p8_1xb32-20e_synthetic/'
                        'backbone.pth'),
            prefix='backbone.')))
