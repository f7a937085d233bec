"""Cost of the data checks on a COCO-sized annotation file, against
``json.load`` and pycocotools.

    python tools/benchmarks/data_checks.py [--images 118287]
        [--annotations 860001] [--out DIR] [--repeats 1] [--no-pycocotools]
        [--work-dir work_dirs/benchmarks]

Writes data_checks.{json,md} under --work-dir; see ``--help``,
docs/troubleshooting.md ("Data checks") and
:mod:`mim_pretrain.benchmarks.data_checks`, where the measurement lives.
"""
from mim_pretrain.benchmarks.data_checks import main

if __name__ == '__main__':
    main()
