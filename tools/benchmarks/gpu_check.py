"""One-command GPU check: environment, AMP steps, SDPA kernels, MFU.

    python tools/benchmarks/gpu_check.py [--work-dir work_dirs/gpu_check]
        [--device cuda|cpu] [--amp bf16|fp16] [--budget-s 480] ...

Writes gpu_check.{json,md} under --work-dir and exits 1 when an item
failed; see ``--help``, docs/benchmarks.md and
:mod:`mim_pretrain.benchmarks.gpu_check`, where the items live.
"""
from mim_pretrain.benchmarks.gpu_check import cli

if __name__ == '__main__':
    cli()
