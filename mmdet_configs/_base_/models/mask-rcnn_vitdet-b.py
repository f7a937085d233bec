# Mask R-CNN with a plain ViT-B/16, the ViTDet recipe (Li et al. 2022, as in
# mmdet's projects/ViTDet): mmdet's own mask-rcnn_r50_fpn.py with
# * the backbone replaced by this toolkit's MIMVisionTransformer: 14 x 14
#   window attention except in blocks 2, 5, 8, 11 (global), decomposed
#   relative position (zero-initialised), drop path 0.1, no cls token, the
#   last block's map only;
# * the FPN replaced by the simple feature pyramid (4x / 2x / 1x / 0.5x of
#   the stride-16 map, plus the RPN's stride-64 level);
# * LayerNorm in the heads: 2 RPN convs, a 4-conv + 1-fc box head and the
#   4-conv mask head, their convs normalised with LayerNorm over channels;
# * every batch padded to the fixed 1024 x 1024 input.
# This is the randomly initialised ("scratch") model, with a learned
# absolute position embedding as ViTDet's; the -lomar/-localmim/-mae model
# files change the initialisation.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'

# mmpretrain's LayerNorm over the channels of [B, C, H, W] maps (ViTDet's
# LN2d), eps as in ViTDet
head_norm_cfg = dict(type='mmpretrain.LN2d', eps=1e-6, requires_grad=True)
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
        pos_embed='learned',
        rel_pos='decomposed',
        window_size=14,
        global_blocks=(2, 5, 8, 11),
        with_cls_token=False,
        out_indices=(-1, ),
        drop_path_rate=0.1),
    neck=dict(
        _delete_=True,
        type='ViTFeaturePyramid',
        in_channels=768,
        out_channels=256,
        scales=(4., 2., 1., 0.5),
        num_outs=5),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=head_norm_cfg),
        mask_head=dict(norm_cfg=head_norm_cfg)))
