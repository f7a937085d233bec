# LocalMIM Swin-B with per-cell normalised pixel targets (the authors'
# --norm_pix_loss run) instead of HOG; otherwise the 400-epoch HOG config.
_base_ = './localmim_swin-base-w7_8xb256-amp-coslr-400e_in1k.py'

model = dict(
    # per cell: its 8/16/32/32-px square of RGB pixels
    neck=dict(out_channels=(8 * 8 * 3, 16 * 16 * 3, 32 * 32 * 3,
                            32 * 32 * 3)),
    target_generator=dict(_delete_=True, type='PixelTarget'))
