"""The main job, the README's first command (``make main``): the entry
point of ``tools/main_job.py``.

From nothing to a results table on the built-in data, on a CPU:

1. write the built-in data (ImageNet, COCO and ADE20K layouts);
2. pretrain the same small ViT with LoMaR, LocalMIM and mmpretrain's MAE for
   the same wall-clock budget (``tools/train.py`` with the tiny
   ``*_2min_synthetic.py`` configs, whose ``TimeBudgetHook`` fits the run
   and its schedule to the budget), timing each;
3. draw what each pretrained model reconstructs
   (``tools/analysis/visualize_reconstruction.py``);
4. transfer each, and a random initialisation, to the tiny Mask R-CNN and
   UperNet (:func:`~.transfer.transfer_main` with ``--tiny``, in this
   process: extract the encoder, train, test with mmdet's ``CocoMetric``
   and mmseg's ``IoUMetric``, draw the predictions with mmdet's and mmseg's
   visualizers); the metrics come back as its return value;
5. draw the training curves (:func:`~.pictures.plot_runs`);
6. print one table (method, pretraining time, box AP, mask AP, mIoU), write
   it as ``results.md`` and ``results.json`` in the work dir, and say
   whether pretraining beat the random initialisation (:mod:`.results`).

Every step prints its number, its time and an estimate of what is left.
"""
import argparse
import glob
import os
import os.path as osp
import shlex
import sys
import time
from typing import IO, Callable, Dict, List, Optional

from .pictures import contact_sheet, plot_efficiency, plot_runs
from .pipeline import (METHOD_NAMES, METHODS, config_of, last_checkpoint,
                       launch_command, read_budget_points, run_command)
from .results import KEYS, summary_row, summary_table, verdict, write_summary
from .schedules import budget_fractions, budget_options, transfer_options
from .transfer import transfer_main

# the tiny pretraining configs (20 epochs), which tests train; the main
# job trains their wall-clock-budget versions (BUDGET_CONFIGS)
PRETRAIN = {
    'lomar': (METHOD_NAMES['lomar'],
              'mmpretrain_configs/lomar/lomar_vit-tiny-p8_1xb32-20e_'
              'synthetic.py'),
    'localmim': (METHOD_NAMES['localmim'],
                 'mmpretrain_configs/localmim/localmim_vit-tiny-p8_1xb32-'
                 '20e_synthetic.py'),
    'mae': (METHOD_NAMES['mae'],
            'mmpretrain_configs/mae/mae_vit-tiny-p8_1xb32-20e_synthetic.py'),
}
BUDGET_CONFIGS = {m: config.replace('-20e_', '-2min_')
                  for m, (_, config) in PRETRAIN.items()}
PRETRAIN_MINUTES = 2.0  # the budget configs'
# --quick: one seed, each method's last checkpoint only, a shorter budget
QUICK = dict(seeds=1, pretrain_minutes=0.5, points=False)
DEFAULT_SEEDS = 3
# first guesses (s, 2 quiet CPU cores, default budget) of each step, replaced
# by measurements as the steps finish; transfer ones are per iteration
GUESS = {'data': 20, 'pretrain': 140, 'recon': 8, 'curves': 10}
GUESS_START, GUESS_PER_ITER = 40, {'det': 0.6, 'seg': 0.25}
# Transfer iterations (batch 4) of the tiny configs in the main job; the
# configs' own schedules (300 / 200) are shortened to fit its budget.
TRANSFER_ITERS = {'det': 120, 'seg': 120}
TASK_TITLES = {'det': 'Mask R-CNN', 'seg': 'UperNet'}
# the efficiency picture's panels (summary_row columns)
EFFICIENCY_KEYS = ('APbox', 'mIoU')


def fmt(seconds: float) -> str:
    """``seconds`` as ``<m>m<ss>s``."""
    seconds = int(round(seconds))
    return f'{seconds // 60}m{seconds % 60:02d}s'


