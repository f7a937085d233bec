"""The package imports, registers its modules, and runs on the pinned stack."""
import importlib.metadata as metadata
import os.path as osp
import re

import pytest


def _lock_pins(repo_root):
    pins = {}
    with open(osp.join(repo_root, 'requirements', 'lock.txt')) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                name, version = line.split('==')
                pins[name.strip()] = version.strip()
    return pins


def test_lock_file_pins_the_stack(repo_root):
    pins = _lock_pins(repo_root)
    for name in ('torch', 'torchvision', 'mmcv', 'mmengine', 'mmdet',
                 'mmsegmentation', 'mmpretrain', 'timm', 'pycocotools',
                 'setuptools'):
        assert name in pins, f'{name} is not pinned in requirements/lock.txt'
    major, minor = (int(v) for v in pins['torch'].split('.')[:2])
    assert (major, minor) <= (2, 13), 'mmcv 2.1.0 does not compile on >=2.14'
    assert int(pins['setuptools'].split('.')[0]) < 82
    assert pins['mmcv'] == '2.1.0'


def test_installed_versions_are_the_pinned_ones(repo_root):
    for name, version in _lock_pins(repo_root).items():
        installed = metadata.version(name)
        # local version labels (+cu130) are the build, not the version
        assert installed.split('+')[0] == version, (
            f'{name}: installed {installed}, lock file pins {version}')


def test_torch_is_the_standard_build_and_ops_load():
    import torch
    import torchvision
    from mmcv.ops import RoIAlign, nms
    assert '+cpu' not in torch.__version__
    assert '+cpu' not in torchvision.__version__
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                          [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    feat = torch.arange(16.).view(1, 1, 4, 4)
    rois = torch.tensor([[0., 0., 0., 4., 4.]])
    roi_align = RoIAlign((1, 1), spatial_scale=1.0, sampling_ratio=1,
                         aligned=True)
    # one bin over the whole map, sampled at its centre: with aligned=True
    # that is pixel coordinate 1.5, between values 5, 6, 9 and 10 -> 7.5
    assert roi_align(feat, rois).item() == pytest.approx(7.5)
    roi_align.aligned = False  # legacy: samples at 2.0, on value 10
    assert roi_align(feat, rois).item() == pytest.approx(10.0)


def test_package_imports_and_applies_compat():
    from mmengine.runner.checkpoint import CheckpointLoader

    import mim_pretrain
    from mim_pretrain import compat
    assert re.fullmatch(r'\d+\.\d+\.\d+', mim_pretrain.__version__)
    assert CheckpointLoader._get_checkpoint_loader(
        '/some/file.pth') is compat.load_local_checkpoint


def test_registered_modules_are_found_from_their_scope():
    import importlib

    from mmengine.registry import DefaultScope, Registry

    from mim_pretrain.registry import registered_modules
    entries = registered_modules()
    names = {name for _, _, name in entries}
    assert {'LoMaR', 'LoMaRViT', 'LoMaRHead', 'LocalMIM', 'LocalMIMViT',
            'LocalMIMDecoders', 'LocalMIMHead', 'HOGTarget',
            'PixelTarget', 'MIMVisionTransformer',
            'ViTFeaturePyramid'} <= names
    for scope, registry_name, name in entries:
        module = importlib.import_module(f'{scope}.registry')
        registry = next(
            v for v in vars(module).values() if isinstance(v, Registry)
            and v.name == registry_name and v.scope == scope)
        with DefaultScope.overwrite_default_scope(scope):
            assert registry.get(name) is not None, (scope, name)


def test_register_in_reaches_every_scope():
    import torch.nn as nn
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as PRE
    from mmseg.registry import MODELS as SEG

    import mim_pretrain  # noqa: F401
    from mim_pretrain.registry import register_transfer_model

    @register_transfer_model(name='_TestOnlyTransferModule')
    class _Module(nn.Module):

        def __init__(self, width=2):
            super().__init__()
            self.fc = nn.Linear(width, width)

    for registry in (DET, SEG, PRE):
        built = registry.build(dict(type='_TestOnlyTransferModule', width=3))
        assert isinstance(built, _Module) and built.fc.in_features == 3
    for registry in (DET, SEG, PRE):
        registry._module_dict.pop('_TestOnlyTransferModule')
