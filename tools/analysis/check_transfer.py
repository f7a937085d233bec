"""Do backbone weights carry what pretraining learned into a transfer model?

    python tools/analysis/check_transfer.py CONFIG WEIGHTS [--data-root DIR]
        [--iters 40] [--seed 0] [--work-dir DIR]

Fine-tunes the segmentation CONFIG from WEIGHTS, from WEIGHTS with the order
of its transformer blocks reversed and from a random initialisation (same
seed, same iterations) and prints their training and validation losses;
exit code 0 when WEIGHTS reach the lowest of both. See docs/tools.md and
:mod:`mim_pretrain.apis.transfer_check`.
"""
import sys

from mim_pretrain.apis.transfer_check import check_transfer_main

if __name__ == '__main__':
    sys.exit(check_transfer_main())
