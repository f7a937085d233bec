"""Pictures of runs: training curves from mmengine's ``scalars.json`` logs
(the entry point of ``tools/analysis/plot_logs.py``) and contact sheets of
prediction images.

A curve's RUN is a work dir (its newest timestamped run is used), a
timestamped run folder or a ``scalars.json`` file. Each key gets its own
panel with one line per run; by default the panels are ``loss`` and
whichever evaluation metrics the runs logged (``coco/bbox_mAP``,
``coco/segm_mAP``, ``mIoU``, ...). Training keys are plotted against the
training iteration, evaluation keys against the iteration they were computed
at.
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

# evaluation metrics drawn by default when a run logged them
METRICS = ('coco/bbox_mAP', 'coco/segm_mAP', 'mIoU', 'mAcc', 'aAcc',
           'accuracy/top1')
Series = Dict[str, List[Tuple[int, float]]]


def find_scalars(run: str) -> str:
    """The ``scalars.json`` of a work dir, run folder or file.

    Raises:
        FileNotFoundError: names the path and what was looked for.
    """
    if osp.isfile(run):
        return run
    direct = osp.join(run, 'vis_data', 'scalars.json')
    if osp.isfile(direct):
        return direct
    if osp.isdir(run):
        stamped = sorted(
            d for d in os.listdir(run)
            if osp.isfile(osp.join(run, d, 'vis_data', 'scalars.json')))
        if stamped:
            return osp.join(run, stamped[-1], 'vis_data', 'scalars.json')
    raise FileNotFoundError(
        f'{run}: no vis_data/scalars.json here or in a timestamped run '
        'folder below it (is it an mmengine work dir?)')


def read_scalars(path: str) -> Series:
    """``{key: [(iteration, value), ...]}`` of one ``scalars.json``.

    Training records carry ``iter``; an evaluation record (``step`` only:
    the iteration or, for epoch-based runs, the epoch) is placed at the last
    training iteration logged before it, so both kinds share one axis.
    """
    series: Series = {}
    last_iter = 0
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}:{n}: not a JSON record ({e.msg})') \
                    from None
            if 'iter' in rec:
                last_iter = step = int(rec['iter'])
            else:
                step = last_iter
            for key, value in rec.items():
                if key in ('iter', 'step', 'epoch') or not isinstance(
                        value, (int, float)):
                    continue
                series.setdefault(key, []).append((int(step), float(value)))
    return series


def default_keys(runs: Sequence[Series]) -> List[str]:
    """``loss`` and the evaluation metrics any run logged."""
    logged = set().union(*runs) if runs else set()
    return [k for k in ('loss', ) + METRICS if k in logged]


def _save(fig, out: str, title: str) -> None:
    """Title, lay out, write and close a matplotlib figure."""
    import matplotlib.pyplot as plt
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot(runs: Sequence[Series], names: Sequence[str], keys: Sequence[str],
         out: str, title: str = '') -> None:
    """Write one PNG with a panel per key and a line per run.

    Raises:
        KeyError: a requested key is in none of the runs.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    for key in keys:
        if not any(key in r for r in runs):
            logged = sorted(set().union(*runs))
            raise KeyError(f'{key!r} is in none of the logs; logged keys: '
                           f'{logged}')
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4),
                             squeeze=False)
    for ax, key in zip(axes[0], keys):
        for series, name in zip(runs, names):
            points = series.get(key)
            if not points:
                continue
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker='o' if len(xs) < 30 else None,
                    markersize=3, label=name)
        ax.set_title(key)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _save(fig, out, title)


def plot_runs(runs: Sequence[str], out: str,
              keys: Optional[Sequence[str]] = None,
              names: Optional[Sequence[str]] = None,
              title: str = '') -> List[str]:
    """Draw the curves of work dirs (or run folders, or files) into ``out``.

    Args:
        runs: what :func:`find_scalars` takes, one per line.
        out: the PNG to write.
        keys: the panels (default: :func:`default_keys`).
        names: legend names, one per run (default: the paths).
        title: figure title.

    Returns:
        list: the keys drawn.

    Raises:
        SystemExit: ``names`` does not match ``runs``, or nothing to plot.
        FileNotFoundError: a run has no ``scalars.json``.
        KeyError: a requested key is in none of the logs.
    """
    if names and len(names) != len(runs):
        raise SystemExit(f'--names has {len(names)} names for '
                         f'{len(runs)} runs')
    series = [read_scalars(find_scalars(r)) for r in runs]
    keys = list(keys or default_keys(series))
    if not keys:
        raise SystemExit('nothing to plot: the logs have no loss or metric')
    plot(series, names or runs, keys, out, title)
    return keys


