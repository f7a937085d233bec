# The tiny ViTDet Mask R-CNN
# (mask-rcnn_vit-tiny-p8-scratch_simfp_1xb4-lsj-300i_synthetic.py) initialised
# from the tiny MAE pretraining
# (mmpretrain_configs/mae/mae_vit-tiny-p8_1xb32-20e_synthetic.py): the same
# backbone, 4 blocks, with the settings of
# ../_base_/models/mask-rcnn_vitdet-b-mae.py, i.e. MAE's (mmpretrain MAEViT,
# learned 12 x 12 position interpolated to the input grid in every forward,
# as ViTDet's; LayerNorm eps 1e-6). The checkpoint is its weights
# extracted with tools/model_converters/extract_weights.py CKPT
# work_dirs/mae_vit-tiny-p8_1xb32-20e_synthetic/backbone.pth --prefix backbone.
# (tools/transfer.py --tiny does it).
_base_ = './mask-rcnn_vit-tiny-p8-scratch_simfp_1xb4-lsj-300i_synthetic.py'

depth = 4  # blocks of the tiny MAE pretraining ViT
model = dict(
    backbone=dict(
        arch=dict(depth=depth),
        global_blocks=(depth // 2 - 1, depth - 1),
        norm_eps=1e-6,
        init_cfg=dict(
            type='Pretrained',
            checkpoint=('work_dirs/mae_vit-tiny-p8_1xb32-20e_synthetic/'
                        'backbone.pth'),
            prefix='backbone.')))
# ViTDet's layer decay for a pretrained backbone (the random initialisation's
# config has none)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.7))
