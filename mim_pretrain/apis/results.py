"""Transfer results: collected per run, as the papers' table, and the main
job's table and verdict; the entry point of
``tools/analysis/collect_results.py``.

A RUN is the folder ``tools/transfer.py`` writes for one pretrained
checkpoint: ``meta.json`` (method, pretraining epochs) and the mmengine work
dirs ``det/`` (Mask R-CNN), ``seg/`` (UperNet) and ``seg_ms-flip/`` (its
multi-scale + flip test), plus the ImageNet classification work dirs
``cls/`` (fine-tuning) and ``cls_linear/`` (linear probing) that
``tools/train.py`` / ``tools/test.py`` write when given
``--work-dir RUN/cls`` (docs/classification.md); any of them may be missing,
but not all. Without ``meta.json`` the method is the folder's name.

A work dir's numbers are the metrics its test step wrote
(``test_metrics.json``, ``tools/test.py --out-metrics``, which
``tools/transfer.py`` always passes). A work dir tested without it (plain
``tools/test.py``) is read from what mmengine wrote there: the latest test
run (``<timestamp>/<timestamp>.json``), else the last validation of its
training (``<timestamp>/vis_data/scalars.json``). Box and mask AP are
CocoMetric's ``coco/bbox_mAP`` and ``coco/segm_mAP`` (printed x 100), mIoU
is IoUMetric's ``mIoU``, top-1 is mmpretrain Accuracy's ``accuracy/top1``
(already in percent).
"""
import argparse
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

from .pipeline import METHOD_NAMES, TEST_METRICS, read_test_metrics

# work dir of each task inside a RUN, and the metrics read from it
TASKS = {
    'det': ('coco/bbox_mAP', 'coco/segm_mAP'),
    'seg': ('mIoU', ),
    'seg_ms-flip': ('mIoU', ),
    'cls': ('accuracy/top1', ),
    'cls_linear': ('accuracy/top1', ),
}
COLUMNS = [('APbox', 'det', 'coco/bbox_mAP', 100.),
           ('APmask', 'det', 'coco/segm_mAP', 100.),
           ('mIoU', 'seg', 'mIoU', 1.),
           ('mIoU (ms+flip)', 'seg_ms-flip', 'mIoU', 1.),
           ('top-1 (fine-tune)', 'cls', 'accuracy/top1', 1.),
           ('top-1 (linear)', 'cls_linear', 'accuracy/top1', 1.)]
# tasks whose column shows only when some run has them
OPTIONAL_TASKS = ('seg_ms-flip', 'cls', 'cls_linear')
# the main job's columns and their names in the verdict
KEYS = (('APbox', 'box AP'), ('APmask', 'mask AP'), ('mIoU', 'mIoU'))
# below this (CocoMetric AP x 100) for every initialisation, detection has
# not started to work and its column cannot rank them
AP_FLOOR = 1.0


def _json_lines(path: str) -> List[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _mmengine_metrics(work_dir: str, keys: List[str]) -> Optional[dict]:
    """The metrics of a work dir tested without ``--out-metrics``."""
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
    return None


def read_metrics(work_dir: str, keys: Sequence[str]) -> Dict[str, object]:
    """The evaluation metrics of one work dir.

    Args:
        work_dir: an mmengine work dir (``tools/train.py`` /
            ``tools/test.py`` ``--work-dir``).
        keys: metric names that must be present (e.g. ``['mIoU']``).

    Returns:
        dict: the metrics, plus ``source`` (the file read) and ``kind``
        (``'test'`` or ``'val'``).

    Raises:
        FileNotFoundError: the work dir does not exist.
        ValueError: it holds no test or validation metrics with ``keys``.
    """
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'work dir not found: {work_dir}')
    keys = list(keys)
    path = osp.join(work_dir, TEST_METRICS)
    if osp.isfile(path):
        metrics = read_test_metrics(path)
        if all(k in metrics for k in keys):
            return dict(metrics, source=path, kind='test')
        raise ValueError(f'{path}: no metrics {keys} in it (it has '
                         f'{sorted(metrics)})')
    found = _mmengine_metrics(work_dir, keys)
    if found is None:
        raise ValueError(
            f'{work_dir}: no metrics {keys} found: no {TEST_METRICS}, no '
            'tools/test.py result (<timestamp>/<timestamp>.json) and no '
            'validation in a training log (<timestamp>/vis_data/'
            'scalars.json). Run tools/test.py CONFIG CHECKPOINT --work-dir '
            f'{work_dir} first.')
    return found


