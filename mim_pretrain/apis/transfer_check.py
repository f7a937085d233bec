"""Does a checkpoint carry what pretraining learned into a transfer model?
The entry point of ``tools/analysis/check_transfer.py``.

A weight file can load without an error and still be useless: keys mapped
to the wrong blocks, or a prefix that matched nothing the loader was asked to
fill. This check judges the weights by what they do. It fine-tunes a
segmentation config (UperNet) three times for the same few iterations, with
the same seed (data order, augmentation, head initialisation):

* from the weights as given,
* from the same weights with the order of the transformer blocks reversed
  (every tensor of block ``i`` moved to block ``depth - 1 - i``; the patch
  embedding and norms stay),
* from a random initialisation (the config without its checkpoint),

and reports, for each, the mean training loss over the second half of the
iterations and the loss on the validation images after them. Weights that
carry what pretraining learned reach the lowest of both.

The built-in data for it is :func:`~mim_pretrain.datasets.
generate_texture_ade20k` (texture classes, colours random): the features a
small encoder learns first from the built-in pretraining pool are texture
features, while shapes take far longer (docs/reproduction.md, section 4).
"""
import argparse
import copy
import os
import os.path as osp
import re
import tempfile
import time
from typing import Dict, List, Optional, Union

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, PARAM_SCHEDULERS, DefaultScope
from mmengine.runner import Runner, set_random_seed

from ..converters.io import read_state_dict
from ..datasets import generate_texture_ade20k

# the key of a transformer block's tensor: <prefix>(layers|blocks).<i>.<rest>
BLOCK_KEY = re.compile(r'^(?P<head>(?:.*\.)?(?:layers|blocks)\.)(?P<i>\d+)'
                       r'(?P<tail>\..*)$')
INITS = ('pretrained', 'blocks reversed', 'random init')


