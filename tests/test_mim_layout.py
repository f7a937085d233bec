"""A regular install ships ``mim_pretrain/.mim`` (tools, configs,
model-index.yml) where OpenMMLab's ``mim train PACKAGE CONFIG`` looks, and
the tool found there trains a config found there by its file name."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest

CONFIG = 'lomar_vit-tiny-p8_1xb32-20e_synthetic.py'


def _mim_lookup(location: str, package: str, config: str):
    """What ``mim train`` (openmim 0.3.9, ``mim/commands/train.py``) runs:
    the package folder under the distribution's location, the config found
    by its base name anywhere below it, ``.mim/tools/train.py`` else
    ``tools/train.py``."""
    pkg_root = osp.join(location, package)
    found = [osp.join(d, f)
             for d, _, files in os.walk(pkg_root, followlinks=True)
             for f in files if f == osp.basename(config)]
    script = osp.join(pkg_root, '.mim', 'tools', 'train.py')
    if not osp.exists(script):
        script = osp.join(pkg_root, 'tools', 'train.py')
    return found, script


@pytest.fixture(scope='module')
def built(tmp_path_factory, repo_root):
    lib = str(tmp_path_factory.mktemp('lib'))
    res = subprocess.run(
        [sys.executable, 'setup.py', '-q', 'build_py', '--build-lib', lib],
        cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return lib


def test_build_ships_tools_and_every_config(built, repo_root):
    mim = osp.join(built, 'mim_pretrain', '.mim')
    for folder in ('mmpretrain_configs', 'mmdet_configs', 'mmseg_configs',
                   'tools'):
        here = sorted(
            osp.relpath(p, repo_root)
            for p in glob.glob(osp.join(repo_root, folder, '**', '*.py'),
                               recursive=True))
        shipped = sorted(
            osp.relpath(p, mim)
            for p in glob.glob(osp.join(mim, folder, '**', '*.py'),
                               recursive=True))
        assert here and shipped == here, folder
    if osp.isfile(osp.join(repo_root, 'model-index.yml')):
        assert osp.isfile(osp.join(mim, 'model-index.yml'))
    assert not glob.glob(osp.join(mim, '**', '__pycache__'), recursive=True)


def test_config_names_are_unique_so_mim_finds_each(repo_root):
    # mim finds a config by its base name: two with one name would be refused
    names = [osp.basename(p) for d in ('mmpretrain_configs', 'mmdet_configs',
                                       'mmseg_configs')
             for p in glob.glob(osp.join(repo_root, d, '**', '*.py'),
                                recursive=True) if '_base_' not in p]
    assert len(names) == len(set(names)), sorted(
        n for n in set(names) if names.count(n) > 1)


@pytest.mark.slow
def test_mim_style_train_runs_from_the_installed_layout(
        built, synthetic_data, tmp_path):
    found, script = _mim_lookup(built, 'mim_pretrain', CONFIG)
    assert len(found) == 1 and script.endswith('.mim/tools/train.py')
    root, _ = synthetic_data
    work = str(tmp_path / 'work')
    # run where the repository is not: the package comes from the build
    env = {**os.environ, 'PYTHONPATH': built}
    res = subprocess.run(
        [sys.executable, script, found[0], '--launcher', 'none',
         '--work-dir', work, '--cfg-options',
         f'train_dataloader.dataset.data_root={root}/imagenet',
         'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False', 'train_cfg.max_epochs=1',
         'default_hooks.logger.interval=1'],
        cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    res = subprocess.run(
        [sys.executable, '-c', 'import mim_pretrain; print(mim_pretrain.'
         '__file__)'], cwd=str(tmp_path), env=env, capture_output=True,
        text=True)
    assert res.stdout.strip().startswith(built), res.stdout
