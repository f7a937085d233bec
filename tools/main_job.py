"""The main job: the README's first command (``make main``).

From nothing to a results table on the built-in data, on a CPU:

1. write the built-in data (ImageNet, COCO and ADE20K layouts);
2. pretrain the same small ViT with LoMaR, LocalMIM and mmpretrain's MAE for
   the same number of epochs (``tools/train.py``), timing each;
3. draw what each pretrained model reconstructs
   (``tools/analysis/visualize_reconstruction.py``);
4. transfer each, and a random initialisation, to the tiny Mask R-CNN and
   UperNet (``tools/transfer.py --tiny``: extract the encoder, train, test
   with mmdet's ``CocoMetric`` and mmseg's ``IoUMetric``, draw the
   predictions with mmdet's and mmseg's visualizers);
5. draw the training curves (``tools/analysis/plot_logs.py``);
6. print one table (method, pretraining time, box AP, mask AP, mIoU), write
   it as ``results.md`` and ``results.json`` in the work dir, and say
   whether pretraining beat the random initialisation.

    python tools/main_job.py [--work-dir work_dirs/main] [--data data]
        [--methods lomar localmim mae scratch] [--pretrain-epochs N]

Every step prints its number, its time and an estimate of what is left.
"""
import argparse
import glob
import importlib.util
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PRETRAIN = {
    'lomar': ('LoMaR',
              'mmpretrain_configs/lomar/lomar_vit-tiny-p8_1xb32-20e_'
              'synthetic.py'),
    'localmim': ('LocalMIM',
                 'mmpretrain_configs/localmim/localmim_vit-tiny-p8_1xb32-'
                 '20e_synthetic.py'),
    'mae': ('MAE',
            'mmpretrain_configs/mae/mae_vit-tiny-p8_1xb32-20e_synthetic.py'),
}
NAMES = dict({k: v[0] for k, v in PRETRAIN.items()}, scratch='random init')
METHODS = tuple(PRETRAIN) + ('scratch', )
# first guesses (s, 2 quiet CPU cores, default budget) of each step, replaced
# by measurements as the steps finish; transfer ones are per iteration
GUESS = {'data': 10, 'pretrain': 75, 'recon': 8, 'curves': 10}
GUESS_START, GUESS_PER_ITER = 40, {'det': 0.6, 'seg': 0.25}
# Transfer iterations (batch 4) of the tiny configs in the main job; the
# configs' own schedules (300 / 200) are shortened to fit its budget.
TRANSFER_ITERS = {'det': 120, 'seg': 120}


