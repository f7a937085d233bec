# Mask R-CNN with a plain ViT-B/16, the ViTDet recipe of mmdet's
# projects/ViTDet (configs/vitdet_mask-rcnn_vit-b-mae_lsj-100e.py and its
# vitdet/ modules, checked against mmdet 3.x): mmdet's own
# mask-rcnn_r50_fpn.py with
# * the backbone replaced by this toolkit's MIMVisionTransformer: 14 x 14
#   window attention except in blocks 2, 5, 8, 11 (global), decomposed
#   relative position (zero-initialised), drop path 0.1, no cls token, the
#   last block's map only; the learned absolute position kept at the 14 x 14
#   pretraining grid (with its cls slot) and bicubically interpolated to the
#   64 x 64 grid in every forward (ViTDet's get_abs_pos); trunc-normal 0.02
#   random initialisation (ViTDet's _init_weights); LayerNorm eps 1e-5
#   (upstream's norm_cfg=dict(type='LN') through mmcv's build_norm_layer,
#   whose default eps is 1e-5);
# * the FPN replaced by the simple feature pyramid (4x / 2x / 1x / 0.5x of
#   the stride-16 map, plus the RPN's stride-64 level; LN2d, eps 1e-5 as
#   upstream's build_norm_layer gives it, convs initialised as mmcv's
#   ConvModule);
# * 2 RPN convs (no norm, as upstream), and LayerNorm in the RoI heads: a
#   4-conv + 1-fc box head and the 4-conv mask head, their convs normalised
#   with LayerNorm over channels (eps 1e-5, again mmcv's default);
# * every batch padded to the fixed 1024 x 1024 input.
# This is the randomly initialised ("scratch") model, as upstream's ViT with
# no checkpoint; the -lomar/-localmim/-mae model files change the
# initialisation. Departs from mmdet's ViTDet in: nothing in the model (the
# pretrained model files depart in the backbone's LayerNorm eps, see there).
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'

# mmpretrain's LayerNorm over the channels of [B, C, H, W] maps (ViTDet's
# LN2d), with the eps mmdet's configs give it
head_norm_cfg = dict(type='mmpretrain.LN2d', eps=1e-5, requires_grad=True)
model = dict(
    data_preprocessor=dict(
        pad_size_divisor=32,
        batch_augments=[
            dict(type='BatchFixedSizePad', size=(1024, 1024), pad_mask=True)
        ]),
    backbone=dict(
        _delete_=True,
        type='MIMVisionTransformer',
        arch='b',
        patch_size=16,
        img_size=1024,
        pos_embed='interpolated',
        pretrain_img_size=224,
        rel_pos='decomposed',
        window_size=14,
        global_blocks=(2, 5, 8, 11),
        with_cls_token=False,
        out_indices=(-1, ),
        drop_path_rate=0.1,
        norm_eps=1e-5,
        weight_init='trunc_normal'),
    neck=dict(
        _delete_=True,
        type='ViTFeaturePyramid',
        in_channels=768,
        out_channels=256,
        scales=(4., 2., 1., 0.5),
        num_outs=5,
        norm_eps=1e-5),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=head_norm_cfg),
        mask_head=dict(norm_cfg=head_norm_cfg)))
