"""Collect transfer results from work dirs into the papers' table.

    python tools/analysis/collect_results.py RUN [RUN ...] \
        [--out-md FILE] [--out-json FILE]

A RUN is the folder ``tools/transfer.py`` writes for one pretrained
checkpoint (``meta.json``, ``det/``, ``seg/``, ``seg_ms-flip/``), plus the
ImageNet classification work dirs ``cls/`` and ``cls_linear/`` (top-1,
docs/classification.md); see
``--help``, docs/tools.md and :mod:`mim_pretrain.apis.results`, which reads
them.
"""
from mim_pretrain.apis import collect_main

if __name__ == '__main__':
    collect_main()