def transfer_options(task: str, iters: int) -> List[str]:
    """``--cfg-options`` that give a tiny transfer config ``iters``
    iterations with its schedule's shape (linear warm-up over the first
    sixth (det) or tenth (seg), then steps at 88% and 96% (det) or poly
    decay (seg)), validated along the way for the curves."""
    if iters < 10:
        raise SystemExit(f'--{task}-iters {iters}: at least 10')
    opts = [f'train_cfg.max_iters={iters}',
            f'default_hooks.checkpoint.interval={iters}']
    if task == 'det':
        return opts + [
            f'train_cfg.val_interval={iters // 2}',
            f'param_scheduler.0.end={max(1, iters // 6)}',
            f'param_scheduler.1.end={iters}',
            f'param_scheduler.1.milestones=[{int(iters * 0.88)},'
            f'{int(iters * 0.96)}]']
    warm = max(1, iters // 10)
    return opts + [f'train_cfg.val_interval={iters // 3}',
                   f'param_scheduler.0.end={warm}',
                   f'param_scheduler.1.begin={warm}',
                   f'param_scheduler.1.end={iters}']


def _load_tool(name: str):
    path = osp.join(REPO, 'tools', 'analysis', f'{name}.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fmt(seconds: float) -> str:
    seconds = int(round(seconds))
    return f'{seconds // 60}m{seconds % 60:02d}s'


class Plan:
    """The steps of the job, with progress and an ETA."""

    def __init__(self, kinds: List[str],
                 guesses: Optional[Dict[str, float]] = None) -> None:
        self.kinds = kinds
        self.guesses = dict(GUESS, **(guesses or {}))
        self.done: List[float] = []
        self.measured: Dict[str, List[float]] = {}
        self.start = time.time()

    def estimate(self, kind: str) -> float:
        seen = self.measured.get(kind)
        return sum(seen) / len(seen) if seen else self.guesses[kind]

    def run(self, kind: str, what: str, cmd: List[str],
            log: Optional[str] = None) -> None:
        """Run one step; its output goes to ``log`` (or the console)."""
        i = len(self.done) + 1
        left = sum(self.estimate(k) for k in self.kinds[i - 1:])
        print(f'\n[main {i}/{len(self.kinds)}] {what}  (elapsed '
              f'{fmt(time.time() - self.start)}, ETA ~{fmt(left)})',
              flush=True)
        print('  $ ' + ' '.join(shlex.quote(c) for c in cmd), flush=True)
        t0 = time.time()
        env = dict(os.environ)
        env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
        if log:
            os.makedirs(osp.dirname(log), exist_ok=True)
            with open(log, 'w') as f:
                res = subprocess.run(cmd, cwd=REPO, env=env, stdout=f,
                                     stderr=subprocess.STDOUT)
        else:
            res = subprocess.run(cmd, cwd=REPO, env=env)
        took = time.time() - t0
        if res.returncode:
            tail = ''
            if log:
                with open(log) as f:
                    tail = ''.join(f.readlines()[-30:])
            raise SystemExit(f'{tail}\n[main] step failed ({what}): exit '
                             f'code {res.returncode}' +
                             (f'; full log: {log}' if log else ''))
        self.done.append(took)
        self.measured.setdefault(kind, []).append(took)
        print(f'[main {i}/{len(self.kinds)}] done in {fmt(took)}' +
              (f' (log: {log})' if log else ''), flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Pretrain with LoMaR, LocalMIM and MAE on the built-in '
        'data, transfer to Mask R-CNN and UperNet, evaluate, and print the '
        'table.')
    parser.add_argument('--work-dir', default='work_dirs/main',
                        help='where everything is written')
    parser.add_argument('--data', default='data',
                        help='where the built-in data is written')
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=METHODS,
                        help='initialisations to run (scratch = random)')
    parser.add_argument('--pretrain-epochs', type=int, default=None,
                        help='pretraining epochs for every method (default: '
                        'the tiny configs\' 20); a longer budget, e.g. 60')
    for task, what in (('det', 'Mask R-CNN'), ('seg', 'UperNet')):
        parser.add_argument(f'--{task}-iters', type=int,
                            default=TRANSFER_ITERS[task],
                            help=f'{what} training iterations (batch 4; '
                            f'default {TRANSFER_ITERS[task]})')
    parser.add_argument('--seeds', type=int, default=1,
                        help='transfer every initialisation this many times '
                        '(seeds 0..N-1) and report the mean and the '
                        'seed-to-seed range (default 1)')
    parser.add_argument('--skip-data', action='store_true',
                        help='use the data already in --data')
    return parser.parse_args(argv)


def epoch_options(config: str, epochs: int) -> List[str]:
    """``--cfg-options`` that change a tiny config's epochs and stretch its
    warm-up + cosine schedule to match."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config))
    warm = cfg.param_scheduler[0]['end']
    if not 0 < warm < epochs:
        raise SystemExit(f'--pretrain-epochs {epochs}: must exceed the '
                         f'{warm} warm-up epochs of {config}')
    return [f'train_cfg.max_epochs={epochs}',
            f'param_scheduler.1.end={epochs}',
            f'param_scheduler.1.T_max={epochs - warm}']


def last_checkpoint(work: str) -> str:
    path = osp.join(work, 'last_checkpoint')
    if not osp.isfile(path):
        raise SystemExit(f'{work}: training wrote no checkpoint')
    with open(path) as f:
        return f.read().strip()


def sample_images(data: str, n: int = 2) -> List[str]:
    files = sorted(glob.glob(osp.join(data, 'imagenet', 'val', '*', '*')))
    if not files:
        files = sorted(glob.glob(osp.join(data, 'imagenet', 'train', '*',
                                          '*')))
    return files[:n]


KEYS = (('APbox', 'box AP'), ('APmask', 'mask AP'), ('mIoU', 'mIoU'))
# below this (CocoMetric AP x 100) for every initialisation, detection has
# not started to work and its column cannot rank them
AP_FLOOR = 1.0


def spread(row: dict, key: str) -> float:
    """Seed-to-seed range (max - min) of one metric; 0 for one seed."""
    values = [r[key] for r in row.get('seeds', []) if r.get(key) is not None]
    return max(values) - min(values) if len(values) > 1 else 0.


def verdict(rows: List[dict]) -> List[str]:
    """Plain statements: did each pretraining beat the random init?

    A metric's difference counts as a win or a loss only when it is larger
    than the seed-to-seed range of either run (with one seed the range is
    unknown and the sign decides, with a warning).
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
        parts = []
        for k, label in keys:
            if row.get(k) is None or base.get(k) is None:
                continue
            diff = row[k] - base[k]
            margin = max(spread(row, k), spread(base, k))
            if diff > margin:
                won.setdefault(NAMES[row['method']], []).append(label)
                parts.append(f'{label} {diff:+.1f}')
            elif diff < -margin:
                parts.append(f'{label} {diff:+.1f}')
            elif margin:
                parts.append(f'{label} {diff:+.1f} (within the seed range '
                             f'{margin:.1f})')
            else:
                parts.append(f'{label} {diff:+.1f} (a tie)')
        lines.append(f'{NAMES[row["method"]]} vs random init: ' +
                     ', '.join(parts))
    if any(r['method'] == 'localmim' for r in rows):
        lines.append('LocalMIM fine-tunes UperNet with its authors\' '
                     'learning rate, 4x the others\'; docs/reproduction.md, '
                     'section 4, also fine-tunes the random init at that '
                     'rate.')
    one_seed = len(base.get('seeds', [])) < 2
    if won:
        lines.append(('Above the random initialisation in this one-seed run: '
                      if one_seed else 'Pretraining beat the random '
                      'initialisation by more than the seed range: ') +
                     '; '.join(f'{name} on {", ".join(labels)}'
                               for name, labels in won.items()) + '.')
    else:
        lines.append('No pretrained initialisation beat the random one here.')
    if one_seed:
        lines.append('One seed per run: differences of a few points can be '
                     'seed noise (docs/reproduction.md, section 4, gives the '
                     'measured spread; --seeds 3 measures it here).')
    return lines


def contact_sheet(groups: List[Tuple[str, List[str]]], out: str,
                  scale: int = 3) -> Optional[str]:
    """One picture from several: a row per group (its name above), images
    enlarged ``scale`` times without smoothing so that small labels read."""
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


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.seeds < 1:
        raise SystemExit(f'--seeds must be at least 1, got {args.seeds}')
    iters = {'det': args.det_iters, 'seg': args.seg_iters}
    for task in iters:  # fail before any work on a bad value
        transfer_options(task, iters[task])
    work = osp.abspath(args.work_dir)
    data = osp.abspath(args.data)
    methods = list(dict.fromkeys(args.methods))
    pretrained = [m for m in methods if m in PRETRAIN]
    kinds = ([] if args.skip_data else ['data']) + \
        ['pretrain'] * len(pretrained) + ['recon'] * len(pretrained) + \
        ['det', 'seg'] * len(methods) * args.seeds + ['curves']
    plan = Plan(kinds, {t: GUESS_START + GUESS_PER_ITER[t] * iters[t]
                        for t in iters})
    py = sys.executable
    os.makedirs(work, exist_ok=True)

    if not args.skip_data:
        plan.run('data', 'the built-in data', [
            py, 'tools/data/generate_data.py', '--out', data])

    # pretraining, timed
    pre_time: Dict[str, float] = {}
    ckpts: Dict[str, str] = {}
    for m in pretrained:
        name, config = PRETRAIN[m]
        out = osp.join(work, 'pretrain', m)
        opts = [f'train_dataloader.dataset.data_root={data}/imagenet']
        if args.pretrain_epochs:
            opts += epoch_options(config, args.pretrain_epochs)
        t0 = time.time()
        plan.run('pretrain', f'{name} pretraining ({config})', [
            py, 'tools/train.py', config, '--work-dir', out,
            '--cfg-options', *opts], log=osp.join(out, 'console.log'))
        pre_time[m] = time.time() - t0
        ckpts[m] = last_checkpoint(out)

    pictures: Dict[str, List[str]] = {'reconstruction': [],
                                      'detection': [], 'segmentation': [],
                                      'curves': []}
    images = sample_images(data)
    for m in pretrained:
        out = osp.join(work, 'pictures', f'reconstruction_{m}')
        plan.run('recon', f'{NAMES[m]} reconstructions', [
            py, 'tools/analysis/visualize_reconstruction.py',
            PRETRAIN[m][1], ckpts[m], *images, '--out-dir', out])
        pictures['reconstruction'] += sorted(glob.glob(f'{out}/*.png'))

    # transfer to Mask R-CNN and UperNet, evaluated by the real metrics;
    # the same seeds for every initialisation (data order, augmentation,
    # head init)
    runs: Dict[str, List[str]] = {}
    for m in methods:
        for seed in range(args.seeds):
            out = osp.join(work, 'transfer', m, f'seed{seed}')
            for task in ('det', 'seg'):
                cmd = [py, 'tools/transfer.py', '--method', m, '--tiny',
                       '--tasks', task, '--data-root', data, '--work-dir',
                       out, '--show-dir',
                       osp.join(out, f'{task}_predictions'), '--cfg-options',
                       f'randomness.seed={seed}',
                       *transfer_options(task, iters[task])]
                if m in ckpts:
                    cmd += ['--checkpoint', ckpts[m], '--pretrain-epochs',
                            str(args.pretrain_epochs or 20)]
                what = 'Mask R-CNN (COCO)' if task == 'det' else \
                    'UperNet (ADE20K)'
                plan.run(task, f'{NAMES[m]} -> {what}, seed {seed}', cmd,
                         log=osp.join(out, f'console_{task}.log'))
            runs.setdefault(m, []).append(out)
    # the first seed's predictions on the same validation images, one row
    # per initialisation, enlarged to be read
    for kind, pattern, legend in (
            ('detection', 'det_predictions/*.jpg',
             'left: ground truth; right: predictions scored 0.3 or more, '
             'the visualizer\'s threshold'),
            ('segmentation', 'seg_predictions/vis_data/vis_image/*.png',
             'left: ground truth, black = unlabelled, not scored; right: '
             'prediction')):
        sheet = contact_sheet(
            [(f'{NAMES[m]} ({legend})',
              sorted(glob.glob(osp.join(runs[m][0], pattern)))[:3])
             for m in methods],
            osp.join(work, 'pictures', f'{kind}_predictions.png'))
        pictures[kind] = [sheet] if sheet else []

    # curves
    curves = osp.join(work, 'pictures')
    plot_cmds = []
    if pretrained:
        plot_cmds.append(('pretraining loss', [
            py, 'tools/analysis/plot_logs.py',
            *[osp.join(work, 'pretrain', m) for m in pretrained],
            '--names', *[NAMES[m] for m in pretrained], '--keys', 'loss',
            '--title', 'pretraining', '--out',
            osp.join(curves, 'curves_pretraining.png')]))
    for task, keys in (('det', ['loss', 'coco/bbox_mAP', 'coco/segm_mAP']),
                       ('seg', ['loss', 'mIoU'])):
        plot_cmds.append((f'{task} curves', [
            py, 'tools/analysis/plot_logs.py',
            *[osp.join(runs[m][0], task) for m in methods],
            '--names', *[NAMES[m] for m in methods], '--keys', *keys,
            '--title', 'Mask R-CNN' if task == 'det' else 'UperNet',
            '--out', osp.join(curves, f'curves_{task}.png')]))
    t0 = time.time()
    for what, cmd in plot_cmds:
        res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if res.returncode:
            raise SystemExit(f'[main] {what} failed:\n{res.stderr[-2000:]}')
    plan.done.append(time.time() - t0)
    pictures['curves'] = sorted(glob.glob(osp.join(curves, 'curves_*.png')))
    print(f'\n[main {len(plan.done)}/{len(kinds)}] training curves drawn',
          flush=True)

    # the table: means over seeds (and the range when more than one)
    collect = _load_tool('collect_results')
    rows = []
    for m in methods:
        row = dict(method=m, name=NAMES[m],
                   pretrain_s=round(pre_time[m], 1) if m in pre_time
                   else None,
                   pretrain_epochs=(args.pretrain_epochs or 20)
                   if m in pre_time else None, seeds=[])
        for run in runs[m]:
            got = collect.collect_run(run)
            values = {}
            for col, task, key, scale in collect.COLUMNS[:3]:
                value = got['metrics'].get(task, {}).get(key)
                values[col] = None if value is None else round(
                    value * scale, 2)
            row['seeds'].append(values)
        for col, _ in KEYS:
            got = [v[col] for v in row['seeds'] if v[col] is not None]
            row[col] = round(sum(got) / len(got), 2) if got else None
        rows.append(row)

    def cell(row, key):
        if row[key] is None:
            return 'n/a'
        if len(row['seeds']) < 2:
            return f'{row[key]:.1f}'
        return f'{row[key]:.1f} ± {spread(row, key) / 2:.1f}'

    lines = ['| method | pretraining time | box AP | mask AP | mIoU |',
             '| --- | --- | --- | --- | --- |']
    for r in rows:
        cells = [r['name'],
                 '-' if r['pretrain_s'] is None else
                 f"{r['pretrain_s']:.0f} s ({r['pretrain_epochs']} ep)"]
        cells += [cell(r, k) for k, _ in KEYS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    table = '\n'.join(lines)
    outcome = verdict(rows)
    total = time.time() - plan.start
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write('# Main job results (built-in data, CPU)\n\n' + table +
                '\n\nBox/mask AP: mmdet CocoMetric (x100); mIoU: mmseg '
                'IoUMetric; both on the built-in validation split' +
                (f'; mean ± half the range over {args.seeds} seeds'
                 if args.seeds > 1 else '') + '.\n\n' +
                '\n'.join(f'- {s}' for s in outcome) + '\n')
    with open(osp.join(work, 'results.json'), 'w') as f:
        json.dump(dict(rows=rows, outcome=outcome, pictures=pictures,
                       total_s=round(total, 1)), f, indent=2)
    print('\n' + table + '\n')
    for line in outcome:
        print('[main] ' + line)
    print('\n[main] pictures:')
    for kind, files in pictures.items():
        for p in files:
            print(f'  {kind:14s} {p}')
    print(f'\n[main] table: {osp.join(work, "results.md")} and '
          f'results.json; all done in {fmt(total)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
