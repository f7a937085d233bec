"""Shared fixtures: the built-in data, generated once per test session."""
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO


@pytest.fixture(scope='session')
def synthetic_data(tmp_path_factory):
    """(root, summary) of the built-in datasets, small scale."""
    from mim_pretrain.datasets import generate_all
    root = str(tmp_path_factory.mktemp('data'))
    summary = generate_all(root, seed=0, scale=0.25)
    return root, summary


@pytest.fixture
def python_exe() -> str:
    return sys.executable


NO_WORKERS = ('num_workers=0', 'persistent_workers=False')


def det_data_options(root: str) -> list:
    """--cfg-options pointing every COCO loader and evaluator at ``root``."""
    coco = f'{root}/coco/'
    ann = f'{coco}annotations/instances_val2017.json'
    opts = [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']
    for split in ('train', 'val', 'test'):
        opts.append(f'{split}_dataloader.dataset.data_root={coco}')
        opts += [f'{split}_dataloader.{o}' for o in NO_WORKERS]
    return opts


def seg_data_options(root: str) -> list:
    """--cfg-options pointing every ADE20K loader at ``root``."""
    ade = f'{root}/ade/ADEChallengeData2016'
    opts = []
    for split in ('train', 'val', 'test'):
        opts.append(f'{split}_dataloader.dataset.data_root={ade}')
        opts += [f'{split}_dataloader.{o}' for o in NO_WORKERS]
    return opts
