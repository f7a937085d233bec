"""Shared fixtures: the built-in data, generated once per test session."""
import os
import os.path as osp
import sys

import pytest

# Under pytest-xdist (`make test` runs one worker per core), each worker and
# the tools it starts get one intra-op thread: two workers that each take
# every core oversubscribe them.
if os.environ.get('PYTEST_XDIST_WORKER'):
    for _var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ.setdefault(_var, '1')
    import torch
    torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO


@pytest.fixture(scope='session')
def synthetic_data(tmp_path_factory):
    """(root, summary) of the built-in datasets in the ``'colour'`` style
    (learnable in a few dozen steps), small scale."""
    from mim_pretrain.datasets import generate_all
    root = str(tmp_path_factory.mktemp('data'))
    summary = generate_all(root, seed=0, scale=0.25, style='colour')
    return root, summary


@pytest.fixture
def python_exe() -> str:
    return sys.executable


NO_WORKERS = ('num_workers=0', 'persistent_workers=False')


def _no_workers() -> list:
    return [f'{split}_dataloader.{o}' for split in ('train', 'val', 'test')
            for o in NO_WORKERS]


def det_data_options(root: str) -> list:
    """--cfg-options pointing every COCO loader and evaluator at ``root``,
    loading in the main process."""
    from mim_pretrain.apis import data_options
    return data_options('det', root) + _no_workers()


def seg_data_options(root: str) -> list:
    """--cfg-options pointing every ADE20K loader at ``root``, loading in
    the main process."""
    from mim_pretrain.apis import data_options
    return data_options('seg', root) + _no_workers()


def build_model(path: str, **options):
    """The ``model`` of the config at ``path`` (relative to the repository)
    with ``options`` merged, built in the config's scope: (model, config).
    """
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(osp.join(REPO, path))
    cfg.merge_from_dict(options)
    scope = cfg.default_scope
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        return registry.build(cfg.model), cfg


@pytest.fixture(autouse=True)
def _restore_default_scope():
    """Upstream inferencers and runners set a process-wide default scope
    (``init_default_scope``); a test must not leave one behind, or the next
    test's ``mmpretrain`` registry lookups go to another package's tree
    (which test runs next in a worker changes with pytest-xdist)."""
    from mmengine.registry import DefaultScope
    before = set(DefaultScope._instance_dict)
    yield
    for name in [n for n in DefaultScope._instance_dict if n not in before]:
        DefaultScope._instance_dict.pop(name)
