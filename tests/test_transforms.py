"""The loading transforms that check their input: each catches what it
should, passes a good file through exactly as upstream's transform does,
and a pipeline that names upstream's transforms gets upstream's behaviour."""
import importlib
import os.path as osp

import cv2
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmseg.datasets.transforms import LoadAnnotations
from PIL import Image
from test_configs import CONFIGS, REPO

from mim_pretrain.datasets.transforms import (CheckedLoadAnnotations,
                                              CheckedLoadImageFromFile)


@pytest.fixture
def images(tmp_path):
    """A JPEG and a PNG of a small scene, complete."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    img[32:64] = (200, 30, 90)
    paths = {}
    for ext in ('jpg', 'png'):
        paths[ext] = str(tmp_path / f'scene.{ext}')
        assert cv2.imwrite(paths[ext], img)
    return paths


def _cut(path, end, name):
    """(a copy of ``path`` cut at byte ``end``, the original bytes);
    ``end=None``: cut at two thirds."""
    with open(path, 'rb') as f:
        data = f.read()
    out = osp.join(osp.dirname(path), name)
    with open(out, 'wb') as f:
        f.write(data[:len(data) * 2 // 3 if end is None else end])
    return out, data


def _sample(path):
    return dict(img_path=path, img_prefix=None)


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(to_float32=True),
    dict(color_type='grayscale'),
    dict(imdecode_backend='pillow'),
    dict(color_type='unchanged'),
])
def test_good_images_load_as_upstream(images, kwargs):
    for path in images.values():
        ours = CheckedLoadImageFromFile(**kwargs)(_sample(path))
        theirs = LoadImageFromFile(**kwargs)(_sample(path))
        assert ours.keys() == theirs.keys()
        np.testing.assert_array_equal(ours['img'], theirs['img'])
        assert ours['img'].dtype == theirs['img'].dtype
        assert ours['img_shape'] == theirs['img_shape']
        assert ours['ori_shape'] == theirs['ori_shape']


def test_truncated_jpeg_is_an_error_naming_the_file(images):
    path, data = _cut(images['jpg'], None, 'cut.jpg')
    assert data.endswith(b'\xff\xd9')
    with pytest.raises(ValueError, match=r'failed to load image .*cut\.jpg: '
                       r'truncated JPEG \(no end-of-image marker'):
        CheckedLoadImageFromFile()(_sample(path))


def test_png_without_iend_is_an_error_naming_the_file(images):
    path, data = _cut(images['png'], -12, 'cut.png')  # IEND is 12 bytes
    assert data[-8:-4] == b'IEND'
    with pytest.raises(ValueError, match=r'failed to load image .*cut\.png: '
                       r'truncated PNG \(no IEND chunk\)'):
        CheckedLoadImageFromFile()(_sample(path))


def test_a_pipeline_that_does_not_opt_in_behaves_as_upstream(images):
    """Nothing is patched globally: upstream's transform keeps its own
    behaviour on broken files (here: OpenCV 4.12 gives no image for a
    truncated JPEG, which upstream asserts on even with ignore_empty=True;
    Pillow decodes a PNG that lacks only its IEND chunk)."""
    import mmcv
    from mmseg.datasets import BaseSegDataset
    assert mmcv.imfrombytes.__module__ == 'mmcv.image.io'
    assert LoadImageFromFile.transform.__module__ == 'mmcv.transforms.loading'
    assert LoadAnnotations.transform.__module__ == 'mmcv.transforms.loading'
    assert (BaseSegDataset.prepare_data.__module__ ==
            'mmengine.dataset.base_dataset')
    jpg, _ = _cut(images['jpg'], None, 'cut.jpg')
    for ignore_empty in (False, True):
        with pytest.raises(AssertionError, match='failed to load image: '):
            LoadImageFromFile(ignore_empty=ignore_empty)(_sample(jpg))
    assert CheckedLoadImageFromFile(ignore_empty=True)(_sample(jpg)) is None
    png, _ = _cut(images['png'], -12, 'cut.png')
    out = LoadImageFromFile(imdecode_backend='pillow')(_sample(png))
    assert out['img'].shape == (96, 128, 3)
    with pytest.raises(ValueError, match='truncated PNG'):
        CheckedLoadImageFromFile(imdecode_backend='pillow')(_sample(png))


@pytest.fixture
def label_map(tmp_path):
    """A label file with ADE-style values 0 (ignored) and 1-3."""
    label = np.zeros((16, 16), np.uint8)
    label[:8] = 1
    label[8:, :8] = 3
    path = str(tmp_path / 'label.png')
    Image.fromarray(label).save(path)
    return path, label


def _seg_sample(path):
    return dict(seg_map_path=path, reduce_zero_label=True, seg_fields=[])


def test_good_labels_load_as_upstream(label_map):
    path, _ = label_map
    ours = CheckedLoadAnnotations(num_classes=3)(_seg_sample(path))
    theirs = LoadAnnotations()(_seg_sample(path))
    assert ours.keys() == theirs.keys()
    np.testing.assert_array_equal(ours['gt_seg_map'], theirs['gt_seg_map'])
    assert ours['seg_fields'] == theirs['seg_fields'] == ['gt_seg_map']
    # 0 -> 255 (ignore), ADE class k -> k - 1
    assert set(np.unique(ours['gt_seg_map']).tolist()) == {0, 2, 255}


def test_label_beyond_the_classes_is_an_error(label_map):
    path, _ = label_map
    # after reduce_zero_label the labels are 0 and 2: two classes are too few
    with pytest.raises(ValueError) as err:
        CheckedLoadAnnotations(num_classes=2)(_seg_sample(path))
    msg = str(err.value)
    assert f'label map {path} has values [2]' in msg
    assert '2 classes: 0-1, 255 = ignore' in msg
    # upstream loads it without a word
    LoadAnnotations()(_seg_sample(path))


def test_unreadable_label_map_names_the_file(tmp_path):
    path = str(tmp_path / 'missing.png')
    with pytest.raises(FileNotFoundError,
                       match=r'failed to load label map .*missing\.png'):
        CheckedLoadAnnotations(num_classes=3)(_seg_sample(path))


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmdet', 'mmseg'])
def test_registered_under_one_name_in_every_scope(scope, label_map):
    transforms = importlib.import_module(f'{scope}.registry').TRANSFORMS
    with DefaultScope.overwrite_default_scope(scope):
        loader = transforms.build(dict(type='CheckedLoadImageFromFile'))
        assert type(loader) is CheckedLoadImageFromFile
        if scope == 'mmseg':
            labels = transforms.build(
                dict(type='CheckedLoadAnnotations', num_classes=3))
            assert type(labels) is CheckedLoadAnnotations
        else:  # segmentation labels only where segmentation runs
            with pytest.raises(KeyError):
                transforms.build(
                    dict(type='CheckedLoadAnnotations', num_classes=3))


def _pipelines(cfg):
    """(name, pipeline) of every pipeline a config runs."""
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        dataset = loader.dataset if loader else None
        while dataset is not None and 'pipeline' not in dataset:
            dataset = dataset.get('dataset')  # through wrappers
        if dataset is not None:
            yield f'{split}_dataloader', dataset.pipeline
    if cfg.get('tta_pipeline'):
        yield 'tta_pipeline', cfg.tta_pipeline


def _steps(pipeline):
    """Every transform config, also those nested in TestTimeAug."""
    for step in pipeline:
        yield step
        for branch in step.get('transforms', []):
            yield from _steps(branch if isinstance(branch, list) else
                              [branch])


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_every_config_loads_through_the_checked_transforms(path):
    """Each pipeline of the repository's configs builds, and loads images
    (and segmentation labels, with the dataset's class count) through the
    checked transforms."""
    from mmcv.transforms import Compose
    cfg = Config.fromfile(path)
    scope = cfg.default_scope
    seen = 0
    for name, pipeline in _pipelines(cfg):
        types = [step.type for step in _steps(pipeline)]
        assert 'LoadImageFromFile' not in types, name
        assert 'LoadAnnotations' not in types or scope != 'mmseg', name
        assert 'CheckedLoadImageFromFile' in types, name
        for step in _steps(pipeline):
            if step.type == 'CheckedLoadAnnotations':
                assert step.num_classes == cfg.model.decode_head.num_classes
        with DefaultScope.overwrite_default_scope(scope):
            Compose(pipeline)
        seen += 1
    assert seen
