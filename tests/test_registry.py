"""An unknown constructor argument is blamed on the module it was written
for, and engine parts are registered like every other module."""
import os.path as osp

import pytest
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import DefaultScope

TINY_LOMAR = ('mmpretrain_configs/lomar/'
              'lomar_vit-tiny-p8_1xb32-20e_synthetic.py')


def _build_lomar(repo_root, **head_changes):
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(osp.join(repo_root, TINY_LOMAR))
    cfg.merge_from_dict(
        {f'model.head.{k}': v for k, v in head_changes.items()})
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg.model)


def test_typo_in_a_nested_config_names_the_nested_class(repo_root):
    """``LoMaRHead`` builds its loss from ``loss=dict(...)``: a typo there
    is the loss's, not the head's."""
    with pytest.raises(TypeError) as err:
        _build_lomar(repo_root, **{'loss.typo_arg': 1})
    msg = str(err.value)
    assert ("PixelReconstructionLoss.__init__() got an unexpected keyword "
            "argument 'typo_arg'") in msg
    assert 'LoMaRHead got an unknown argument' not in msg
    assert 'LoMaR got an unknown argument' not in msg


def test_typo_at_the_top_names_the_class_with_a_hint(repo_root):
    with pytest.raises(TypeError, match=r"LoMaRHead got an unknown argument "
                       r"'embed_dimz'; did you mean 'embed_dims'\? Its "
                       r'arguments are: .*norm_pix'):
        _build_lomar(repo_root, embed_dimz=192)


def test_argument_refused_further_down_is_not_renamed():
    """An argument the class takes and passes on, refused by what it
    builds, keeps the inner error."""
    from mim_pretrain.registry import name_unknown_arguments

    class Inner:

        def __init__(self, width=1):
            self.width = width

    @name_unknown_arguments
    class Outer(nn.Module):

        def __init__(self, inner_args=None, depth=1):
            super().__init__()
            self.inner = Inner(**(inner_args or {}))

    with pytest.raises(TypeError, match=r"Inner.__init__\(\) got an "
                       "unexpected keyword argument 'widht'"):
        Outer(inner_args=dict(widht=2))
    with pytest.raises(TypeError, match="Outer got an unknown argument "
                       "'dpeth'; did you mean 'depth'"):
        Outer(dpeth=2)


def test_engine_parts_are_registered_and_name_unknown_arguments():
    from mmengine.registry import HOOKS, LOOPS

    from mim_pretrain.registry import registered_modules
    engine = {(registry, name) for scope, registry, name
              in registered_modules() if scope == 'mmengine'}
    assert {('optim_wrapper', 'MixedPrecisionOptimWrapper'),
            ('optimizer wrapper constructor',
             'LayerDecayOptimWrapperConstructor'),
            ('hook', 'FiniteLossHook'),
            ('loop', 'ResumableEpochBasedTrainLoop'),
            ('loop', 'ResumableIterBasedTrainLoop')} <= engine
    assert LOOPS.get('ResumableIterBasedTrainLoop') is not None
    with pytest.raises(TypeError, match="FiniteLossHook got an unknown "
                       "argument 'actoin'; did you mean 'action'"):
        HOOKS.build(dict(type='FiniteLossHook', actoin='skip'))
