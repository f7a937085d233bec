"""Evaluate a checkpoint with the evaluator of its config.

Works for detection (CocoMetric), segmentation (IoUMetric) and mmpretrain
configs; see ``python tools/test.py --help``.
"""
from mim_pretrain.apis import test_main

if __name__ == '__main__':
    test_main()
