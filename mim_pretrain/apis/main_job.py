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
   UperNet, once per seed, and each pretraining's earlier checkpoints once
   (``tools/transfer.py --tiny``: extract the encoder, train, test with
   mmdet's ``CocoMetric`` and mmseg's ``IoUMetric``, draw the predictions
   with mmdet's and mmseg's visualizers), ``--workers`` runs at a time, each
   with its share of the cores; the metrics are read from the
   ``test_metrics.json`` each test step wrote;
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
import subprocess
import sys
import time
from typing import IO, Callable, Dict, List, NamedTuple, Optional

from .pictures import contact_sheet, plot_efficiency, plot_runs
from .pipeline import (METHOD_NAMES, METHODS, REPO, TEST_METRICS, child_env,
                       config_of, last_checkpoint, launch_command,
                       read_budget_points, read_test_metrics, run_command)
from .results import KEYS, summary_row, summary_table, verdict, write_summary
from .schedules import budget_fractions, budget_options, transfer_options

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
# The job's default budget per method, shorter than the configs' 2 minutes
# so that the whole job (3 pretrainings, 30 transfers) fits 25 minutes on 2
# CPU cores; --pretrain-minutes changes it.
PRETRAIN_MINUTES = 1.5
# --quick: one seed, each method's last checkpoint only, a shorter budget
QUICK = dict(seeds=1, pretrain_minutes=0.5, points=0)
# earlier checkpoints of each pretraining transferred for the efficiency
# picture (of those its TimeBudgetHook saves, from the earliest)
DEFAULT_POINTS = 1
DEFAULT_SEEDS = 3
# first guesses (s, 2 quiet CPU cores, default budget) of each step, replaced
# by measurements as the steps finish; transfer ones are per iteration
GUESS = {'data': 20, 'pretrain': 110, 'recon': 7, 'curves': 10}
# a transfer step, two at a time single-threaded (measured, 2-core CPU):
# start-up and test, then seconds per training iteration
GUESS_START, GUESS_PER_ITER = {'det': 50, 'seg': 40}, {'det': 1.1,
                                                       'seg': 0.45}
# Transfer iterations (batch 4) of the tiny configs in the main job; the
# configs' own schedules (300 / 200) are shortened to fit its budget.
TRANSFER_ITERS = {'det': 40, 'seg': 80}
TASK_TITLES = {'det': 'Mask R-CNN', 'seg': 'UperNet'}
# the efficiency picture's panels (summary_row columns)
EFFICIENCY_KEYS = ('APbox', 'mIoU')


def fmt(seconds: float) -> str:
    """``seconds`` as ``<m>m<ss>s``."""
    seconds = int(round(seconds))
    return f'{seconds // 60}m{seconds % 60:02d}s'


class Step(NamedTuple):
    """One child-process step of :meth:`Plan.run_parallel`."""
    kind: str  # for the ETA
    what: str  # printed
    cmd: List[str]
    log: str  # its output


def _tail(log: str, lines: int = 30) -> str:
    with open(log) as f:
        return ''.join(f.readlines()[-lines:])


