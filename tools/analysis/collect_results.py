"""Collect transfer results from work dirs into the papers' table.

    python tools/analysis/collect_results.py RUN [RUN ...] \
        [--out-md FILE] [--out-json FILE]

A RUN is the folder ``tools/transfer.py`` writes for one pretrained
checkpoint: ``meta.json`` (method, pretraining epochs) and the mmengine work
dirs ``det/`` (Mask R-CNN), ``seg/`` (UperNet) and ``seg_ms-flip/`` (its
multi-scale + flip test); any of them may be missing, but not all. Without
``meta.json`` the method is the folder's name.

In a work dir the numbers are read from what mmengine wrote there: the
metrics of the latest ``tools/test.py`` run (``<timestamp>/<timestamp>.json``)
or, when it was never tested, the last validation of its training
(``<timestamp>/vis_data/scalars.json``). Box and mask AP are CocoMetric's
``coco/bbox_mAP`` and ``coco/segm_mAP`` (printed x 100), mIoU is
IoUMetric's ``mIoU``.
"""
import argparse
import glob
import json
import os.path as osp
from typing import Dict, List, Optional

# work dir of each task inside a RUN, and the metrics read from it
TASKS = {
    'det': ('coco/bbox_mAP', 'coco/segm_mAP'),
    'seg': ('mIoU', ),
    'seg_ms-flip': ('mIoU', ),
}
COLUMNS = [('APbox', 'det', 'coco/bbox_mAP', 100.),
           ('APmask', 'det', 'coco/segm_mAP', 100.),
           ('mIoU', 'seg', 'mIoU', 1.),
           ('mIoU (ms+flip)', 'seg_ms-flip', 'mIoU', 1.)]


def _json_lines(path: str) -> List[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_metrics(work_dir: str, keys) -> Dict[str, object]:
    """The evaluation metrics mmengine wrote in one work dir.

    Args:
        work_dir: an mmengine work dir (``tools/train.py`` /
            ``tools/test.py`` ``--work-dir``).
        keys: metric names that must be present (e.g. ``['mIoU']``).

    Returns:
        dict: the metrics, plus ``source`` (the file read) and ``kind``
        (``'test'`` or ``'val'``; for ``'val'`` also ``step``).

    Raises:
        FileNotFoundError: the work dir does not exist.
        ValueError: it holds no test or validation metrics with ``keys``.
    """
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'work dir not found: {work_dir}')
    keys = list(keys)
    runs = sorted(d for d in glob.glob(osp.join(work_dir, '*'))
                  if osp.isdir(d) and osp.basename(d)[:8].isdigit())
    # the newest test run wins; a run's test file holds one line, no step
    for run in reversed(runs):
        path = osp.join(run, osp.basename(run) + '.json')
        if osp.isfile(path):
            lines = [x for x in _json_lines(path) if 'step' not in x]
            if lines and all(k in lines[-1] for k in keys):
                return dict(lines[-1], source=path, kind='test')
    for run in reversed(runs):
        path = osp.join(run, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            lines = [x for x in _json_lines(path)
                     if all(k in x for k in keys)]
            if lines:
                return dict(lines[-1], source=path, kind='val')
    raise ValueError(
        f'{work_dir}: no metrics {keys} found: no tools/test.py result '
        '(<timestamp>/<timestamp>.json) and no validation in a training log '
        '(<timestamp>/vis_data/scalars.json). Run tools/test.py CONFIG '
        f'CHECKPOINT --work-dir {work_dir} first.')


def collect_run(run_dir: str) -> Dict[str, object]:
    """Method, pretraining epochs and the metrics of every task of a RUN.

    Raises:
        FileNotFoundError: ``run_dir`` does not exist.
        ValueError: it has none of ``det/``, ``seg/``, ``seg_ms-flip/``, or
            one of them has no metrics.
    """
    if not osp.isdir(run_dir):
        raise FileNotFoundError(f'run folder not found: {run_dir}')
    meta_path = osp.join(run_dir, 'meta.json')
    meta = {}
    if osp.isfile(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
    row = dict(
        run=run_dir,
        method=meta.get('method', osp.basename(osp.normpath(run_dir))),
        pretrain_epochs=meta.get('pretrain_epochs'),
        metrics={})
    for task, keys in TASKS.items():
        work_dir = osp.join(run_dir, task)
        if osp.isdir(work_dir):
            row['metrics'][task] = read_metrics(work_dir, keys)
    if not row['metrics']:
        raise ValueError(f'{run_dir}: none of the work dirs {sorted(TASKS)} '
                         'is there (is it a tools/transfer.py run folder?)')
    return row


def _cell(row: dict, task: str, key: str, scale: float) -> Optional[str]:
    metrics = row['metrics'].get(task)
    if metrics is None:
        return None
    return f'{float(metrics[key]) * scale:.1f}'


def markdown_table(rows: List[dict]) -> str:
    """The papers' table: method, pretraining epochs, APbox, APmask, mIoU
    (and mIoU ms+flip when any run has it); ``-`` where a task was not
    run."""
    columns = [c for c in COLUMNS
               if c[1] != 'seg_ms-flip' or any(c[1] in r['metrics']
                                               for r in rows)]
    head = ['method', 'pretraining epochs'] + [c[0] for c in columns]
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '|'.join([' --- '] * len(head)) + '|']
    for row in rows:
        epochs = row['pretrain_epochs']
        cells = [row['method'], '-' if epochs is None else str(epochs)]
        cells += [_cell(row, task, key, scale) or '-'
                  for _, task, key, scale in columns]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Print box AP, mask AP and mIoU of transfer runs as a '
        'markdown table.')
    parser.add_argument('runs', nargs='+',
                        help='tools/transfer.py run folders (with det/, '
                        'seg/, seg_ms-flip/ work dirs)')
    parser.add_argument('--out-md', help='also write the table here')
    parser.add_argument('--out-json',
                        help='also write every metric read, with the file '
                        'it came from, here')
    return parser.parse_args(argv)


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    try:
        rows = [collect_run(run) for run in args.runs]
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'collect_results: {err}')
    table = markdown_table(rows)
    print(table)
    if args.out_md:
        with open(args.out_md, 'w') as f:
            f.write(table + '\n')
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == '__main__':
    main()
