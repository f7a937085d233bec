# LocalMIM with per-cell normalised pixel targets instead of HOG; otherwise
# the 100-epoch ViT-B HOG config.
_base_ = './localmim_vit-base-p16_8xb256-amp-coslr-100e_in1k.py'

model = dict(target_generator=dict(_delete_=True, type='PixelTarget'))