class Plan:
    """The steps of the job, with progress and an ETA.

    Args:
        kinds: the kind of every step, in order (keys of ``GUESS`` or
            ``'det'`` / ``'seg'``).
        guesses: first estimates (s) that replace ``GUESS`` entries.
    """

    def __init__(self, kinds: List[str],
                 guesses: Optional[Dict[str, float]] = None,
                 workers: int = 1) -> None:
        self.kinds = kinds
        self.guesses = dict(GUESS, **(guesses or {}))
        self.workers = workers  # of the transfer steps
        self.done: List[float] = []
        self.measured: Dict[str, List[float]] = {}
        self.start = time.time()

    def left(self, after: int) -> float:
        """Seconds the steps after the first ``after`` take; transfer
        steps run ``workers`` at a time."""
        return sum(self.estimate(k) / (self.workers if k in GUESS_PER_ITER
                                       else 1) for k in self.kinds[after:])

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
        left = self.left(i - 1)
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
        self._finished(i, kind, time.time() - t0,
                       f' (log: {log})' if log else '')
        return result

    def _finished(self, i: int, kind: str, took: float, extra: str) -> None:
        self.done.append(took)
        self.measured.setdefault(kind, []).append(took)
        print(f'[main {i}/{len(self.kinds)}] done in {fmt(took)}{extra}',
              flush=True)

    def run_parallel(self, steps: List[Step], threads: int) -> None:
        """Run child-process steps, ``self.workers`` at a time.

        Every child gets ``threads`` intra-op threads (``OMP_NUM_THREADS``,
        ``MKL_NUM_THREADS``): small models on a few cores run faster as one
        single-threaded process per core than as processes that each take
        every core.

        Args:
            steps: the steps, started in this order.
            threads: intra-op threads of each.

        Raises:
            SystemExit: a step failed (the others are stopped); with the
                tail of its log.
        """
        env = child_env(threads)
        pending = list(steps)
        running: Dict[subprocess.Popen, tuple] = {}
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    step = pending.pop(0)
                    i = len(self.done) + len(running) + 1
                    left = self.left(len(self.done) + len(running))
                    print(f'\n[main {i}/{len(self.kinds)}] {step.what}  '
                          f'(elapsed {fmt(time.time() - self.start)}, ETA '
                          f'~{fmt(left)})', flush=True)
                    print('  $ ' + shlex.join(step.cmd), flush=True)
                    os.makedirs(osp.dirname(step.log), exist_ok=True)
                    out = open(step.log, 'w')
                    proc = subprocess.Popen(step.cmd, cwd=REPO, env=env,
                                            stdout=out,
                                            stderr=subprocess.STDOUT)
                    running[proc] = (step, out, time.time(), i)
                time.sleep(0.2)
                for proc in [p for p in running if p.poll() is not None]:
                    step, out, t0, i = running.pop(proc)
                    out.close()
                    if proc.returncode:
                        raise SystemExit(
                            f'{_tail(step.log)}\n[main] step failed '
                            f'({step.what}): exit code {proc.returncode}; '
                            f'full log: {step.log}')
                    self._finished(i, step.kind, time.time() - t0,
                                   f': {step.what} (log: {step.log})')
        finally:
            for proc, (_, out, _, _) in running.items():
                proc.kill()
                proc.wait()
                out.close()


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
                        f'(default {PRETRAIN_MINUTES:g}; the configs say 2; '
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
    parser.add_argument('--points', type=int, default=None,
                        help='earlier checkpoints of each pretraining to '
                        'transfer (seed 0) for the efficiency picture, '
                        'from the earliest its budget hook saved (default '
                        f'{DEFAULT_POINTS}; 0: none; --quick: '
                        f'{QUICK["points"]})')
    parser.add_argument('--quick', action='store_true',
                        help=f'{QUICK["seeds"]} seed, a '
                        f'{QUICK["pretrain_minutes"]:g}-minute pretraining '
                        'budget, no efficiency points: every step in a '
                        'few minutes (explicit options win)')
    parser.add_argument('--workers', type=int, default=None,
                        help='transfer runs at once, each with its share of '
                        'the cores as threads (default: 2, or 1 on a '
                        'one-core machine)')
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
            seeds=DEFAULT_SEEDS, pretrain_minutes=PRETRAIN_MINUTES,
            points=DEFAULT_POINTS)
        if args.seeds is None:
            args.seeds = defaults['seeds']
        if args.pretrain_minutes is None:
            args.pretrain_minutes = defaults['pretrain_minutes']
        if args.points is None:
            args.points = defaults['points']
        if args.points < 0:
            raise SystemExit(f'--points must be 0 or more, got {args.points}')
        if args.seeds < 1:
            raise SystemExit(f'--seeds must be at least 1, got {args.seeds}')
        cores = len(os.sched_getaffinity(0))
        if args.workers is None:
            args.workers = min(2, cores)
        if args.workers < 1:
            raise SystemExit(
                f'--workers must be at least 1, got {args.workers}')
        self.threads = max(1, cores // args.workers)
        self.args = args
        self.iters = {'det': args.det_iters, 'seg': args.seg_iters}
        self.methods = list(dict.fromkeys(args.methods))
        self.pretrained = [m for m in self.methods if m in PRETRAIN]
        # every schedule edit, checked before any work
        self.transfer_opts = {
            (m, t): transfer_options(t, n, config_of(t, m, tiny=True),
                                     validate=False)
            for t, n in self.iters.items() for m in self.methods}
        self.budget_opts = {
            m: budget_options(BUDGET_CONFIGS[m], 60 * args.pretrain_minutes)
            for m in self.pretrained}
        self.work = osp.abspath(args.work_dir)
        self.data = osp.abspath(args.data)
        # the earlier checkpoints of each pretraining, one seed each
        saved = len(budget_fractions(BUDGET_CONFIGS[self.pretrained[0]])
                    ) if self.pretrained else 0
        if args.points > saved:
            raise SystemExit(f'--points {args.points}: the pretraining '
                             f'configs save {saved} earlier checkpoints')
        self.n_points = args.points if self.pretrained else 0
        kinds = ([] if args.skip_data else ['data']) + \
            ['pretrain'] * len(self.pretrained) + \
            ['recon'] * len(self.pretrained) + \
            ['det', 'seg'] * (len(self.methods) * args.seeds +
                              len(self.pretrained) * self.n_points) + \
            ['curves']
        self.plan = Plan(kinds, {t: GUESS_START[t] + GUESS_PER_ITER[t] * n
                                 for t, n in self.iters.items()},
                         workers=args.workers)
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
                           points=points[:-1][:self.n_points])
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
                 name: Optional[str] = None) -> Step:
        """One transfer run, to start (in ``transfer/<m>/<name>``, default
        ``seed<seed>``); :meth:`metrics` reads what it scored."""
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
        return Step(task, f'{source} -> {what}, seed {seed}',
                    [sys.executable, 'tools/transfer.py', *argv],
                    osp.join(out, f'console_{task}.log'))

    def metrics(self, m: str, name: str) -> Dict[str, dict]:
        """The test metrics by task of a finished transfer run."""
        out = osp.join(self.work, 'transfer', m, name)
        return {task: read_test_metrics(osp.join(out, task, TEST_METRICS))
                for task in ('det', 'seg')}

    def efficiency_points(self, pretrained: Dict[str, dict],
                          rows: List[dict]) -> Dict[str, list]:
        """Draw the efficiency picture from the transfers of each
        pretraining's earlier checkpoints (seed 0): score against
        pretraining time, the last checkpoint with all its seeds, the
        random initialisation as a band.

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
                row = summary_row(m, [self.metrics(m,
                                                   f'iter{point["iter"]}')])
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
        # the transfers validate only in their test step: losses here,
        # scores in the table and the efficiency picture
        for task, keys in (('det', ['loss', 'loss_rpn_cls', 'loss_cls']),
                           ('seg', ['loss', 'decode.acc_seg'])):
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
        # augmentation, head init); the earlier checkpoints' runs last
        steps = [self.transfer(m, seed, task,
                               pretrained.get(m, {}).get('checkpoint'))
                 for m in self.methods for seed in range(a.seeds)
                 for task in ('det', 'seg')]
        if self.n_points:
            steps += [self.transfer(m, 0, task, point['checkpoint'],
                                    name=f'iter{point["iter"]}')
                      for m in self.pretrained
                      for point in pretrained[m]['points']
                      for task in ('det', 'seg')]
        self.plan.run_parallel(steps, self.threads)
        runs = {m: [osp.join(self.work, 'transfer', m, f'seed{seed}')
                    for seed in range(a.seeds)] for m in self.methods}
        rows = [summary_row(m, [self.metrics(m, f'seed{seed}')
                                for seed in range(a.seeds)],
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
