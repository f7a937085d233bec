"""Pretraining cost of LoMaR, LocalMIM and mmpretrain's MAE, side by side.

    python tools/benchmarks/pretrain_speed.py [--models lomar localmim mae]
        [--arch b] [--sizes 224 384 448 896] [--batch 2] [--batch-at 896=1]
        [--warmup 1] [--repeats 3] [--device cpu|cuda] [--amp none|bf16|fp16]
        [--threads N] [--profile] [--work-dir work_dirs/benchmarks]

Writes pretrain_speed.{json,md,png} under --work-dir; see ``--help``,
docs/benchmarks.md and :mod:`mim_pretrain.benchmarks.pretrain_speed`, where
the measurement lives.
"""
from mim_pretrain.benchmarks.pretrain_speed import main

if __name__ == '__main__':
    main()