def build_plot_parser() -> argparse.ArgumentParser:
    """Command-line parser of ``tools/analysis/plot_logs.py``."""
    parser = argparse.ArgumentParser(
        description='Plot loss and metrics against iteration from mmengine '
        'scalars.json logs.')
    parser.add_argument('runs', nargs='+',
                        help='work dirs, run folders or scalars.json files')
    parser.add_argument('--out', required=True, help='the PNG to write')
    parser.add_argument('--keys', nargs='+',
                        help='keys to plot (default: loss and the metrics)')
    parser.add_argument('--names', nargs='+',
                        help='legend names, one per run (default: paths)')
    parser.add_argument('--title', default='', help='figure title')
    return parser


def plot_logs_main(argv: Optional[List[str]] = None) -> str:
    """Run ``tools/analysis/plot_logs.py``; the PNG written."""
    args = build_plot_parser().parse_args(argv)
    keys = plot_runs(args.runs, args.out, args.keys, args.names, args.title)
    print(f'wrote {args.out} ({", ".join(keys)})')
    return args.out


def contact_sheet(groups: List[Tuple[str, List[str]]], out: str,
                  scale: int = 3) -> Optional[str]:
    """One picture from several: a row per group (its name above), images
    enlarged ``scale`` times without smoothing so that small labels read.

    Args:
        groups: ``(name, image files)`` per row; unreadable files and empty
            groups are left out.
        out: the PNG to write.
        scale: the enlargement.

    Returns:
        str | None: ``out``, or None when there was no image to draw.
    """
    import cv2
    import numpy as np
    rows = []
    for name, files in groups:
        images = [cv2.imread(f) for f in files]
        images = [cv2.resize(im, None, fx=scale, fy=scale,
                             interpolation=cv2.INTER_NEAREST)
                  for im in images if im is not None]
        if not images:
            continue
        height = max(im.shape[0] for im in images)
        images = [cv2.copyMakeBorder(im, 0, height - im.shape[0], 0, 8,
                                     cv2.BORDER_CONSTANT, value=(255,) * 3)
                  for im in images]
        body = np.concatenate(images, axis=1)
        title = np.full((36, body.shape[1], 3), 255, np.uint8)
        cv2.putText(title, name, (6, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                    (0, 0, 0), 2, cv2.LINE_AA)
        rows.append(np.concatenate([title, body], axis=0))
    if not rows:
        return None
    width = max(r.shape[1] for r in rows)
    rows = [cv2.copyMakeBorder(r, 0, 8, 0, width - r.shape[1],
                               cv2.BORDER_CONSTANT, value=(255,) * 3)
            for r in rows]
    os.makedirs(osp.dirname(out), exist_ok=True)
    cv2.imwrite(out, np.concatenate(rows, axis=0))
    return out


def plot_efficiency(curves: Dict[str, List[Tuple[float, List[float]]]],
                    baseline: Dict[str, List[float]],
                    metrics: Sequence[Tuple[str, str]], out: str,
                    title: str = '') -> str:
    """Downstream score against pretraining time: a panel per metric, a
    line per method through its checkpoints, the random initialisation as a
    band.

    Args:
        curves: per method name, ``(pretraining seconds, {metric: [value
            per seed]})`` points in time order; a point with several seeds
            is drawn at their mean with a bar over their range.
        baseline: the random initialisation's ``{metric: [value per
            seed]}``, drawn as a band from its lowest to its highest seed
            and a line at its mean (None values are left out).
        metrics: ``(key, label)`` of each panel, e.g. ``('mIoU', 'mIoU')``.
        out: the PNG to write.
        title: figure title.

    Returns:
        str: ``out``.

    Raises:
        ValueError: no point has a value for one of the metrics.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics),
                                                       3.6), squeeze=False)
    for ax, (key, label) in zip(axes[0], metrics):
        drawn = 0
        for name, points in curves.items():
            xs, ys, lo, hi = [], [], [], []
            for seconds, values in points:
                got = [v for v in values.get(key, []) if v is not None]
                if not got:
                    continue
                mean = sum(got) / len(got)
                xs.append(seconds)
                ys.append(mean)
                lo.append(mean - min(got))
                hi.append(max(got) - mean)
            if xs:
                ax.errorbar(xs, ys, yerr=[lo, hi], marker='o', capsize=3,
                            label=name)
                drawn += 1
        base = [v for v in baseline.get(key, []) if v is not None]
        if base:
            ax.axhspan(min(base), max(base), color='grey', alpha=0.2)
            ax.axhline(sum(base) / len(base), color='grey', linestyle='--',
                       label='random init (band: seed range)')
            drawn += 1
        if not drawn:
            raise ValueError(f'plot_efficiency: no point has {key!r}')
        ax.set_title(label)
        ax.set_xlabel('pretraining time (s)')
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _save(fig, out, title)
    return out