def reverse_blocks(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The same tensors with the transformer blocks in reverse order.

    Args:
        state: a backbone state dict (``layers.<i>.`` or ``blocks.<i>.``
            keys, any prefix).

    Returns:
        dict: block ``i``'s tensors under block ``depth - 1 - i``'s keys;
        every other tensor unchanged.

    Raises:
        ValueError: no block keys, or fewer than two blocks.
    """
    depth = 1 + max((int(m['i']) for m in map(BLOCK_KEY.match, state) if m),
                    default=-1)
    if depth < 2:
        raise ValueError('no transformer blocks to reverse (keys '
                         f'"layers.<i>." or "blocks.<i>."): {list(state)[:5]}')
    out = {}
    for key, value in state.items():
        m = BLOCK_KEY.match(key)
        if m:
            key = f'{m["head"]}{depth - 1 - int(m["i"])}{m["tail"]}'
        out[key] = value
    return out


def _data_loader(cfg: dict, data_root: str, seed: int):
    cfg = copy.deepcopy(cfg)
    cfg['dataset']['data_root'] = data_root
    # in this process: the three runs see the same augmentation draws
    cfg['num_workers'] = 0
    cfg['persistent_workers'] = False
    return Runner.build_dataloader(cfg, seed=seed)


def fine_tune_losses(config: Union[str, Config],
                     weights: Optional[str],
                     data_root: str,
                     iters: int = 40,
                     seed: int = 0) -> Dict[str, float]:
    """Fine-tune a segmentation config briefly; its losses.

    The config's model, optimiser (its constructor: layer decay), schedule
    and data pipelines are used as they are; only the backbone's checkpoint,
    the data root and the number of iterations change.

    Args:
        config: an mmseg config (file or loaded) whose backbone loads its
            weights through ``init_cfg=dict(type='Pretrained', ...)``.
        weights: the backbone weights file; None fine-tunes from a random
            initialisation.
        data_root: the ADE20K-layout data root of both dataloaders.
        iters: training iterations.
        seed: random seed of the head, the data order and augmentation.

    Returns:
        dict: ``train`` (mean loss over the second half of the iterations)
        and ``val`` (mean loss on the validation images after training).

    Raises:
        ValueError: not an mmseg config, or a schedule counted in epochs.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else \
        copy.deepcopy(config)
    if cfg.get('default_scope') != 'mmseg':
        raise ValueError(f'{getattr(cfg, "filename", config)}: the transfer '
                         'check fine-tunes a segmentation (mmseg) config, '
                         f'not a {cfg.get("default_scope")!r} one')
    backbone = cfg.model.backbone
    if weights is None:
        backbone.pop('init_cfg', None)
    else:
        prefix = (backbone.get('init_cfg') or {}).get('prefix', 'backbone.')
        backbone.init_cfg = dict(type='Pretrained', checkpoint=weights,
                                 prefix=prefix)
    losses: List[float] = []
    with DefaultScope.overwrite_default_scope('mmseg'):
        set_random_seed(seed)
        model = MODELS.build(cfg.model)
        model.init_weights()
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        schedulers = []
        for sched in cfg.get('param_scheduler') or []:
            if sched.get('by_epoch', True):
                raise ValueError(f'{sched["type"]} counts epochs; the '
                                 'transfer check runs iterations')
            schedulers.append(PARAM_SCHEDULERS.build(
                dict(sched, optimizer=wrapper)))
        train = _data_loader(cfg.train_dataloader, data_root, seed)
        model.train()
        batches = iter(train)
        for _ in range(iters):
            try:
                batch = next(batches)
            except StopIteration:
                batches = iter(train)
                batch = next(batches)
            loss, log = model.parse_losses(
                model(**model.data_preprocessor(batch, True), mode='loss'))
            wrapper.update_params(loss)
            for sched in schedulers:
                sched.step()
            losses.append(log['loss'].item())
        model.eval()
        val = []
        with torch.no_grad():
            for batch in _data_loader(cfg.val_dataloader, data_root, seed):
                _, log = model.parse_losses(model(
                    **model.data_preprocessor(batch, True), mode='loss'))
                val.append(log['loss'].item())
    half = losses[len(losses) // 2:]
    return dict(train=sum(half) / len(half), val=sum(val) / len(val))


def check_transfer(config: Union[str, Config], weights: str, data_root: str,
                   iters: int = 40, seed: int = 0,
                   work_dir: Optional[str] = None) -> Dict[str, dict]:
    """:func:`fine_tune_losses` from the weights, from the weights with their
    blocks reversed, and from a random initialisation.

    Args:
        config: an mmseg config (see :func:`fine_tune_losses`).
        weights: the backbone weights file.
        data_root: the ADE20K-layout data root.
        iters: training iterations of each run.
        seed: the random seed of every run.
        work_dir: where the reversed weights are written (default: a
            temporary folder, removed after).

    Returns:
        dict: per initialisation (``INITS``), its losses and ``seconds``.
    """
    state, _ = read_state_dict(weights)
    results = {}
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        reversed_file = osp.join(tmp, 'blocks_reversed.pth')
        torch.save({'state_dict': reverse_blocks(state)}, reversed_file)
        for name, file in zip(INITS, (weights, reversed_file, None)):
            t0 = time.time()
            results[name] = fine_tune_losses(config, file, data_root, iters,
                                             seed)
            results[name]['seconds'] = time.time() - t0
    return results


def carries(results: Dict[str, dict]) -> bool:
    """Whether the weights as given reached the lowest training and
    validation losses of :func:`check_transfer`'s runs."""
    mine = results[INITS[0]]
    return all(mine[k] < other[k] for other in list(results.values())[1:]
               for k in ('train', 'val'))


def build_check_parser() -> argparse.ArgumentParser:
    """Command-line parser of ``tools/analysis/check_transfer.py``."""
    parser = argparse.ArgumentParser(
        description='Fine-tune a segmentation config from backbone weights, '
        'from the same weights with their blocks reversed and from a random '
        'initialisation; the weights carry what pretraining learned when '
        'they reach the lowest losses.')
    parser.add_argument('config', help='an mmseg config (e.g. a tiny '
                        'UperNet of mmseg_configs/upernet/)')
    parser.add_argument('weights', help='backbone weights (tools/'
                        'model_converters/extract_weights.py output)')
    parser.add_argument('--data-root', default=None,
                        help='ADE20K-layout data root, the folder of images/ '
                        'and annotations/ (default: the built-in texture '
                        'data, written to WORK_DIR/texture_data/'
                        'ADEChallengeData2016)')
    parser.add_argument('--work-dir', default='work_dirs/check_transfer',
                        help='where the built-in data is written')
    parser.add_argument('--iters', type=int, default=40,
                        help='fine-tuning iterations of each run (default 40)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    return parser


def check_transfer_main(argv: Optional[List[str]] = None) -> int:
    """Run ``tools/analysis/check_transfer.py``: print the three runs'
    losses and a verdict.

    Returns:
        int: 0 when the weights reached the lowest losses, else 1.
    """
    args = build_check_parser().parse_args(argv)
    if args.iters < 2:
        raise SystemExit(f'--iters must be at least 2, got {args.iters}')
    root = args.data_root
    if root is None:
        out = osp.join(args.work_dir, 'texture_data')
        root = osp.join(out, 'ADEChallengeData2016')
        if not osp.isdir(root):
            generate_texture_ade20k(out)
            print(f'wrote the built-in texture data to {root}')
    os.makedirs(args.work_dir, exist_ok=True)
    results = check_transfer(args.config, args.weights, root, args.iters,
                             args.seed, args.work_dir)
    print(f'\n{args.iters} fine-tuning iterations of {args.config}, seed '
          f'{args.seed}, data {root}:\n')
    print('| initialisation | training loss (2nd half) | validation loss | '
          'time |\n| --- | --- | --- | --- |')
    for name, r in results.items():
        print(f'| {name} | {r["train"]:.4f} | {r["val"]:.4f} | '
              f'{r["seconds"]:.0f} s |')
    ok = carries(results)
    print('\n' + (f'{args.weights} carries what pretraining learned: it '
                  'fine-tunes to lower losses than the same weights with '
                  'their blocks reversed and than a random initialisation.'
                  if ok else
                  f'{args.weights} does NOT fine-tune to the lowest losses: '
                  'what it carries is no better than shuffled blocks or a '
                  'random initialisation on this data (a mis-load, or '
                  'too little pretraining).'))
    return 0 if ok else 1
