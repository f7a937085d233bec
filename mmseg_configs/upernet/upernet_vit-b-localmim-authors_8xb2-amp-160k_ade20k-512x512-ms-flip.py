# The multi-scale + flip test of
# upernet_vit-b-localmim-authors_8xb2-amp-160k_ade20k-512x512.py (the image
# resized to 0.5-1.75 x (2048, 512), with and without horizontal flip, the
# softmax scores averaged): tools/test.py THIS_CONFIG CHECKPOINT --tta. The
# authors report single-scale numbers; training with this config is the same
# as with the single-scale one.
_base_ = './upernet_vit-b-localmim-authors_8xb2-amp-160k_ade20k-512x512.py'

tta_pipeline = _base_.ms_flip_tta_pipeline
