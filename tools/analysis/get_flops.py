"""Parameters and FLOPs of a config, as OpenMMLab's model zoos count them.

    python tools/analysis/get_flops.py CONFIG [--shape H [W]]
        [--cfg-options KEY=VALUE ...] [--seed 0] [--json]

1 multiply-add = 1 FLOP, forward pass, mmengine's counter: the numbers of
mmpretrain's, mmdet's and mmseg's own get_flops tools, with attention
(``scaled_dot_product_attention``) counted. Pretraining configs get two
rows: the encoder on the full image and the pretraining forward with its
masking. See ``--help``, docs/tools.md and
:mod:`mim_pretrain.benchmarks.flops`, where the counting lives.
"""
from mim_pretrain.benchmarks.flops import main

if __name__ == '__main__':
    main()
