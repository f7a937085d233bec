"""Cost of LocalMIM-Swin's two encoder modes: time, peak memory, tokens.

    python tools/benchmarks/swin_modes.py [--config CFG] [--size 224] \
        [--batch 8] [--steps 5] [--warmup 2] [--repeats 1] \
        [--device cpu|cuda] [--amp] [--out FILE.json]

See ``--help``, docs/benchmarks.md and
:mod:`mim_pretrain.benchmarks.swin_modes`, where the measurement lives.
"""
from mim_pretrain.benchmarks.swin_modes import main

if __name__ == '__main__':
    main()
