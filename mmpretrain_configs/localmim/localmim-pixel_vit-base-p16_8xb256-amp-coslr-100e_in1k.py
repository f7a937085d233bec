# LocalMIM with per-cell normalised pixel targets instead of HOG; otherwise
# the 100-epoch ViT-B HOG config.
_base_ = './localmim_vit-base-p16_8xb256-amp-coslr-100e_in1k.py'

model = dict(
    # per cell: its 4/8/16/32-px square of RGB pixels
    neck=dict(out_channels=(4 * 4 * 3, 8 * 8 * 3, 16 * 16 * 3, 32 * 32 * 3)),
    target_generator=dict(_delete_=True, type='PixelTarget'))
