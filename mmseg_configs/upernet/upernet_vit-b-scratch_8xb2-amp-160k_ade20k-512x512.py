# UperNet on ADE20K at 512 x 512 for 160k iterations (total batch 16 = 8 GPUs x
# 2 images, AdamW, AMP, sliding-window test, IoUMetric mIoU) with a randomly
# initialised ViT-B/16, mmseg's MAE protocol (blocks [3, 5, 7, 11], lr 1e-4,
# layer decay 0.65) from random weights. See docs/model_zoo.md for the expected
# numbers.
# Everything else is mmseg's MAE protocol (configs/mae/mae-base_upernet_
# 8xb2-amp-160k_ade20k-512x512.py) except where the model and schedule bases
# (_base_/models/upernet_vit-b.py, _base_/schedules/upernet_vit_160k.py)
# say "departs".
_base_ = [
    '../_base_/models/upernet_vit-b.py', '../_base_/datasets/ade20k_8xb2.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/upernet_vit_160k.py'
]

custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)
