"""Every config of the repository loads, names its scope, and builds."""
import glob
import logging
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
    # tools/analysis/get_flops.py knows what to count and at which size
    from mim_pretrain.benchmarks import flops
    (h, w), source = flops.default_shape(cfg, flops.model_kind(model))
    assert h > 0 and w > 0 and source


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_names_its_loop_and_finite_loss_hook(path):
    """The behaviour tools/train.py used to add is in every config."""
    from mim_pretrain.apis.run import report_missing_reliability
    cfg = Config.fromfile(path)
    assert cfg.train_cfg.type in ('ResumableEpochBasedTrainLoop',
                                  'ResumableIterBasedTrainLoop')
    assert [h['type'] for h in cfg.custom_hooks].count('FiniteLossHook') == 1
    assert report_missing_reliability(cfg) == []


def test_foreign_config_runs_as_upstream_and_says_what_it_lacks(tmp_path):
    from mmengine.logging import MMLogger

    from mim_pretrain.apis.run import report_missing_reliability
    path = tmp_path / 'foreign.py'
    path.write_text("default_scope = 'mmpretrain'\n"
                    "train_cfg = dict(type='EpochBasedTrainLoop', "
                    "max_epochs=1)\ncustom_hooks = []\n")
    cfg = Config.fromfile(str(path))
    before = cfg.to_dict()
    # print_log(logger='current') writes to the newest MMLogger
    logger = MMLogger.get_instance('foreign_config_test')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        missing = report_missing_reliability(cfg)
    finally:
        logger.removeHandler(handler)
    assert cfg.to_dict() == before  # nothing rewritten
    assert len(missing) == 2
    assert 'EpochBasedTrainLoop' in missing[0]
    assert 'FiniteLossHook' in missing[1]
    lines = [r.getMessage() for r in records]
    assert len(lines) == 1 and 'runs as upstream would' in lines[0], lines


def test_resumable_loops_keep_mmengines_run():
    """Exact resume goes through the data iterator, not a copied run()."""
    from mmengine.runner.loops import EpochBasedTrainLoop, IterBasedTrainLoop

    from mim_pretrain.engine.loops import (ResumableEpochBasedTrainLoop,
                                           ResumableIterBasedTrainLoop)
    assert ResumableIterBasedTrainLoop.run is IterBasedTrainLoop.run
    assert ResumableEpochBasedTrainLoop.run is EpochBasedTrainLoop.run
    assert (ResumableEpochBasedTrainLoop.run_epoch
            is EpochBasedTrainLoop.run_epoch)
