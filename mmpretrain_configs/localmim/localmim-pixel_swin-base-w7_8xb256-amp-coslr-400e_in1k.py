# LocalMIM Swin-B with per-cell normalised pixel targets (the authors'
# --norm_pix_loss run) instead of HOG; otherwise the 400-epoch HOG config.
_base_ = './localmim_swin-base-w7_8xb256-amp-coslr-400e_in1k.py'

model = dict(target_generator=dict(_delete_=True, type='PixelTarget'))
