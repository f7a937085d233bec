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
from typing import Dict, List, Optional

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
# first guesses (s, 2 CPU cores) of each step, replaced by measurements
GUESS = {'data': 20, 'pretrain': 90, 'recon': 15, 'det': 180, 'seg': 80,
         'curves': 10}
# The tiny transfer configs' schedules shortened to fit the job's budget
# (same shape: warm-up, then steps / poly decay), validated along the way for
# the curves.
TRANSFER_OPTIONS = {
    'det': ['train_cfg.max_iters=120', 'train_cfg.val_interval=60',
            'param_scheduler.0.end=20', 'param_scheduler.1.end=120',
            'param_scheduler.1.milestones=[106,115]',
            'default_hooks.checkpoint.interval=120'],
    'seg': ['train_cfg.max_iters=120', 'train_cfg.val_interval=40',
            'param_scheduler.1.end=120',
            'default_hooks.checkpoint.interval=120'],
}


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

    def __init__(self, kinds: List[str]) -> None:
        self.kinds = kinds
        self.done: List[float] = []
        self.measured: Dict[str, List[float]] = {}
        self.start = time.time()

    def estimate(self, kind: str) -> float:
        seen = self.measured.get(kind)
        return sum(seen) / len(seen) if seen else GUESS[kind]

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


def verdict(rows: List[dict]) -> List[str]:
    """Plain statements: did each pretraining beat the random init?"""
    base = next((r for r in rows if r['method'] == 'scratch'), None)
    if base is None:
        return ['(no random-init run to compare with)']
    lines = []
    keys = [('APbox', 'box AP'), ('APmask', 'mask AP'), ('mIoU', 'mIoU')]
    wins = 0
    for row in rows:
        if row['method'] == 'scratch':
            continue
        diffs = [(label, row[k] - base[k]) for k, label in keys
                 if row.get(k) is not None and base.get(k) is not None]
        better = sum(d > 0 for _, d in diffs)
        wins += better == len(diffs)
        lines.append(f'{NAMES[row["method"]]} vs random init: ' + ', '.join(
            f'{label} {d:+.1f}' for label, d in diffs))
    if wins == 0:
        lines.append(
            'No pretrained initialisation beat the random one on every '
            'metric here. On this tiny task (a few hundred synthetic '
            'images, minutes of CPU pretraining, 16 validation images) the '
            'differences are within run-to-run noise; see docs/'
            'reproduction.md ("What the small built-in run can and cannot '
            'show") for why, and for the full-scale recipe.')
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    work = osp.abspath(args.work_dir)
    data = osp.abspath(args.data)
    methods = list(dict.fromkeys(args.methods))
    pretrained = [m for m in methods if m in PRETRAIN]
    kinds = ([] if args.skip_data else ['data']) + \
        ['pretrain'] * len(pretrained) + ['recon'] * len(pretrained) + \
        ['det', 'seg'] * len(methods) + ['curves']
    plan = Plan(kinds)
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

    # transfer to Mask R-CNN and UperNet, evaluated by the real metrics
    runs = []
    for m in methods:
        out = osp.join(work, 'transfer', m)
        for task in ('det', 'seg'):
            cmd = [py, 'tools/transfer.py', '--method', m, '--tiny',
                   '--tasks', task, '--data-root', data, '--work-dir', out,
                   '--show-dir', osp.join(out, f'{task}_predictions'),
                   '--cfg-options',
                   *TRANSFER_OPTIONS[task]]
            if m in ckpts:
                cmd += ['--checkpoint', ckpts[m], '--pretrain-epochs',
                        str(args.pretrain_epochs or 20)]
            what = 'Mask R-CNN (COCO)' if task == 'det' else \
                'UperNet (ADE20K)'
            plan.run(task, f'{NAMES[m]} -> {what}', cmd,
                     log=osp.join(out, f'console_{task}.log'))
        runs.append(out)
        pictures['detection'] += sorted(glob.glob(
            f'{out}/det_predictions/*.*'))[:4]
        pictures['segmentation'] += sorted(glob.glob(
            f'{out}/seg_predictions/**/*.png', recursive=True))[:4]

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
            *[osp.join(r, task) for r in runs],
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

    # the table
    collect = _load_tool('collect_results')
    rows = []
    for m, run in zip(methods, runs):
        got = collect.collect_run(run)
        row = dict(method=m, name=NAMES[m],
                   pretrain_s=round(pre_time[m], 1) if m in pre_time
                   else None,
                   pretrain_epochs=(args.pretrain_epochs or 20)
                   if m in pre_time else None)
        for col, task, key, scale in collect.COLUMNS[:3]:
            value = got['metrics'].get(task, {}).get(key)
            row[col] = None if value is None else round(value * scale, 2)
        rows.append(row)
    lines = ['| method | pretraining time | box AP | mask AP | mIoU |',
             '| --- | --- | --- | --- | --- |']
    for r in rows:
        cells = [r['name'],
                 '-' if r['pretrain_s'] is None else
                 f"{r['pretrain_s']:.0f} s ({r['pretrain_epochs']} ep)"]
        cells += ['n/a' if r[k] is None else f'{r[k]:.1f}'
                  for k in ('APbox', 'APmask', 'mIoU')]
        lines.append('| ' + ' | '.join(cells) + ' |')
    table = '\n'.join(lines)
    outcome = verdict(rows)
    total = time.time() - plan.start
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write('# Main job results (built-in data, CPU)\n\n' + table +
                '\n\nBox/mask AP: mmdet CocoMetric (x100); mIoU: mmseg '
                'IoUMetric; both on the built-in validation split.\n\n' +
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
