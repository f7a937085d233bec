# The tiny UperNet
# (upernet_vit-tiny-p8-scratch_1xb4-200i_ade20k-128x128_synthetic.py)
# initialised from the tiny LocalMIM pretraining
# (mmpretrain_configs/localmim/localmim_vit-tiny-p8_1xb32-20e_synthetic.py):
# the same backbone, 4 blocks, with this toolkit's LocalMIM protocol as in
# upernet_vit-b-localmim_8xb2-amp-160k_ade20k-512x512.py: the pretraining taps
# (every block of 4, as ViT-B's 2, 4, 10, 12 of 12) through their pretrained
# LayerNorms, fixed sin-cos position, max pooling, the learning rate 4 x the
# MAE protocol's (4e-4 vs 1e-4 there); the schedule is the tiny scratch
# config's. The checkpoint is its weights extracted with
# tools/model_converters/extract_weights.py CKPT
# work_dirs/localmim_vit-tiny-p8_1xb32-20e_synthetic/backbone.pth --prefix
# backbone. (tools/transfer.py --tiny does it).
_base_ = './upernet_vit-tiny-p8-scratch_1xb4-200i_ade20k-128x128_synthetic.py'

depth = 4  # blocks of the tiny LocalMIM pretraining ViT
model = dict(
    backbone=dict(
        arch=dict(depth=depth),
        out_indices=(0, 1, 2, 3),
        tap_norms=True,
        pos_embed='sincos',
        init_cfg=dict(
            type='Pretrained',
            checkpoint=('work_dirs/localmim_vit-tiny-p8_1xb32-20e_synthetic/'
                        'backbone.pth'),
            prefix='backbone.')))
optim_wrapper = dict(optimizer=dict(lr=4 * _base_.optim_wrapper.optimizer.lr))
