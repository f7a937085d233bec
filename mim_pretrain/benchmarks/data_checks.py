"""Cost of the data checks on a COCO-sized annotation file.

    python tools/benchmarks/data_checks.py [--images 118287]
        [--annotations 860001] [--out DIR] [--repeats 1]
        [--no-pycocotools] [--work-dir work_dirs/benchmarks]

Writes a COCO instances file of the size of train2017 (118,287 images,
860,001 annotations with polygon masks of COCO's sizes, 1% crowd RLE masks,
one box in 100,000 under a pixel wide, as COCO has a few; about 430 MB),
deterministic for a ``--seed``, into ``--out`` (kept there) or a temporary
folder (removed afterwards), then times in a fresh process each:

* ``json.load``: the plain parse, the floor of anything reading the file;
* ``checks``: :func:`mim_pretrain.datasets.checks.check_config_inputs` on
  a ``CocoDataset`` training config that reads the file (what a run pays
  once per job), split into its parse and the box checks;
* ``pycocotools``: ``COCO(file)``, which mmdet's ``CocoDataset`` runs on
  every rank anyway.

Every measuring process has ``mim_pretrain`` imported first, as a run has:
the heap it starts from is a run's (which matters to Python's garbage
collector). Each is reported with its wall time, its process CPU time (on
a shared machine the work done rather than the time slices received; the
ratio to ``json.load`` is taken on it), its peak resident memory above the
process's size before it started (``ru_maxrss`` less the resident set
after the imports) and what stays resident once its result is freed.
With ``--repeats N`` the measures alternate, N fresh processes each; the
medians (times) and maxima (memory) are reported. Results go to
``data_checks.{json,md}`` in ``--work-dir``; see docs/troubleshooting.md
("Data checks") for figures.
"""
import argparse
import gc
import json
import os
import os.path as osp
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

from .common import machine_line, markdown_table, write_json

