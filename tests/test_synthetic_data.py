"""The generators write data that the real dataset classes read as written."""
import json
import os.path as osp
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from mim_pretrain.datasets import (ADE_CLASS_NAMES, OBJECT_CLASSES,
                                   ade20k_label_ids, generate_all,
                                   generate_coco, generate_imagenet,
                                   make_scene)


def test_scene_masks_are_visible_parts(synthetic_data):
    rng = np.random.default_rng(3)
    img, singles, crowds = make_scene(rng, 96, 128, crowd_prob=1.0)
    assert img.shape == (96, 128, 3) and img.dtype == np.uint8
    assert singles and crowds
    total = np.zeros((96, 128), int)
    for inst in singles + crowds:
        assert inst.mask.sum() >= 16
        total += inst.mask
    # occlusion is resolved: no pixel belongs to two annotations
    assert total.max() == 1


def test_generation_is_deterministic(tmp_path):
    a = generate_coco(str(tmp_path / 'a'), num_train=3, num_val=1, seed=5)
    b = generate_coco(str(tmp_path / 'b'), num_train=3, num_val=1, seed=5)
    c = generate_coco(str(tmp_path / 'c'), num_train=3, num_val=1, seed=6)
    assert a == b and a != c
    for name in ('train2017/000000000001.jpg',
                 'annotations/instances_train2017.json'):
        assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'b' /
                                                        name).read_bytes()


def test_coco_with_pycocotools(synthetic_data):
    from pycocotools.coco import COCO
    root, summary = synthetic_data
    for split in ('train', 'val'):
        coco = COCO(osp.join(root, 'coco', 'annotations',
                             f'instances_{split}2017.json'))
        want = summary['coco'][split]
        assert len(coco.getImgIds()) == want['num_images']
        names = {c['id']: c['name'] for c in coco.loadCats(coco.getCatIds())}
        assert sorted(names.values()) == sorted(c[0] for c in OBJECT_CLASSES)
        counts, crowds, areas = Counter(), Counter(), Counter()
        for ann in coco.loadAnns(coco.getAnnIds()):
            name = names[ann['category_id']]
            (crowds if ann['iscrowd'] else counts)[name] += 1
            # the stored area is the area of the stored segmentation
            mask = coco.annToMask(ann)
            assert mask.sum() == ann['area']
            areas[name] += int(mask.sum())
            # the box encloses the mask
            ys, xs = np.nonzero(mask)
            x, y, w, h = ann['bbox']
            assert x <= xs.min() and xs.max() < x + w + 1
            assert y <= ys.min() and ys.max() < y + h + 1
        assert dict(counts) == {k: v for k, v in want['instances'].items()
                                if v}
        assert dict(crowds) == {k: v for k, v in want['crowds'].items() if v}
        assert dict(areas) == {k: v for k, v in want['areas'].items() if v}
    # several scales: small (< 32^2) and larger objects both present
    all_areas = [a['area'] for a in coco.loadAnns(coco.getAnnIds())]
    assert min(all_areas) < 32 * 32 < max(all_areas)


def test_coco_with_mmdet_dataset(synthetic_data):
    from mmdet.datasets import CocoDataset
    root, summary = synthetic_data
    classes = tuple(c[0] for c in OBJECT_CLASSES)
    ds = CocoDataset(
        data_root=osp.join(root, 'coco'),
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        metainfo=dict(classes=classes),
        test_mode=True,
        pipeline=[])
    want = summary['coco']['val']
    assert len(ds) == want['num_images']
    labels = Counter()
    ignored = 0
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        assert osp.isfile(info['img_path'])
        for inst in info['instances']:
            if inst['ignore_flag']:
                ignored += 1
            else:
                labels[classes[inst['bbox_label']]] += 1
    assert dict(labels) == {k: v for k, v in want['instances'].items() if v}
    assert ignored == sum(want['crowds'].values())


def test_ade20k_with_mmseg_dataset(synthetic_data):
    from mmengine.registry import DefaultScope
    from mmseg.datasets import ADE20KDataset
    root, summary = synthetic_data
    ids = ade20k_label_ids()
    assert summary['ade20k']['label_ids'] == ids
    for split in ('training', 'validation'):
        with DefaultScope.overwrite_default_scope('mmseg'):
            ds = ADE20KDataset(
                data_root=osp.join(root, 'ade', 'ADEChallengeData2016'),
                data_prefix=dict(img_path=f'images/{split}',
                                 seg_map_path=f'annotations/{split}'),
                metainfo=dict(classes=ADE_CLASS_NAMES),
                pipeline=[
                    dict(type='LoadAnnotations', reduce_zero_label=True)
                ])
        want = summary['ade20k'][split]
        assert len(ds) == want['num_images']
        for i in range(len(ds)):
            item = ds[i]
            stem = osp.splitext(osp.basename(item['seg_map_path']))[0]
            raw = np.asarray(Image.open(item['seg_map_path']))
            assert sorted(np.unique(raw).tolist()) == want['labels'][stem]
            # through the real loader: 0 -> ignore (255), ADE id -> index of
            # the class in the overridden class list
            got = set(np.unique(item['gt_seg_map']).tolist())
            expect = {255 if v == 0 else ids.index(v)
                      for v in want['labels'][stem]}
            assert got == expect


