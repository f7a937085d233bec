# Mask R-CNN, ViT-B/16 from MAE (mmpretrain), on COCO with the ViTDet recipe:
# 100 epochs (large-scale jitter at 1024 px, total batch 64 = 16 GPUs x 4
# images, AdamW with layer decay 0.7, AMP); CocoMetric for bbox and segm. See
# docs/model_zoo.md for the expected numbers; it matches mmdet's
# projects/ViTDet except where the model and schedule bases say "departs".
_base_ = [
    '../_base_/models/mask-rcnn_vitdet-b-mae.py',
    '../_base_/datasets/coco_instance_lsj-1024.py',
    '../_base_/schedules/vitdet_lsj-100e.py'
]

custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)
