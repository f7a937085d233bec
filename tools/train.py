"""Train a model from a config of this repository.

Pretraining (mmpretrain_configs/), detection (mmdet_configs/) and segmentation
(mmseg_configs/) configs all go through this one tool; see
``python tools/train.py --help``.
"""
from mim_pretrain.apis import train_main

if __name__ == '__main__':
    train_main()
