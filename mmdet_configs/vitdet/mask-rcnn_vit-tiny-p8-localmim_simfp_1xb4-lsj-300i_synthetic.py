# The tiny ViTDet Mask R-CNN
# (mask-rcnn_vit-tiny-p8-scratch_simfp_1xb4-lsj-300i_synthetic.py) initialised
# from the tiny LocalMIM pretraining
# (mmpretrain_configs/localmim/localmim_vit-tiny-p8_1xb32-20e_synthetic.py):
# the same backbone, 4 blocks, with the settings of
# ../_base_/models/mask-rcnn_vitdet-b-localmim.py, i.e. ViTDet's learned,
# interpolated position started from LocalMIM's sin-cos of the 12 x 12
# pretraining grid, LayerNorm eps 1e-6. The checkpoint is its weights
# extracted with tools/model_converters/extract_weights.py CKPT
# work_dirs/localmim_vit-tiny-p8_1xb32-20e_synthetic/backbone.pth --prefix
# backbone. (tools/transfer.py --tiny does it).
_base_ = './mask-rcnn_vit-tiny-p8-scratch_simfp_1xb4-lsj-300i_synthetic.py'

depth = 4  # blocks of the tiny LocalMIM pretraining ViT
model = dict(
    backbone=dict(
        arch=dict(depth=depth),
        global_blocks=(depth // 2 - 1, depth - 1),
        pos_embed_init='sincos',
        norm_eps=1e-6,
        init_cfg=dict(
            type='Pretrained',
            checkpoint=('work_dirs/localmim_vit-tiny-p8_1xb32-20e_synthetic/'
                        'backbone.pth'),
            prefix='backbone.')))
# ViTDet's layer decay for a pretrained backbone (the random initialisation's
# config has none)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.7))
