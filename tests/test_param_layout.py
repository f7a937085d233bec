"""The parameter layout is frozen: checkpoints of today load tomorrow.

``tests/fixtures/param_layout.json`` holds every state-dict key and shape of
the tiny pretraining models and transfer backbones as they were built when it
was written (``tests/fixtures/make_param_layout.py``). The models of the day
must have exactly these keys and shapes, and a checkpoint made from the
fixture alone (random tensors of those names and shapes) must load into the
pretraining models strictly and, through the extract tool and the configs'
``Pretrained`` init, into the transfer backbones, filling every key but those
the fixture lists as added by transfer.
"""
import json

import pytest
import torch
from fixtures import make_param_layout as layout_tool
from mmengine.runner import load_checkpoint

import mim_pretrain  # noqa: F401

with open(layout_tool.FIXTURE) as f:
    FIXTURE = json.load(f)


@pytest.fixture(scope='module')
def pretrain_checkpoints(tmp_path_factory):
    """A checkpoint of random tensors per pretraining model, made from the
    fixture alone: name -> (path, state dict)."""
    root = tmp_path_factory.mktemp('layout')
    out = {}
    for name, entry in FIXTURE['pretrain'].items():
        path = str(root / f'{name}.pth')
        out[name] = path, layout_tool.random_checkpoint(entry['state_dict'],
                                                        path)
    return out


def test_fixture_covers_every_tiny_config():
    assert set(FIXTURE['pretrain']) == set(layout_tool.PRETRAIN)
    assert set(FIXTURE['transfer']) == set(layout_tool.TRANSFER)
    for name, (config, pre) in layout_tool.TRANSFER.items():
        assert FIXTURE['transfer'][name]['config'] == config
        assert FIXTURE['transfer'][name]['pretrain'] == pre


@pytest.mark.parametrize('name', sorted(layout_tool.PRETRAIN))
def test_pretraining_model_keeps_its_layout_and_loads_it(
        name, pretrain_checkpoints):
    model = layout_tool.build_pretrain(name)
    assert layout_tool.layout(model) == FIXTURE['pretrain'][name][
        'state_dict']
    path, state = pretrain_checkpoints[name]
    load_checkpoint(model, path, map_location='cpu', strict=True)
    own = model.state_dict()
    for key, value in state.items():
        assert torch.equal(own[key], value), key


@pytest.mark.parametrize('name', sorted(layout_tool.TRANSFER))
def test_transfer_backbone_keeps_its_layout_and_loads_pretraining(
        name, pretrain_checkpoints, tmp_path):
    entry = FIXTURE['transfer'][name]
    backbone = layout_tool.build_backbone(name)
    assert layout_tool.layout(backbone) == entry['state_dict']
    if entry['pretrain'] is None:
        return
    path, _ = pretrain_checkpoints[entry['pretrain']]
    assert layout_tool.not_loaded(name, path, str(tmp_path)) == entry[
        'not_loaded']
