# LocalMIM with ViT-B/16: MAE-style encoder (75% of patches masked, fixed
# sin-cos position), taps after blocks 1, 3, 9, 11 with their own LayerNorm,
# one local decoder per tap (256-d, 1 block, 8 heads) at 4x / 2x / 1x / 0.5x
# the patch grid (56/28/14/7 at 224), HOG targets over 4/8/16/32-px cells,
# masked MSE per tap, summed with equal weights.
model = dict(
    type='LocalMIM',
    backbone=dict(
        type='LocalMIMViT',
        arch='b',
        patch_size=16,
        mask_ratio=0.75,
        out_indices=(1, 3, -3, -1),
        pos_embed='sincos'),
    neck=dict(
        type='LocalMIMDecoders',
        in_dims=768,
        scales=(4., 2., 1., 0.5),
        # per cell: HOG's 3 channels x 9 bins
        out_channels=(27, 27, 27, 27),
        dims=256,
        num_heads=8),
    head=dict(type='LocalMIMHead', loss_weights=(1., 1., 1., 1.)),
    target_generator=dict(type='HOGTarget', nbins=9))