class Plan:
    """The steps of the job, with progress and an ETA.

    Args:
        kinds: the kind of every step, in order (keys of ``GUESS`` or
            ``'det'`` / ``'seg'``).
        guesses: first estimates (s) that replace ``GUESS`` entries.
    """

    def __init__(self, kinds: List[str],
                 guesses: Optional[Dict[str, float]] = None) -> None:
        self.kinds = kinds
        self.guesses = dict(GUESS, **(guesses or {}))
        self.done: List[float] = []
        self.measured: Dict[str, List[float]] = {}
        self.start = time.time()

    def estimate(self, kind: str) -> float:
        """Seconds a step of ``kind`` takes: the mean so far, else the
        guess."""
        seen = self.measured.get(kind)
        return sum(seen) / len(seen) if seen else self.guesses[kind]

    def run(self, kind: str, what: str, cmd: List[str],
            log: Optional[str] = None,
            call: Optional[Callable[[Optional[IO]], object]] = None):
        """Run one step; its output goes to ``log`` (or the console).

        Args:
            kind: the step's kind, for the ETA.
            what: what it is, printed.
            cmd: its command, printed; run in a child process unless
                ``call`` is given.
            log: a file for its output.
            call: runs the step in this process instead (given the open
                log, or None); a failure is a ``SystemExit``.

        Returns:
            what ``call`` returned (None for a command).

        Raises:
            SystemExit: the step failed; with the tail of its log.
        """
        i = len(self.done) + 1
        left = sum(self.estimate(k) for k in self.kinds[i - 1:])
        print(f'\n[main {i}/{len(self.kinds)}] {what}  (elapsed '
              f'{fmt(time.time() - self.start)}, ETA ~{fmt(left)})',
              flush=True)
        print('  $ ' + shlex.join(cmd), flush=True)
        t0 = time.time()
        if log:
            os.makedirs(osp.dirname(log), exist_ok=True)
        out = open(log, 'w') if log else None
        result, failure = None, None
        try:
            if call is not None:
                result = call(out)
            else:
                code = run_command(cmd, out)
                failure = f'exit code {code}' if code else None
        except SystemExit as err:  # how the in-process steps fail
            failure = err.code
        finally:
            if out is not None:
                out.close()
        if failure is not None:
            tail = ''
            if log:
                with open(log) as f:
                    tail = ''.join(f.readlines()[-30:])
            raise SystemExit(f'{tail}\n[main] step failed ({what}): '
                             f'{failure}' +
                             (f'; full log: {log}' if log else ''))
        took = time.time() - t0
        self.done.append(took)
        self.measured.setdefault(kind, []).append(took)
        print(f'[main {i}/{len(self.kinds)}] done in {fmt(took)}' +
              (f' (log: {log})' if log else ''), flush=True)
        return result


def build_main_job_parser() -> argparse.ArgumentParser:
    """Command-line parser of ``tools/main_job.py``."""
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
    parser.add_argument('--pretrain-minutes', type=float, default=None,
                        help='wall-clock pretraining budget of every method '
                        f'(default: the configs\' {PRETRAIN_MINUTES:g}; '
                        f'--quick: {QUICK["pretrain_minutes"]:g})')
    for task, what in TASK_TITLES.items():
        parser.add_argument(f'--{task}-iters', type=int,
                            default=TRANSFER_ITERS[task],
                            help=f'{what} training iterations (batch 4; '
                            f'default {TRANSFER_ITERS[task]})')
    parser.add_argument('--seeds', type=int, default=None,
                        help='transfer every initialisation this many times '
                        '(seeds 0..N-1) and report the mean and the '
                        f'seed-to-seed range (default {DEFAULT_SEEDS}; '
                        f'--quick: {QUICK["seeds"]})')
    parser.add_argument('--no-points', action='store_true',
                        help='transfer only the last pretraining checkpoint '
                        'of each method, not the earlier ones the '
                        'efficiency picture is drawn from (with --quick)')
    parser.add_argument('--quick', action='store_true',
                        help=f'{QUICK["seeds"]} seed, a '
                        f'{QUICK["pretrain_minutes"]:g}-minute pretraining '
                        'budget, no efficiency points: every step in a '
                        'few minutes (explicit options win)')
    parser.add_argument('--skip-data', action='store_true',
                        help='use the data already in --data')
    return parser


