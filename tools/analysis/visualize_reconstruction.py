"""Draw what a pretrained model reconstructs, one PNG grid per image.

    python tools/analysis/visualize_reconstruction.py CONFIG CHECKPOINT \
        IMAGE [IMAGE ...] [--out-dir DIR] [--seed 0] [--size S] [--zoom 3]

Works for LoMaR, LocalMIM and mmpretrain's MAE checkpoints; see ``--help``,
docs/tools.md and :mod:`mim_pretrain.apis.reconstruction`, which draws the
grids.
"""
from mim_pretrain.apis import visualize_reconstruction_main

if __name__ == '__main__':
    visualize_reconstruction_main()
