"""Draw training curves (loss, AP, mIoU, ... against iteration) from the
``vis_data/scalars.json`` logs mmengine writes.

    python tools/analysis/plot_logs.py RUN [RUN ...] --out curves.png
        [--keys loss coco/bbox_mAP mIoU] [--names A B ...] [--title T]

RUN is a work dir, a timestamped run folder or a ``scalars.json`` file; see
``--help``, docs/tools.md and :mod:`mim_pretrain.apis.pictures`, which draws
them.
"""
from mim_pretrain.apis import plot_logs_main

if __name__ == '__main__':
    plot_logs_main()