def sample_images(data: str, n: int = 2) -> List[str]:
    """The first ``n`` ImageNet-layout images (val, else train)."""
    files = sorted(glob.glob(osp.join(data, 'imagenet', 'val', '*', '*')))
    if not files:
        files = sorted(glob.glob(osp.join(data, 'imagenet', 'train', '*',
                                          '*')))
    return files[:n]


class MainJob:
    """The steps of the main job (see the module's docstring).

    Args:
        args: parsed by :func:`build_main_job_parser`.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        defaults = dict(QUICK) if args.quick else dict(
            seeds=DEFAULT_SEEDS, pretrain_minutes=None, points=True)
        if args.seeds is None:
            args.seeds = defaults['seeds']
        if args.pretrain_minutes is None:
            args.pretrain_minutes = defaults['pretrain_minutes']
        self.points = defaults['points'] and not args.no_points
        if args.seeds < 1:
            raise SystemExit(f'--seeds must be at least 1, got {args.seeds}')
        self.args = args
        self.iters = {'det': args.det_iters, 'seg': args.seg_iters}
        self.methods = list(dict.fromkeys(args.methods))
        self.pretrained = [m for m in self.methods if m in PRETRAIN]
        # every schedule edit, checked before any work
        self.transfer_opts = {
            (m, t): transfer_options(t, n, config_of(t, m, tiny=True))
            for t, n in self.iters.items() for m in self.methods}
        self.budget_opts = {
            m: budget_options(BUDGET_CONFIGS[m], 60 * args.pretrain_minutes)
            if args.pretrain_minutes is not None else []
            for m in self.pretrained}
        self.work = osp.abspath(args.work_dir)
        self.data = osp.abspath(args.data)
        # the earlier checkpoints of each pretraining, one seed each
        self.n_points = (len(budget_fractions(BUDGET_CONFIGS[
            self.pretrained[0]])) if self.points and self.pretrained else 0)
        kinds = ([] if args.skip_data else ['data']) + \
            ['pretrain'] * len(self.pretrained) + \
            ['recon'] * len(self.pretrained) + \
            ['det', 'seg'] * (len(self.methods) * args.seeds +
                              len(self.pretrained) * self.n_points) + \
            ['curves']
        self.plan = Plan(kinds, {t: GUESS_START + GUESS_PER_ITER[t] * n
                                 for t, n in self.iters.items()})
        self.pictures: Dict[str, List[str]] = {
            'reconstruction': [], 'detection': [], 'segmentation': [],
            'curves': [], 'efficiency': []}

    def pretrain(self) -> Dict[str, dict]:
        """Pretrain each method, timed; its checkpoint and time."""
        done = {}
        for m in self.pretrained:
            name, config = METHOD_NAMES[m], BUDGET_CONFIGS[m]
            out = osp.join(self.work, 'pretrain', m)
            opts = [f'train_dataloader.dataset.data_root={self.data}/'
                    'imagenet', *self.budget_opts[m]]
            t0 = time.time()
            self.plan.run('pretrain', f'{name} pretraining ({config})',
                          launch_command('train', config, [
                              '--work-dir', out, '--cfg-options', *opts]),
                          log=osp.join(out, 'console.log'))
            points = read_budget_points(out)
            done[m] = dict(time=time.time() - t0,
                           train_s=points[-1]['seconds'],
                           iters=points[-1]['iter'],
                           checkpoint=last_checkpoint(out),
                           points=points[:-1])
        return done

    def reconstructions(self, pretrained: Dict[str, dict]) -> None:
        """Draw what each pretrained model reconstructs."""
        images = sample_images(self.data)
        for m in self.pretrained:
            out = osp.join(self.work, 'pictures', f'reconstruction_{m}')
            self.plan.run('recon', f'{METHOD_NAMES[m]} reconstructions', [
                sys.executable, 'tools/analysis/visualize_reconstruction.py',
                BUDGET_CONFIGS[m], pretrained[m]['checkpoint'], *images,
                '--out-dir', out])
            self.pictures['reconstruction'] += sorted(
                glob.glob(f'{out}/*.png'))

    def transfer(self, m: str, seed: int, task: str,
                 checkpoint: Optional[str],
                 name: Optional[str] = None) -> Dict[str, dict]:
        """One transfer run (in ``transfer/<m>/<name>``, default
        ``seed<seed>``); its test metrics by task."""
        name = name or f'seed{seed}'
        out = osp.join(self.work, 'transfer', m, name)
        argv = ['--method', m, '--tiny', '--tasks', task, '--data-root',
                self.data, '--work-dir', out, '--show-dir',
                osp.join(out, f'{task}_predictions'), '--cfg-options',
                f'randomness.seed={seed}', *self.transfer_opts[m, task]]
        if checkpoint:
            argv += ['--checkpoint', checkpoint]
        what = 'Mask R-CNN (COCO)' if task == 'det' else 'UperNet (ADE20K)'
        source = METHOD_NAMES[m] + ('' if name == f'seed{seed}' else
                                    f' ({name})')
        return self.plan.run(
            task, f'{source} -> {what}, seed {seed}',
            [sys.executable, 'tools/transfer.py', *argv],
            log=osp.join(out, f'console_{task}.log'),
            call=lambda log: transfer_main(argv, log))['metrics']

    def efficiency_points(self, pretrained: Dict[str, dict],
                          rows: List[dict]) -> Dict[str, list]:
        """Transfer each pretraining's earlier checkpoints (seed 0) and draw
        the efficiency picture: score against pretraining time, the last
        checkpoint with all its seeds, the random initialisation as a band.

        Returns:
            dict: per method, ``{'seconds', 'iter', 'APbox', 'mIoU'}`` per
            point in time order (values: one per seed); empty without
            points.
        """
        if not self.n_points:
            return {}
        by_method = {r['method']: r for r in rows}
        curves: Dict[str, list] = {}
        for m in self.pretrained:
            found = []
            for point in pretrained[m]['points']:
                got = {}
                for task in ('det', 'seg'):
                    got.update(self.transfer(m, 0, task, point['checkpoint'],
                                             name=f'iter{point["iter"]}'))
                row = summary_row(m, [got])
                found.append(dict(seconds=point['seconds'],
                                  iter=point['iter'],
                                  **{k: [row[k]] for k in EFFICIENCY_KEYS}))
            last = by_method[m]
            found.append(dict(seconds=pretrained[m]['train_s'],
                              iter=pretrained[m]['iters'],
                              **{k: [v[k] for v in last['seeds']]
                                 for k in EFFICIENCY_KEYS}))
            curves[m] = found
        base = by_method.get('scratch')
        out = osp.join(self.work, 'pictures', 'efficiency.png')
        plot_efficiency(
            {METHOD_NAMES[m]: [(p['seconds'], p) for p in found]
             for m, found in curves.items()},
            {k: [v[k] for v in base['seeds']] for k in EFFICIENCY_KEYS}
            if base else {},
            [(k, label) for k, label in KEYS if k in EFFICIENCY_KEYS], out,
            title='downstream score against pretraining time (built-in '
            'data, CPU)')
        self.pictures['efficiency'] = [out]
        return curves

    def prediction_sheets(self, runs: Dict[str, List[str]]) -> None:
        """The first seed's predictions on the same validation images, one
        row per initialisation, enlarged to be read."""
        for kind, pattern, legend in (
                ('detection', 'det_predictions/*.jpg',
                 'left: ground truth; right: predictions scored 0.3 or '
                 'more, the visualizer\'s threshold'),
                ('segmentation', 'seg_predictions/vis_data/vis_image/*.png',
                 'left: ground truth, black = unlabelled, not scored; '
                 'right: prediction')):
            sheet = contact_sheet(
                [(f'{METHOD_NAMES[m]} ({legend})',
                  sorted(glob.glob(osp.join(runs[m][0], pattern)))[:3])
                 for m in self.methods],
                osp.join(self.work, 'pictures', f'{kind}_predictions.png'))
            self.pictures[kind] = [sheet] if sheet else []

    def curves(self, runs: Dict[str, List[str]]) -> None:
        """Loss and metric curves of the pretraining and the first seed's
        transfers."""
        folder = osp.join(self.work, 'pictures')
        names = [METHOD_NAMES[m] for m in self.methods]
        plots = []
        if self.pretrained:
            plots.append(('pretraining loss', dict(
                runs=[osp.join(self.work, 'pretrain', m)
                      for m in self.pretrained],
                names=[METHOD_NAMES[m] for m in self.pretrained],
                keys=['loss'], title='pretraining',
                out=osp.join(folder, 'curves_pretraining.png'))))
        for task, keys in (('det', ['loss', 'coco/bbox_mAP',
                                    'coco/segm_mAP']),
                           ('seg', ['loss', 'mIoU'])):
            plots.append((f'{task} curves', dict(
                runs=[osp.join(runs[m][0], task) for m in self.methods],
                names=names, keys=keys, title=TASK_TITLES[task],
                out=osp.join(folder, f'curves_{task}.png'))))
        t0 = time.time()
        for what, kw in plots:
            try:
                plot_runs(**kw)
            except (FileNotFoundError, KeyError, ValueError) as err:
                raise SystemExit(f'[main] {what} failed:\n{err}')
        self.plan.done.append(time.time() - t0)
        self.pictures['curves'] = sorted(
            glob.glob(osp.join(folder, 'curves_*.png')))
        print(f'\n[main {len(self.plan.done)}/{len(self.plan.kinds)}] '
              'training curves drawn', flush=True)

    def __call__(self) -> dict:
        """Run every step; the table's rows and the verdict."""
        a = self.args
        os.makedirs(self.work, exist_ok=True)
        if not a.skip_data:
            self.plan.run('data', 'the built-in data', [
                sys.executable, 'tools/data/generate_data.py', '--out',
                self.data])
        pretrained = self.pretrain()
        self.reconstructions(pretrained)
        # the same seeds for every initialisation (data order,
        # augmentation, head init)
        runs: Dict[str, List[str]] = {}
        metrics: Dict[str, List[dict]] = {}
        for m in self.methods:
            ckpt = pretrained.get(m, {}).get('checkpoint')
            for seed in range(a.seeds):
                got = {}
                for task in ('det', 'seg'):
                    got.update(self.transfer(m, seed, task, ckpt))
                runs.setdefault(m, []).append(
                    osp.join(self.work, 'transfer', m, f'seed{seed}'))
                metrics.setdefault(m, []).append(got)
        rows = [summary_row(m, metrics[m],
                            pretrained.get(m, {}).get('train_s'),
                            pretrained.get(m, {}).get('iters'))
                for m in self.methods]
        points = self.efficiency_points(pretrained, rows)
        self.prediction_sheets(runs)
        self.curves(runs)
        outcome = verdict(rows)
        total = time.time() - self.plan.start
        md, _ = write_summary(self.work, rows, outcome, self.pictures, total,
                              a.seeds, points)
        print('\n' + summary_table(rows) + '\n')
        for line in outcome:
            print('[main] ' + line)
        print('\n[main] pictures:')
        for kind, files in self.pictures.items():
            for p in files:
                print(f'  {kind:14s} {p}')
        print(f'\n[main] table: {md} and results.json; all done in '
              f'{fmt(total)}')
        return dict(rows=rows, outcome=outcome, pictures=self.pictures)


def main_job_main(argv: Optional[List[str]] = None) -> int:
    """Run ``tools/main_job.py``.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        int: 0 (a failure is a ``SystemExit``).
    """
    MainJob(build_main_job_parser().parse_args(argv))()
    return 0
