"""The command line of ``tools/data/generate_data.py``: the built-in data,
written once per seed and scale.

The images and annotations come from
:func:`mim_pretrain.datasets.generate_all`; here are the options, the
``summary.json`` stamp that makes a second run with the same seed and scale
a no-op, and what it prints.
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import List, Optional

from ..datasets import DEFAULT_COUNTS, STYLES, generate_all


def build_generate_parser() -> argparse.ArgumentParser:
    """Command-line parser of ``tools/data/generate_data.py``.

    Returns:
        argparse.ArgumentParser: ``[--out DIR] [--seed N] [--scale S]
        [--style S] [--force]``.
    """
    parser = argparse.ArgumentParser(
        description='Generate the built-in ImageNet/COCO/ADE20K-layout data.')
    parser.add_argument('--out', default='data', help='output root')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    shape = DEFAULT_COUNTS['shape']
    parser.add_argument(
        '--style',
        choices=sorted(STYLES),
        default='shape',
        help="how scenes look: 'shape' (class = shape only, colour and "
        "texture random; the main job's data) or 'colour' (every class its "
        "own colour and texture; the pipeline tests' data)")
    parser.add_argument(
        '--scale',
        type=float,
        default=1.0,
        help='multiply the default image counts by this (shape style: '
        f"{shape['pool']} pretraining, {shape['coco_train']}+"
        f"{shape['coco_val']} COCO, {shape['ade_train']}+{shape['ade_val']} "
        'ADE20K)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='write even if OUT/summary.json says the same data is there')
    return parser


def generate_data_main(argv: Optional[List[str]] = None) -> dict:
    """Run ``tools/data/generate_data.py``.

    Writes the data under ``--out`` and its ``summary.json``, unless that
    file says the same seed, style and scale are already there (and
    ``--force`` is not given).

    Args:
        argv: The command line without the program name; ``None`` reads
            ``sys.argv``.

    Returns:
        dict: The summary of the data (read back when nothing was written),
        with the scale it was written at.

    Raises:
        SystemExit: ``--scale`` is not positive.
    """
    args = build_generate_parser().parse_args(argv)
    if args.scale <= 0:
        raise SystemExit(f'--scale must be positive, got {args.scale}')
    stamp = osp.join(args.out, 'summary.json')
    if not args.force and osp.isfile(stamp):
        with open(stamp) as f:
            old = json.load(f)
        if (old.get('seed'), old.get('style'),
                old.get('scale')) == (args.seed, args.style, args.scale):
            print(f'{args.out}: {args.style}-style data for seed '
                  f'{args.seed} already there (--force to rewrite)')
            return old
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    summary = generate_all(args.out, seed=args.seed, scale=args.scale,
                           style=args.style)
    summary['scale'] = args.scale
    with open(stamp, 'w') as f:
        json.dump(summary, f, indent=1)
    coco = summary['coco']
    ade = summary['ade20k']
    print(f'wrote {args.out} ({args.style} style) in '
          f'{time.time() - t0:.1f} s: '
          f'ImageNet {summary["imagenet"]["num_images"]}+'
          f'{summary["imagenet"]["val"]["num_images"]} images, '
          f'COCO {coco["train"]["num_images"]}+{coco["val"]["num_images"]} '
          f'images, ADE20K {ade["training"]["num_images"]}+'
          f'{ade["validation"]["num_images"]} images')
    return summary