def test_imagenet_with_mmpretrain_dataset(synthetic_data):
    from mmpretrain.datasets import CustomDataset, ImageNet
    root, summary = synthetic_data
    want = summary['imagenet']
    ds = ImageNet(data_root=osp.join(root, 'imagenet'), split='train',
                  pipeline=[])
    assert len(ds) == want['num_images']
    per_class = Counter(ds.get_data_info(i)['gt_label']
                        for i in range(len(ds)))
    assert {want['classes'][k]: v for k, v in per_class.items()} == {
        k: v for k, v in want['per_class'].items() if v}
    folder = CustomDataset(data_root=osp.join(root, 'imagenet'),
                           data_prefix='train', with_label=False, pipeline=[])
    assert len(folder) == want['num_images']


def test_generate_data_tool_is_idempotent(tmp_path, capsys):
    from mim_pretrain.apis import generate_data_main
    out = str(tmp_path / 'd')
    first = generate_data_main(['--out', out, '--scale', '0.05',
                               '--style', 'colour'])
    mtime = osp.getmtime(osp.join(out, 'coco', 'annotations',
                                  'instances_val2017.json'))
    second = generate_data_main(['--out', out, '--scale', '0.05',
                                '--style', 'colour'])
    assert 'already there' in capsys.readouterr().out
    assert first['coco'] == second['coco']
    assert osp.getmtime(osp.join(out, 'coco', 'annotations',
                                 'instances_val2017.json')) == mtime
    with open(osp.join(out, 'summary.json')) as f:
        assert json.load(f)['scale'] == 0.05
    # another style is other data: written, not skipped
    third = generate_data_main(['--out', out, '--scale', '0.05'])
    assert third['style'] == 'shape' and third['coco'] != first['coco']
    assert capsys.readouterr().out.count('already there') == 0
    with pytest.raises(SystemExit, match='--scale must be positive'):
        generate_data_main(['--out', out, '--scale', '0'])


def test_generate_all_layout(tmp_path):
    generate_all(str(tmp_path), scale=0.05)
    for rel in ('imagenet/meta/train.txt', 'coco/val2017',
                'coco/annotations/instances_train2017.json',
                'ade/ADEChallengeData2016/images/training',
                'ade/ADEChallengeData2016/annotations/validation'):
        assert (tmp_path / rel).exists(), rel


def _object_features(style: str, n_scenes: int, seed: int):
    """Per visible object (at least 150 pixels): its class, a colour
    histogram of its pixels (4x4x4 RGB bins) and shape descriptors of its
    mask (log Hu moments, solidity, number of holes)."""
    import cv2
    rng = np.random.default_rng(seed)
    labels, colour, shape = [], [], []
    for _ in range(n_scenes):
        img, singles, _ = make_scene(rng, 96, 96, style=style)
        for inst in singles:
            if inst.mask.sum() < 150:
                continue
            pix = img[inst.mask] // 64
            hist = np.bincount(pix[:, 0] * 16 + pix[:, 1] * 4 + pix[:, 2],
                               minlength=64) / len(pix)
            m = inst.mask.astype(np.uint8)
            hu = cv2.HuMoments(cv2.moments(m, binaryImage=True)).ravel()
            contours, hierarchy = cv2.findContours(m, cv2.RETR_CCOMP,
                                                   cv2.CHAIN_APPROX_NONE)
            outer = max(contours, key=cv2.contourArea)
            hull = cv2.contourArea(cv2.convexHull(outer))
            holes = int((hierarchy[0][:, 3] >= 0).sum())
            labels.append(inst.label)
            colour.append(hist)
            shape.append(np.concatenate([
                -np.sign(hu) * np.log10(np.abs(hu) + 1e-30),
                [m.sum() / max(hull, 1.0), holes]]))
    return np.array(labels), np.array(colour), np.array(shape)


