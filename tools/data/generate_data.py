"""Write the built-in datasets, in the real ImageNet / COCO / ADE20K layouts.

    python tools/data/generate_data.py [--out data] [--seed 0] [--scale 1]

writes ``data/imagenet`` (pretraining image folder), ``data/coco``
(instances_{train,val}2017.json + images) and ``data/ade/ADEChallengeData2016``
(images + label PNGs), and ``data/summary.json``. The same seed writes the
same files. The configs of this repository read these paths by default.
"""
import argparse
import json
import os
import os.path as osp
import time

from mim_pretrain.datasets import generate_all


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate the built-in ImageNet/COCO/ADE20K-layout data.')
    parser.add_argument('--out', default='data', help='output root')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--scale',
        type=float,
        default=1.0,
        help='multiply the default image counts (256 pretraining, 48+16 '
        'COCO, 48+16 ADE20K) by this')
    parser.add_argument(
        '--force',
        action='store_true',
        help='write even if OUT/summary.json says the same data is there')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.scale <= 0:
        raise SystemExit(f'--scale must be positive, got {args.scale}')
    stamp = osp.join(args.out, 'summary.json')
    if not args.force and osp.isfile(stamp):
        with open(stamp) as f:
            old = json.load(f)
        if old.get('seed') == args.seed and old.get('scale',
                                                    1.0) == args.scale:
            print(f'{args.out}: data for seed {args.seed} already there '
                  '(--force to rewrite)')
            return old
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    summary = generate_all(args.out, seed=args.seed, scale=args.scale)
    summary['scale'] = args.scale
    with open(stamp, 'w') as f:
        json.dump(summary, f, indent=1)
    coco = summary['coco']
    print(f'wrote {args.out} in {time.time() - t0:.1f} s: '
          f'{summary["imagenet"]["num_images"]} pretraining images, '
          f'COCO {coco["train"]["num_images"]}+{coco["val"]["num_images"]} '
          f'images, ADE20K {summary["ade20k"]["training"]["num_images"]}+'
          f'{summary["ade20k"]["validation"]["num_images"]} images')
    return summary


if __name__ == '__main__':
    main()
