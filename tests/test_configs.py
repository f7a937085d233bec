"""Every config of the repository loads, names its scope, and builds."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    p for d in ('mmpretrain_configs', 'mmdet_configs', 'mmseg_configs')
    for p in glob.glob(osp.join(REPO, d, '**', '*.py'), recursive=True)
    if '_base_' not in p.split(osp.sep))


def test_there_are_configs():
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_loads_and_builds(path):
    import importlib
    cfg = Config.fromfile(path)
    scope = cfg.default_scope
    top = osp.relpath(path, REPO).split(osp.sep)[0]
    assert scope == {'mmpretrain_configs': 'mmpretrain',
                     'mmdet_configs': 'mmdet',
                     'mmseg_configs': 'mmseg'}[top]
    assert cfg.custom_imports == dict(imports=['mim_pretrain'],
                                      allow_failed_imports=False)
    models = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = models.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