def _softmax_accuracy(x_train, y_train, x_test, y_test, classes: int):
    """Test accuracy of a multinomial logistic regression (full-batch
    gradient descent on standardised features, L2 1e-3)."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    a, b = (x_train - mu) / sd, (x_test - mu) / sd
    w = np.zeros((a.shape[1], classes))
    bias = np.zeros(classes)
    onehot = np.eye(classes)[y_train]
    for _ in range(500):
        logits = a @ w + bias
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        grad = p - onehot
        w -= 0.5 * (a.T @ grad / len(a) + 1e-3 * w)
        bias -= 0.5 * grad.mean(0)
    return float(((b @ w + bias).argmax(1) == y_test).mean())


def test_shape_style_class_cannot_be_read_off_colour():
    """In the shape style a colour-histogram classifier of each object's
    pixels stays near chance, while the same classifier reads the class off
    shape descriptors, and off colour in the colour style (the controls
    that show the classifier can succeed)."""
    classes = len(OBJECT_CLASSES)
    y, colour, shape = _object_features('shape', 400, seed=11)
    yc, colour_c, _ = _object_features('colour', 150, seed=11)
    half = len(y) // 2
    assert half > 200
    chance = np.bincount(y[half:], minlength=classes).max() / (len(y) - half)
    by_colour = _softmax_accuracy(colour[:half], y[:half], colour[half:],
                                  y[half:], classes)
    by_shape = _softmax_accuracy(shape[:half], y[:half], shape[half:],
                                 y[half:], classes)
    hc = len(yc) // 2
    colour_style = _softmax_accuracy(colour_c[:hc], yc[:hc], colour_c[hc:],
                                     yc[hc:], classes)
    assert by_colour < chance + 0.06, (by_colour, chance)
    assert by_shape > 0.5, by_shape
    assert colour_style > 0.9, colour_style


def test_styles_share_layouts_and_reject_unknown_names(tmp_path):
    from mim_pretrain.datasets import DEFAULT_COUNTS
    summary = generate_all(str(tmp_path), style='shape',
                           counts=dict(pool=6, coco_train=2, coco_val=1,
                                       ade_train=2, ade_val=1))
    assert summary['style'] == 'shape'
    assert summary['imagenet']['num_images'] == 6
    assert len(summary['imagenet']['classes']) == len(OBJECT_CLASSES)
    assert summary['coco']['val']['num_images'] == 1
    img = Image.open(tmp_path / 'coco' / 'val2017' / '000000000001.jpg')
    assert img.size == (160, 128)
    # the shape style's pool is many times the labelled sets
    want = DEFAULT_COUNTS['shape']
    assert want['pool'] >= 30 * max(want['coco_train'], want['ade_train'])
    with pytest.raises(ValueError, match="unknown scene style 'texture'"):
        make_scene(np.random.default_rng(0), 8, 8, style='texture')
    with pytest.raises(ValueError, match=r"unknown image count keys \['x'\]"):
        generate_all(str(tmp_path), counts=dict(x=1))


def test_imagenet_val_split_with_mmpretrain_dataset(synthetic_data,
                                                    tmp_path):
    """``val/`` + ``meta/val.txt`` as the real ImageNet (flat folder) read
    by mmpretrain's ``ImageNet(split='val')``; the training images do not
    depend on the number of validation images."""
    from mmpretrain.datasets import ImageNet
    root, summary = synthetic_data
    want = summary['imagenet']['val']
    ds = ImageNet(data_root=osp.join(root, 'imagenet'), split='val',
                  pipeline=[])
    assert len(ds) == want['num_images'] == 8  # 32 at scale 0.25
    info = ds.get_data_info(0)
    assert osp.basename(info['img_path']) == 'ILSVRC2012_val_00000001.JPEG'
    per_class = Counter(ds.get_data_info(i)['gt_label']
                        for i in range(len(ds)))
    names = summary['imagenet']['classes']
    assert {names[k]: v for k, v in per_class.items()} == {
        k: v for k, v in want['per_class'].items() if v}
    outs = []
    for num_val in (0, 3):
        out = tmp_path / str(num_val)
        generate_imagenet(str(out), num_images=4, num_val=num_val, seed=1)
        outs.append(out)
    assert not (outs[0] / 'val').exists()
    assert len(list((outs[1] / 'val').iterdir())) == 3
    assert (outs[0] / 'meta' / 'train.txt').read_text() == \
        (outs[1] / 'meta' / 'train.txt').read_text()
    for line in (outs[0] / 'meta' / 'train.txt').read_text().split():
        if line.endswith('.JPEG'):
            assert (outs[0] / 'train' / line).read_bytes() == \
                (outs[1] / 'train' / line).read_bytes()
