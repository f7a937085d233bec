"""Transfer cost: this toolkit's ViT-B backbone against OpenMMLab anchors.

    python tools/benchmarks/transfer_speed.py [--tasks det seg]
        [--det-size 1024] [--seg-size 512] [--batch 1] [--warmup 1]
        [--repeats 2] [--device cpu|cuda] [--amp none|bf16|fp16]
        [--threads N] [--work-dir work_dirs/benchmarks]

Writes transfer_speed.{json,md} under --work-dir; see ``--help``,
docs/benchmarks.md and :mod:`mim_pretrain.benchmarks.transfer_speed`, where
the measurement lives.
"""
from mim_pretrain.benchmarks.transfer_speed import main

if __name__ == '__main__':
    main()