# COCO train2017
COCO_IMAGES = 118287
COCO_ANNOTATIONS = 860001
MEASURES = ('json.load', 'checks', 'pycocotools')
# what each measurement's process runs (``python -m``)
MODULE = 'mim_pretrain.benchmarks.data_checks'
ANN_NAME = 'instances_train2017.json'
# COCO's 80 category ids (1..90 with gaps)
_CATEGORY_IDS = [i for i in range(1, 91) if i not in
                 (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
_CHUNK = 20000


def _image_entries(rng: np.random.Generator, num: int) -> List[tuple]:
    """(id, width, height) of ``num`` images with COCO-like sparse ids."""
    ids = np.sort(rng.choice(np.arange(1, max(600000, 5 * num)), num,
                             replace=False))
    width = np.where(rng.random(num) < 0.7, 640,
                     rng.integers(200, 641, num))
    height = np.where(rng.random(num) < 0.5, 480,
                      rng.integers(200, 641, num))
    return list(zip(ids.tolist(), width.tolist(), height.tolist()))


def _write_images(f, images: List[tuple]) -> None:
    f.write('"images": [')
    for n, (img_id, w, h) in enumerate(images):
        name = f'{img_id:012d}.jpg'
        f.write(('' if n == 0 else ',') + json.dumps(dict(
            license=n % 8 + 1, file_name=name,
            coco_url=f'http://images.cocodataset.org/train2017/{name}',
            height=h, width=w, date_captured='2013-11-14 11:18:45',
            flickr_url=f'http://farm{n % 9 + 1}.staticflickr.com/{n % 9000}/'
            f'{img_id}_4e622c8349_z.jpg', id=img_id)))
    f.write(']')


def _polygon_text(flat: List[float], parts: List[int]) -> str:
    out, start = [], 0
    for size in parts:
        out.append('[' + ','.join(map(str, flat[start:start + size])) + ']')
        start += size
    return '[' + ','.join(out) + ']'


def _write_annotations(f, rng: np.random.Generator, images: List[tuple],
                       num: int) -> None:
    """Annotations in chunks: boxes inside their image, polygons of 4 to 200
    points (about 24 on average, as COCO's) on an ellipse in the box,
    coordinates with 2 decimals."""
    sizes = np.array([(w, h) for _, w, h in images], dtype=np.float64)
    ids = np.array([i for i, _, _ in images])
    f.write('"annotations": [')
    for first in range(0, num, _CHUNK):
        n = min(_CHUNK, num - first)
        img = rng.integers(0, len(images), n)
        iw, ih = sizes[img, 0], sizes[img, 1]
        bw = np.maximum(1.0, iw * rng.beta(1.2, 4.0, n))
        bh = np.maximum(1.0, ih * rng.beta(1.2, 4.0, n))
        bx = rng.random(n) * (iw - bw)
        by = rng.random(n) * (ih - bh)
        ann_ids = np.arange(first + 1, first + n + 1)
        # COCO has a few degenerate boxes; the checks must count them
        bw[ann_ids % 100000 == 0] = 0.5
        points = np.clip(rng.lognormal(3.0, 0.55, n), 4, 200).astype(int)
        crowd = rng.random(n) < 0.01
        area = np.round(bw * bh * 0.65, 4)
        cats = rng.choice(_CATEGORY_IDS, n)
        total = int(points.sum())
        owner = np.repeat(np.arange(n), points)
        angle = rng.random(total) * 2 * np.pi
        radius = 0.5 * (0.7 + 0.3 * rng.random(total))
        px = np.round(bx[owner] + bw[owner] * (0.5 + radius * np.cos(angle)),
                      2)
        py = np.round(by[owner] + bh[owner] * (0.5 + radius * np.sin(angle)),
                      2)
        flat = np.stack([px, py], 1).ravel().tolist()
        bounds = np.concatenate([[0], np.cumsum(points * 2)]).tolist()
        box = np.round(np.stack([bx, by, bw, bh], 1), 2).tolist()
        rows = []
        for k in range(n):
            if crowd[k]:
                length = int(rng.integers(20, 400))
                counts = rng.integers(1, 300, length).tolist()
                seg = json.dumps(dict(counts=counts,
                                      size=[int(ih[k]), int(iw[k])]))
            else:
                size = bounds[k + 1] - bounds[k]
                # one polygon in ten comes in two parts
                parts = ([size] if k % 10 or size < 16 else
                         [size // 4 * 2, size - size // 4 * 2])
                seg = _polygon_text(flat[bounds[k]:bounds[k + 1]], parts)
            rows.append(
                f'{{"segmentation": {seg}, "area": {area[k]}, '
                f'"iscrowd": {int(crowd[k])}, "image_id": {ids[img[k]]}, '
                f'"bbox": [{box[k][0]}, {box[k][1]}, {box[k][2]}, '
                f'{box[k][3]}], "category_id": {cats[k]}, '
                f'"id": {ann_ids[k]}}}')
        f.write((',' if first else '') + ','.join(rows))
    f.write(']')


def write_coco_annotations(path: str, num_images: int = COCO_IMAGES,
                           num_annotations: int = COCO_ANNOTATIONS,
                           seed: int = 0) -> Dict[str, int]:
    """Write a COCO instances file of the given size.

    Args:
        path: the file to write.
        num_images: the number of images.
        num_annotations: the number of annotations (polygons, 1% crowd).
        seed: the seed; the same seed and sizes give the same bytes.

    Returns:
        dict: ``images``, ``annotations`` and ``bytes`` of the file.
    """
    if num_images < 1 or num_annotations < 0:
        raise ValueError(f'need at least one image and no negative number '
                         f'of annotations, got {num_images} images and '
                         f'{num_annotations} annotations')
    rng = np.random.default_rng(seed)
    images = _image_entries(rng, num_images)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write('{"info": {"description": "COCO-sized synthetic '
                'annotations", "version": "1.0", "year": 2017}, '
                '"licenses": [], ')
        _write_images(f, images)
        f.write(', ')
        _write_annotations(f, rng, images, num_annotations)
        f.write(', "categories": ' + json.dumps([
            dict(supercategory='thing', id=i, name=f'class_{i}')
            for i in _CATEGORY_IDS]) + '}')
    return dict(images=num_images, annotations=num_annotations,
                bytes=osp.getsize(path))


def _rss_mib() -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError('/proc/self/status has no VmRSS line')


def _checks_config(path: str):
    from mmengine.config import Config
    return Config(dict(
        data_checks=dict(invalid_boxes='skip'),
        train_dataloader=dict(dataset=dict(
            type='CocoDataset', data_root=osp.dirname(path),
            ann_file=osp.basename(path), data_prefix=dict(img='')))))


def measure(kind: str, path: str) -> dict:
    """Time one reader of ``path`` in this process.

    Args:
        kind: one of :data:`MEASURES`.
        path: the annotation file.

    Returns:
        dict: ``wall_s``, ``cpu_s`` (process CPU time: on a shared machine
        it counts the work rather than the time slices received),
        ``peak_mib`` (the peak resident set above the one before the work),
        ``kept_mib`` (the resident set above it once the result is freed),
        ``rss_before_mib`` and, for ``checks``, the ``parse_s`` and
        ``boxes_s`` parts.
    """
    if kind not in MEASURES:
        raise ValueError(f'unknown measure {kind!r}; one of {MEASURES}')
    extra = {}
    if kind == 'checks':
        from mim_pretrain.datasets import checks
        cfg = _checks_config(path)
        parts = {'load_json': 0.0, 'invalid_coco_boxes': 0.0}

        def timed(name, fn):

            def wrapper(*args, **kwargs):
                t = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    parts[name] += time.perf_counter() - t

            return wrapper

        for name in parts:
            setattr(checks, name, timed(name, getattr(checks, name)))
        run = lambda: checks.check_config_inputs(  # noqa: E731
            cfg, splits=('train_dataloader', ))
    elif kind == 'pycocotools':
        from pycocotools.coco import COCO
        run = lambda: COCO(path)  # noqa: E731
    else:

        def run():
            with open(path, encoding='utf-8') as f:
                return json.load(f)

    from mmengine.logging import MMLogger
    MMLogger.get_instance('data_checks_benchmark', log_level='WARNING')
    before = _rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    result = run()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del result
    gc.collect()
    if kind == 'checks':
        extra = dict(parse_s=parts['load_json'],
                     boxes_s=parts['invalid_coco_boxes'])
    return dict(kind=kind, wall_s=wall, cpu_s=cpu, peak_mib=peak - before,
                kept_mib=_rss_mib() - before, rss_before_mib=before, **extra)


def _measure_in_child(kind: str, path: str) -> dict:
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '1')
    res = subprocess.run(
        [sys.executable, '-m', MODULE, '--measure', kind, path],
        capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f'measuring {kind} on {path} failed '
                           f'(exit {res.returncode}):\n{res.stderr[-3000:]}')
    return json.loads(res.stdout.strip().splitlines()[-1])


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Time and peak memory of the data checks on a '
        'COCO-sized annotation file, against json.load and pycocotools.')
    parser.add_argument('--images', type=int, default=COCO_IMAGES)
    parser.add_argument('--annotations', type=int, default=None,
                        help='default: COCO train2017\'s ratio to the '
                        f'images ({COCO_ANNOTATIONS} for {COCO_IMAGES})')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None,
                        help='folder to write (and keep) the annotation '
                        f'file {ANN_NAME} in (default: a temporary folder, '
                        'removed afterwards); an existing file of that name '
                        'is overwritten')
    parser.add_argument('--repeats', type=int, default=1,
                        help='processes per measure (interleaved)')
    parser.add_argument('--no-pycocotools', action='store_true')
    parser.add_argument('--work-dir', default='work_dirs/benchmarks')
    parser.add_argument('--measure', nargs=2, metavar=('KIND', 'FILE'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.annotations is None:
        args.annotations = round(args.images * COCO_ANNOTATIONS /
                                 COCO_IMAGES)
    if args.repeats < 1:
        parser.error(f'--repeats must be >= 1, got {args.repeats}')
    return args


def _summary(kind: str, runs: List[dict]) -> dict:
    row = dict(kind=kind, runs=runs,
               peak_mib=max(r['peak_mib'] for r in runs),
               kept_mib=max(r['kept_mib'] for r in runs))
    for key in ('wall_s', 'cpu_s', 'parse_s', 'boxes_s'):
        if key in runs[0]:
            row[key] = statistics.median(r[key] for r in runs)
    return row


def main(argv: Optional[List[str]] = None) -> dict:
    """Run ``tools/benchmarks/data_checks.py``.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        dict: what ``data_checks.json`` holds: ``machine``, ``file`` (its
        size and the time to write it), ``measures`` (one row per reader)
        and ``command``.
    """
    args = parse_args(argv)
    if args.measure:
        result = measure(*args.measure)
        print(json.dumps(result))
        return result
    import torch

    from .common import machine_record
    machine = machine_record(torch.device('cpu'))
    folder = args.out or tempfile.mkdtemp(prefix='data_checks_')
    path = osp.join(folder, ANN_NAME)
    try:
        t = time.perf_counter()
        info = write_coco_annotations(path, args.images, args.annotations,
                                      args.seed)
        info['write_s'] = time.perf_counter() - t
        kinds = [k for k in MEASURES
                 if not (k == 'pycocotools' and args.no_pycocotools)]
        runs: Dict[str, List[dict]] = {k: [] for k in kinds}
        for _ in range(args.repeats):
            for kind in kinds:
                runs[kind].append(_measure_in_child(kind, path))
    finally:
        if not args.out:
            shutil.rmtree(folder, ignore_errors=True)
    machine['loadavg_end'] = list(os.getloadavg())
    rows = [_summary(k, v) for k, v in runs.items()]
    base = rows[0]['cpu_s']
    for row in rows:
        row['cpu_vs_json_load'] = row['cpu_s'] / base
    command = ' '.join(['python', 'tools/benchmarks/data_checks.py'] +
                       (sys.argv[1:] if argv is None else list(argv)))
    payload = dict(machine=machine, file=info, measures=rows,
                   command=command)
    write_json(osp.join(args.work_dir, 'data_checks.json'), payload)
    table = markdown_table(
        ['reader', 'wall s', 'CPU s', 'CPU x json.load',
         'peak MiB above start', 'MiB kept after'],
        [[r['kind'], r['wall_s'], r['cpu_s'], r['cpu_vs_json_load'],
          r['peak_mib'], r['kept_mib']] for r in rows])
    checks = next(r for r in rows if r['kind'] == 'checks')
    text = (f'{info["images"]} images, {info["annotations"]} annotations, '
            f'{info["bytes"] / 2**20:.0f} MiB\n\n{table}\n\nchecks: parse '
            f'{checks["parse_s"]:.3g} s, box checks {checks["boxes_s"]:.3g} '
            f's\n\n{machine_line(machine)}\n')
    with open(osp.join(args.work_dir, 'data_checks.md'), 'w') as f:
        f.write(text)
    print(text)
    return payload


if __name__ == '__main__':
    main()