def collect_run(run_dir: str,
                tasks: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """Method, pretraining epochs and the metrics of every task of a RUN.

    Args:
        run_dir: the RUN folder.
        tasks: read only these work dirs (keys of ``TASKS``; default:
            every one present), e.g. those a ``tools/transfer.py`` call ran
            while another fills the same RUN.

    Returns:
        dict: ``run``, ``method``, ``pretrain_epochs`` and ``metrics``
        (``{task: read_metrics(...)}`` for each work dir present).

    Raises:
        FileNotFoundError: ``run_dir`` does not exist.
        ValueError: it has none of the work dirs of ``TASKS``, or one of
            them has no metrics.
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
        if tasks is not None and task not in tasks:
            continue
        work_dir = osp.join(run_dir, task)
        if osp.isdir(work_dir):
            row['metrics'][task] = read_metrics(work_dir, keys)
    if not row['metrics']:
        raise ValueError(f'{run_dir}: none of the work dirs {sorted(TASKS)} '
                         'is there (is it a tools/transfer.py run folder?)')
    return row


def markdown_table(rows: List[dict]) -> str:
    """The papers' table of :func:`collect_run` rows: method, pretraining
    epochs, APbox, APmask, mIoU (and mIoU ms+flip, fine-tuning and linear
    top-1 when any run has them); ``-`` where a task was not run."""
    columns = [c for c in COLUMNS
               if c[1] not in OPTIONAL_TASKS or any(c[1] in r['metrics']
                                                    for r in rows)]
    head = ['method', 'pretraining epochs'] + [c[0] for c in columns]
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '|'.join([' --- '] * len(head)) + '|']
    for row in rows:
        epochs = row['pretrain_epochs']
        cells = [row['method'], '-' if epochs is None else str(epochs)]
        for _, task, key, scale in columns:
            metrics = row['metrics'].get(task)
            cells.append('-' if metrics is None else
                         f'{float(metrics[key]) * scale:.1f}')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def build_collect_parser() -> argparse.ArgumentParser:
    """Command-line parser of ``tools/analysis/collect_results.py``."""
    parser = argparse.ArgumentParser(
        description='Print box AP, mask AP, mIoU and ImageNet top-1 of '
        'transfer runs as a markdown table.')
    parser.add_argument('runs', nargs='+',
                        help='tools/transfer.py run folders (with det/, '
                        'seg/, seg_ms-flip/, cls/, cls_linear/ work dirs)')
    parser.add_argument('--out-md', help='also write the table here')
    parser.add_argument('--out-json',
                        help='also write every metric read, with the file '
                        'it came from, here')
    return parser


def collect_main(argv: Optional[List[str]] = None) -> List[dict]:
    """Run ``tools/analysis/collect_results.py``: print (and write) the
    table of the runs named in ``argv``.

    Returns:
        list: the :func:`collect_run` rows.
    """
    args = build_collect_parser().parse_args(argv)
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


# ------------------------------------------------------ the main job's table


def summary_row(method: str, seed_metrics: List[dict],
                pretrain_s: Optional[float] = None,
                pretrain_iters: Optional[int] = None) -> dict:
    """One initialisation's row of the main job's table.

    Args:
        method: one of :data:`~.pipeline.METHODS`.
        seed_metrics: per seed, the test metrics by task
            (``{'det': {...}, 'seg': {...}}``, as ``transfer_main``
            returns them).
        pretrain_s: its pretraining time (None: not pretrained).
        pretrain_iters: its pretraining iterations.

    Returns:
        dict: ``method``, ``name``, ``pretrain_s``, ``pretrain_iters``,
        ``seeds`` (APbox / APmask / mIoU of each seed, AP x 100) and the
        means over the seeds.
    """
    row = dict(method=method, name=METHOD_NAMES[method],
               pretrain_s=None if pretrain_s is None else round(pretrain_s,
                                                                1),
               pretrain_iters=pretrain_iters, seeds=[])
    for metrics in seed_metrics:
        values = {}
        for col, task, key, scale in COLUMNS[:3]:
            value = metrics.get(task, {}).get(key)
            values[col] = None if value is None else round(value * scale, 2)
        row['seeds'].append(values)
    for col, _ in KEYS:
        got = [v[col] for v in row['seeds'] if v[col] is not None]
        row[col] = round(sum(got) / len(got), 2) if got else None
    return row


def spread(row: dict, key: str) -> float:
    """Seed-to-seed range (max - min) of one metric; 0 for one seed."""
    values = [r[key] for r in row.get('seeds', []) if r.get(key) is not None]
    return max(values) - min(values) if len(values) > 1 else 0.


def summary_table(rows: List[dict]) -> str:
    """The main job's table of :func:`summary_row` rows: method,
    pretraining time, box AP, mask AP, mIoU (with several seeds: the mean
    and, in brackets, the lowest and highest seed)."""

    def cell(row, key):
        if row[key] is None:
            return 'n/a'
        values = [v[key] for v in row['seeds'] if v.get(key) is not None]
        if len(values) < 2:
            return f'{row[key]:.1f}'
        return f'{row[key]:.1f} ({min(values):.1f}-{max(values):.1f})'

    lines = ['| method | pretraining time | box AP | mask AP | mIoU |',
             '| --- | --- | --- | --- | --- |']
    for r in rows:
        cells = [r['name'],
                 '-' if r['pretrain_s'] is None else
                 f"{r['pretrain_s']:.0f} s ({r['pretrain_iters']} it)"]
        cells += [cell(r, k) for k, _ in KEYS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def verdict(rows: List[dict]) -> List[str]:
    """Plain statements: did each pretraining beat the random init?

    A metric's difference of means counts as a win or a loss only when it is
    larger than the two runs' seed-to-seed ranges added together (with one
    seed the range is unknown and the sign decides, with a warning).

    Args:
        rows: :func:`summary_row` rows (``method`` and the ``KEYS``
            columns; ``seeds`` for the range).

    Returns:
        list: the statements, one a line.
    """
    base = next((r for r in rows if r['method'] == 'scratch'), None)
    if base is None:
        return ['(no random-init run to compare with)']
    lines = []
    keys = list(KEYS)
    dead = [(k, label) for k, label in keys[:2]
            if all(r.get(k) is not None and r[k] < AP_FLOOR for r in rows)]
    if dead:
        lines.append(
            ' and '.join(label for _, label in dead) + f' stayed below '
            f'{AP_FLOOR:g} for every initialisation: detection did not get '
            'going in this budget, so that column cannot rank them (docs/'
            'reproduction.md, section 4, says why).')
        keys = [kl for kl in keys if kl not in dead]
    won: Dict[str, List[str]] = {}
    for row in rows:
        if row is base:
            continue
        name = METHOD_NAMES[row['method']]
        parts = []
        for k, label in keys:
            if row.get(k) is None or base.get(k) is None:
                continue
            diff = row[k] - base[k]
            margin = spread(row, k) + spread(base, k)
            if diff > margin:
                won.setdefault(name, []).append(label)
                parts.append(f'{label} {diff:+.1f}')
            elif diff < -margin:
                parts.append(f'{label} {diff:+.1f}')
            elif margin:
                parts.append(f'{label} {diff:+.1f} (within the seed ranges, '
                             f'{margin:.1f} together)')
            else:
                parts.append(f'{label} {diff:+.1f} (a tie)')
        lines.append(f'{name} vs random init: ' + ', '.join(parts))
    if any(r['method'] == 'localmim' for r in rows):
        lines.append('LocalMIM fine-tunes UperNet with its authors\' '
                     'learning rate, 4x the others\'; docs/reproduction.md, '
                     'section 4, also fine-tunes the random init at that '
                     'rate.')
    one_seed = len(base.get('seeds', [])) < 2
    if won:
        lines.append(('Above the random initialisation in this one-seed run: '
                      if one_seed else 'Pretraining beat the random '
                      'initialisation by more than the two seed ranges '
                      'together: ') +
                     '; '.join(f'{name} on {", ".join(labels)}'
                               for name, labels in won.items()) + '.')
    else:
        lines.append('No pretrained initialisation beat the random one here.')
    if one_seed:
        lines.append('One seed per run: differences of a few points can be '
                     'seed noise (docs/reproduction.md, section 4, gives the '
                     'measured spread; --seeds 3 measures it here).')
    return lines


def points_table(points: Dict[str, List[dict]]) -> str:
    """The efficiency points as a table: per method and checkpoint, the
    pretraining time and iteration, box AP and mIoU (mean of its seeds)."""
    lines = ['| method | pretraining time | iteration | box AP | mIoU | '
             'seeds |', '| --- | --- | --- | --- | --- | --- |']
    for method, found in points.items():
        for p in found:
            cells = [METHOD_NAMES[method], f"{p['seconds']:.0f} s",
                     str(p['iter'])]
            for key in ('APbox', 'mIoU'):
                got = [v for v in p[key] if v is not None]
                cells.append(f'{sum(got) / len(got):.1f}' if got else 'n/a')
            cells.append(str(len(p['mIoU'])))
            lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_summary(work_dir: str, rows: List[dict], outcome: List[str],
                  pictures: Dict[str, List[str]], total_s: float,
                  seeds: int,
                  points: Optional[Dict[str, List[dict]]] = None
                  ) -> List[str]:
    """Write the main job's ``results.md`` and ``results.json``.

    Args:
        work_dir: where to write them.
        rows: :func:`summary_row` rows.
        outcome: the :func:`verdict` lines.
        pictures: picture files by kind.
        total_s: the job's time.
        seeds: seeds per transfer.
        points: the efficiency points by method (the main job's
            ``efficiency_points``), if any.

    Returns:
        list: the two files written.
    """
    md = osp.join(work_dir, 'results.md')
    js = osp.join(work_dir, 'results.json')
    with open(md, 'w') as f:
        f.write('# Main job results (built-in data, CPU)\n\n' +
                summary_table(rows) + '\n\nBox/mask AP: mmdet CocoMetric '
                '(x100); mIoU: mmseg IoUMetric; both on the built-in '
                'validation split' +
                (f'; mean (lowest-highest) over {seeds} seeds'
                 if seeds > 1 else '') + '.\n\n' +
                '\n'.join(f'- {s}' for s in outcome) + '\n' +
                ('\n## Along the pretraining runs\n\n' +
                 points_table(points) + '\n' if points else ''))
    with open(js, 'w') as f:
        json.dump(dict(rows=rows, outcome=outcome, pictures=pictures,
                       points=points or {}, total_s=round(total_s, 1)), f,
                  indent=2)
    return [md, js]
