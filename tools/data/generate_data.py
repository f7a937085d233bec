"""Write the built-in datasets, in the real ImageNet / COCO / ADE20K layouts.

    python tools/data/generate_data.py [--out data] [--seed 0] [--scale 1]

writes ``data/imagenet`` (``train/`` + ``meta/train.txt``: the pretraining
and classification training images; ``val/`` + ``meta/val.txt``: the
classification validation images), ``data/coco``
(instances_{train,val}2017.json + images) and ``data/ade/ADEChallengeData2016``
(images + label PNGs), and ``data/summary.json``. The same seed writes the
same files. The configs of this repository read these paths by default. The
work is :func:`mim_pretrain.apis.generate_data_main`.
"""
from mim_pretrain.apis import generate_data_main

if __name__ == '__main__':
    generate_data_main()
